"""`DensityModel`: the contract every model of the zoo keeps.

A model maps integer images `[batch, H, W, C]` in `[0, num_levels)` to their exact
log-likelihood in nats (for flows, the uniform-dequantization bound), reports
bits/dim, samples, and trains through Keras' own `compile` + `fit` with
loss = mean bits/dim.
"""

import math
import os
import secrets

import keras
import numpy as np
import tensorflow as tf

from zoo.files import atomic_write

MAX_SEED = 2**31 - 1


def sample_categorical(logits, temperature, seed):
    """One draw per row of `logits [batch, K]` from softmax(logits / temperature).

    `temperature == 0` returns the argmax (the mode). `seed` is an int32/int64 `[2]`
    stateless seed, so the same seed gives the same draw.
    """
    logits = tf.cast(logits, tf.float32)
    safe_t = tf.maximum(temperature, 1e-6)
    draw = tf.random.stateless_categorical(logits / safe_t, 1, seed=seed, dtype=tf.int32)[:, 0]
    mode = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return tf.where(temperature > 0.0, draw, mode)


class DensityModel(keras.Model):
    """Base class: subclasses implement `_log_prob(images, training)` and
    `_sample(n, temperature, seed)` on already-validated int32 tensors, and extend
    `get_config` with their own constructor arguments."""

    def __init__(self, image_shape, num_levels, **kwargs):
        super().__init__(**kwargs)
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (H, W, C) with positive sizes, got {image_shape}.")
        if int(num_levels) < 2:
            raise ValueError(f"num_levels must be >= 2, got {num_levels}.")
        self.image_shape = image_shape
        self.num_levels = int(num_levels)
        self._sample_graph = tf.function(self._sample)
        self._sample_naive_graph = tf.function(self._sample_naive)

    @property
    def num_dims(self):
        """D = H * W * C, the number of scalar variables per image."""
        h, w, c = self.image_shape
        return h * w * c

    # ---- the contract -------------------------------------------------------

    def check_images(self, images):
        """Validates integer images `[batch, H, W, C]` in `[0, num_levels)`; returns int32.

        Wrong dtype, rank or image size is a `ValueError`; so are out-of-range values
        when running eagerly (in a graph they fail a `tf.debugging` assertion).
        """
        images = tf.convert_to_tensor(images)
        if not (images.dtype.is_integer and images.dtype != tf.bool):
            raise ValueError(
                f"Expected integer images in [0, {self.num_levels}) (e.g. uint8), got dtype "
                f"{images.dtype.name}: scale or dequantize inside the model, not before it.")
        if images.shape.rank != 4:
            raise ValueError(f"Expected images of rank 4 [batch, H, W, C] = [batch, "
                             f"{', '.join(map(str, self.image_shape))}], got shape {images.shape}.")
        if tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"Expected images of shape [batch, {', '.join(map(str, self.image_shape))}], "
                             f"got {images.shape}.")
        images = tf.cast(images, tf.int32)
        if tf.executing_eagerly():
            if tf.size(images) > 0:
                lo, hi = int(tf.reduce_min(images)), int(tf.reduce_max(images))
                if lo < 0 or hi >= self.num_levels:
                    raise ValueError(f"Expected pixel values in [0, {self.num_levels}), got values in "
                                     f"[{lo}, {hi}].")
            return images
        expected = ", ".join(map(str, self.image_shape))
        with tf.control_dependencies([
            tf.debugging.assert_equal(tf.shape(images)[1:], self.image_shape,
                                      message=f"images must have shape [batch, {expected}]"),
            tf.debugging.assert_non_negative(images, message="pixel values must be >= 0"),
            tf.debugging.assert_less(images, self.num_levels,
                                     message=f"pixel values must be < num_levels={self.num_levels}"),
        ]):
            return tf.identity(images)

    def log_prob(self, images, training=False):
        """Natural log-likelihood per image, `[batch]` float32 nats."""
        self.build_for_images()
        return self._log_prob(self.check_images(images), training=training)

    def bits_per_dim(self, images, training=False):
        """`-log_prob / (H * W * C * ln 2)`, `[batch]` float32."""
        return -self.log_prob(images, training=training) / (self.num_dims * math.log(2.0))

    def call(self, images, training=False):
        """Keras' forward pass: bits/dim per image, so `fit`'s loss is their mean."""
        return self.bits_per_dim(images, training=training)

    def sample(self, n, temperature=1.0, seed=None, method="cached"):
        """`n` images, uint8 `[n, H, W, C]`; the same `seed` gives the same images.

        `method="naive"` runs the plain loop (for autoregressive models, the whole
        network once per new pixel) instead of the model's fastest sampler; both draw
        the same images for the same seed.
        """
        graph = self._sampler(method)
        images = graph(*self._sample_arguments(n, temperature, seed))
        return tf.cast(images, tf.uint8)

    def _sampler(self, method):
        """The compiled sampler of `method` ("cached" or "naive")."""
        if method not in ("cached", "naive"):
            raise ValueError(f"method must be 'cached' or 'naive', got {method!r}.")
        return self._sample_graph if method == "cached" else self._sample_naive_graph

    def _sample_arguments(self, n, temperature, seed):
        """Validates `sample`'s arguments; returns the graph's (n, temperature, seed) tensors.

        Builds the model first. `seed=None` draws a fresh seed.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"n must be a positive integer, got {n!r}.")
        if not isinstance(temperature, (int, float, np.floating, np.integer)) or not temperature >= 0:
            raise ValueError(f"temperature must be a number >= 0, got {temperature!r}.")
        if seed is None:
            seed = secrets.randbelow(MAX_SEED)
        if not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be an integer in [0, {MAX_SEED}] or None, got {seed!r}.")
        self.build_for_images()
        return (tf.constant(n, tf.int32), tf.constant(temperature, tf.float32),
                tf.constant([seed, 0], tf.int64))

    # ---- Keras training -----------------------------------------------------

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean bits/dim of the batch (`y_pred` is `call`'s per-image bits/dim).

        Scaled by 1 / replicas like Keras' own losses: gradients are summed across
        replicas, so the update is that of the global batch's mean.
        """
        del x, y, training
        if sample_weight is not None:
            raise ValueError("Density models take no sample_weight: every image counts once.")
        loss = tf.reduce_mean(tf.cast(y_pred, tf.float32))
        for extra in self.losses:
            loss += tf.cast(tf.reduce_sum(extra), tf.float32)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return loss / replicas if replicas > 1 else loss

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Builds from a zero batch, never from the training data.

        Under a distribution strategy Keras' TF trainer (3.x) pulls one batch from the
        training iterator to build symbolically, and all-reduces it: the pulled batch
        is lost to training (the run no longer matches one device), and integer
        images cannot be all-reduced across workers. Our models know their input.
        """
        del iterator, data_batch
        return super()._maybe_symbolic_build(data_batch=(self._zero_inputs(),))

    def _zero_inputs(self):
        """A one-image batch of the model's `call` input (zeros)."""
        return tf.zeros((1, *self.image_shape), tf.uint8)

    def get_metrics_result(self):
        """Keras' metric results; `[1]`-shaped inside a multi-worker replica.

        Keras (3.x) averages per-replica logs across workers with
        `strategy.reduce("MEAN", v, axis=0)`, which fails on scalars; a `[1]` vector
        per replica reduces to the global mean (equal per-replica batches).
        """
        results = super().get_metrics_result()
        context = tf.distribute.get_replica_context()
        if context is not None and isinstance(context.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            results = {k: tf.reshape(v, [1]) for k, v in results.items()}
        return results

    def build(self, input_shape=None):
        """Creates every variable by one pass over a zero batch.

        Subclasses that own weights directly create them first, then call this.
        Keras calls `build` when loading a `.keras` file, before it sets the weights.
        """
        self._log_prob(tf.zeros((1, *self.image_shape), tf.int32), training=False)

    def build_for_images(self):
        """Builds the model if it is not built yet; returns it."""
        if not self.built:
            self.build((None, *self.image_shape))
        return self

    def save_weights(self, filepath, overwrite=True, max_shard_size=None):
        """Keras' `save_weights`, written to a temporary name and renamed: a process
        killed mid-save (`ModelCheckpoint`, `zoo.hub.publish`) leaves the previous
        file whole. Sharded saves (`max_shard_size`) are Keras' own, not atomic."""
        if max_shard_size is not None or (not overwrite and os.path.exists(filepath)):
            return super().save_weights(filepath, overwrite, max_shard_size)
        atomic_write(filepath, lambda tmp: super(DensityModel, self).save_weights(tmp))

    def get_config(self):
        return {"image_shape": list(self.image_shape), "num_levels": self.num_levels}

    # ---- what subclasses implement -----------------------------------------

    def _log_prob(self, images, training):
        raise NotImplementedError

    def _sample(self, n, temperature, seed):
        raise NotImplementedError

    def _sample_naive(self, n, temperature, seed):
        """The plain sampler; models without a faster one sample the same way either way."""
        return self._sample(n, temperature, seed)
