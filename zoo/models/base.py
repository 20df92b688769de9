"""`DensityModel`: the contract every model of the zoo keeps.

A model maps integer images `[batch, H, W, C]` in `[0, num_levels)` to their exact
log-likelihood in nats (for flows, the uniform-dequantization bound), reports
bits/dim, samples, and trains through Keras' own `compile` + `fit` with
loss = mean bits/dim.
"""

import contextlib
import functools
import math
import os
import secrets

import keras
import numpy as np
import tensorflow as tf
from keras.src.backend import AutocastScope

from zoo.files import atomic_write
from zoo.models.conditional import check_indices

MAX_SEED = 2**31 - 1
PRECISIONS = (None, "bfloat16", "float16")
HALF_DTYPES = ("bfloat16", "float16")


def check_precision(mixed_precision):
    """Validates a model's `mixed_precision` setting; returns it."""
    if mixed_precision not in PRECISIONS:
        raise ValueError(f"mixed_precision must be None, 'bfloat16' or 'float16', got {mixed_precision!r}.")
    return mixed_precision


def centered_pixels(images, num_levels, dtype=tf.float32):
    """int images in `[0, num_levels)` -> values in [-1, 1] (`2 x / (L - 1) - 1`), computed
    in float32 and returned in `dtype`."""
    scaled = tf.cast(images, tf.float32) * (2.0 / (num_levels - 1)) - 1.0
    return tf.cast(scaled, dtype)


def check_positive_int(value, name):
    """`value` as an int if it is a positive integer (not a bool), else a one-line
    ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_image_array(images, image_shape, num_levels, what="images"):
    """The numpy side of `DensityModel.check_images`, for code that holds arrays (the
    codecs, the OOD scores): integer images `[n, *image_shape]` (any `[n, H, W, C]` when
    `image_shape` is None), n >= 1, values in `[0, num_levels)` -> uint8 (int32 past 256
    levels). Anything else is a one-line ValueError starting with `what`."""
    images = np.asarray(images)
    expected = "H, W, C" if image_shape is None else ", ".join(map(str, image_shape))
    if images.dtype.kind not in "ui":
        raise ValueError(f"{what}: expected integer images (uint8) [n, {expected}], got dtype {images.dtype}.")
    if images.ndim != 4 or (image_shape is not None and tuple(images.shape[1:]) != tuple(image_shape)):
        raise ValueError(f"{what}: expected shape [n, {expected}], got {list(images.shape)}.")
    if len(images) == 0:
        raise ValueError(f"{what}: expected at least one image, got none.")
    lo, hi = int(images.min()), int(images.max())
    if lo < 0 or hi >= num_levels:
        raise ValueError(f"{what}: expected pixel values in [0, {num_levels}), got values in [{lo}, {hi}].")
    return images.astype(np.uint8 if num_levels <= 256 else np.int32, copy=False)


def check_latents(z, event_shape):
    """Validates float latents `[batch, *event_shape]` (a flow's image-shaped z, a VAE's
    vector); returns them as float32."""
    z = tf.convert_to_tensor(z)
    if not z.dtype.is_floating:
        raise ValueError(f"Expected float latents, got dtype {z.dtype.name}.")
    if z.shape.rank != 1 + len(event_shape) or tuple(z.shape[1:]) != tuple(event_shape):
        raise ValueError(f"Expected latents of shape [batch, {', '.join(map(str, event_shape))}], "
                         f"got {z.shape}.")
    z = tf.cast(z, tf.float32)
    if tf.executing_eagerly():
        if not bool(tf.reduce_all(tf.math.is_finite(z))):
            raise ValueError("Expected finite latents, got NaN or Inf.")
        return z
    return tf.debugging.assert_all_finite(z, "latents must be finite")


class DensityModel(keras.Model):
    """Base class: subclasses implement `_log_prob(images, training, labels)` and
    `_sample(n, temperature, seed, labels)` on already-validated int32 tensors
    (labels int32 `[batch]`, or None for an unconditional model), and extend
    `get_config` with their own constructor arguments.

    A class-conditional model sets `num_classes`; every public method then takes
    `labels [batch]`, and an unconditional one refuses them. `mixed_precision`
    ("bfloat16" / "float16") lets the network train in 16 bits; `log_prob` outside
    training, `sample`, `encode`/`decode` and every SavedModel compute in float32.
    `training_chains` = n > 1 splits each training batch into n equal pieces whose
    forward and backward passes are independent chains of one graph, so a CPU's
    inter-op threads run them side by side (the loss and its gradients are those of the
    whole batch); a model whose training forward couples the images of a batch (batch
    norm, a step counter) refuses it.
    """

    num_classes = None  # unconditional unless a subclass sets it
    # What the class can do beyond the contract, so callers ask `"elbo" in
    # model.capabilities`: "latent" (`encode(images, labels=None) -> z`, `decode(z,
    # labels=None) -> images`, `latent_shape`), "elbo" (`elbo(images, labels=None, *,
    # num_samples=1)`), "interpolate" (`interpolate(a, b, num, label=None)`),
    # "autoregressive" (exact per-pixel conditionals through a cached incremental pass).
    capabilities = frozenset()

    def __init__(self, image_shape, num_levels, mixed_precision=None, training_chains=1, **kwargs):
        super().__init__(**kwargs)
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (H, W, C) with positive sizes, got {image_shape}.")
        if int(num_levels) < 2:
            raise ValueError(f"num_levels must be >= 2, got {num_levels}.")
        self.image_shape = image_shape
        self.num_levels = int(num_levels)
        self.mixed_precision = check_precision(mixed_precision)
        if isinstance(training_chains, bool) or not isinstance(training_chains, (int, np.integer)) \
                or training_chains < 1:
            raise ValueError(f"training_chains must be an int >= 1, got {training_chains!r}.")
        self.training_chains = int(training_chains)
        # The dtype policy of the network's layers (None: Keras' global policy).
        self.net_dtype = f"mixed_{mixed_precision}" if mixed_precision else None
        self._sample_graph = tf.function(functools.partial(self.generate, method="cached"))
        self._sample_naive_graph = tf.function(functools.partial(self.generate, method="naive"))
        self._log_prob_graphs = {}  # (1 or 2 inputs, *options) -> `_eager_log_prob`'s graph

    @property
    def num_dims(self):
        """D = H * W * C, the number of scalar variables per image."""
        h, w, c = self.image_shape
        return h * w * c

    # ---- precision ------------------------------------------------------------

    @contextlib.contextmanager
    def float32_network(self):
        """Inside the block every layer that computes in 16 bits computes in float32
        (graphs traced inside keep it): evaluation is one float32 number whatever
        precision the network trains in."""
        changed = [(layer, layer.dtype_policy) for layer in self._flatten_layers(include_self=True)
                   if layer.compute_dtype in HALF_DTYPES]
        for layer, _ in changed:
            layer.dtype_policy = "float32"
        try:
            with AutocastScope(None):  # no outer 16-bit autocast reaches the variables
                yield
        finally:
            for layer, policy in changed:
                layer.dtype_policy = policy

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
            if images.shape[0] == 0:
                raise ValueError(f"Expected at least one image, got an empty batch of shape {images.shape}.")
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

    def check_labels(self, labels, batch):
        """Validates class labels `[batch]` in `[0, num_classes)`; returns int32, or None
        for an unconditional model (which refuses labels)."""
        if not self.num_classes:
            if labels is not None:
                raise ValueError(f"This {type(self).__name__} is unconditional: it takes no labels "
                                 f"(got labels={labels!r}); pass images only.")
            return None
        if labels is None:
            raise ValueError(f"This {type(self).__name__} is class-conditional: pass labels, integers in "
                             f"[0, {self.num_classes}) of shape [batch].")
        return check_indices(labels, self.num_classes, batch, "labels")

    def log_prob(self, images, labels=None, *, training=False):
        """Natural log-likelihood per image, `[batch]` float32 nats; `labels [batch]` for a
        class-conditional model. Outside training the whole network computes in float32."""
        return self._checked_log_prob(images, labels, training)

    def _checked_log_prob(self, images, labels, training, **options):
        """`log_prob`'s body: validates, then `_log_prob`, passed `options` (Python values a
        subclass's `log_prob` takes, such as the VAE's `importance_samples`)."""
        self.build_for_images()
        images = self.check_images(images)
        labels = self.check_labels(labels, images.shape[0])
        if training:
            return self._log_prob(images, training=True, labels=labels, **options)
        if tf.executing_eagerly():
            # Eager calls run the graph `tf.function`, Keras and SavedModels run: TF's eager
            # kernels and Grappler's fused graph ones round differently (up to 1.3e-3 nats
            # an image for PixelCNN++ on MNIST, its sharpest logistics amplifying them).
            return self._eager_log_prob(images, labels, options)
        return self._evaluation_log_prob(images, labels, **options)

    def _eager_log_prob(self, images, labels, options):
        """`_evaluation_log_prob` as one `tf.function` for any batch size (traced once per
        set of `options`, so a model's number does not depend on the batch sizes it saw
        before)."""
        inputs = [images] if labels is None else [images, labels]
        key = (len(inputs), *sorted(options.items()))
        if key not in self._log_prob_graphs:
            signature = [tf.TensorSpec([None, *t.shape[1:]], t.dtype) for t in inputs]
            self._log_prob_graphs[key] = tf.function(functools.partial(self._evaluation_log_prob, **options),
                                                     input_signature=signature)
        return self._log_prob_graphs[key](*inputs)

    def _evaluation_log_prob(self, images, labels=None, **options):
        """`log_prob` outside training on checked tensors: the network in float32."""
        with self.float32_network():
            return self._log_prob(images, training=False, labels=labels, **options)

    def bits_per_dim(self, images, labels=None, *, training=False):
        """`-log_prob / (H * W * C * ln 2)`, `[batch]` float32."""
        return -self.log_prob(images, labels, training=training) / (self.num_dims * math.log(2.0))

    def call(self, inputs, training=False):
        """Keras' forward pass: `images` or `(images, labels)` -> bits/dim per image, so
        `fit`'s loss is their mean; in training, per piece of `training_chains`."""
        inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
        if training and self.training_chains > 1:
            pieces = zip(*(self._split_batch(tensor) for tensor in inputs))
            return tf.concat([self.bits_per_dim(*piece, training=True) for piece in pieces], axis=0)
        return self.bits_per_dim(*inputs, training=training)

    def refuse_training_chains(self, reason):
        """For a subclass whose training forward couples a batch's images (`reason` says
        how): a `ValueError` when `training_chains` > 1."""
        if self.training_chains > 1:
            raise ValueError(f"training_chains must be 1 for this {type(self).__name__}: {reason}, "
                             f"so a batch cannot be split into independent chains; got "
                             f"{self.training_chains}.")

    def _split_batch(self, tensor):
        """`[b, ...]` -> `training_chains` tensors `[b / n, ...]`; b must be a multiple of n."""
        n = self.training_chains
        tensor = tf.convert_to_tensor(tensor)
        batch = tensor.shape[0]
        if batch is not None and batch % n:
            raise ValueError(f"training_chains={n} needs a (per-replica) batch that is a multiple of "
                             f"{n}, got {batch}.")
        if batch is None:
            check = tf.debugging.assert_equal(tf.shape(tensor)[0] % n, 0, message=(
                f"training_chains={n} needs a (per-replica) batch that is a multiple of {n}"))
            with tf.control_dependencies([check]):
                tensor = tf.identity(tensor)
        return tf.split(tensor, n, axis=0)

    def sample(self, n, *, labels=None, temperature=1.0, seed=None, method="cached"):
        """`n` images, uint8 `[n, H, W, C]`; the same `seed` gives the same images.

        A class-conditional model draws class `labels[i]` for image i (an int: every
        image's class; None: classes drawn uniformly from `seed`). `method="naive"` runs
        the plain loop (for autoregressive models, the whole network once per new pixel)
        instead of the model's fastest sampler; both draw the same images for the same seed.
        """
        graph = self._sampler(method)
        arguments = self._sample_arguments(n, temperature, seed)
        if isinstance(labels, (int, np.integer)) and not isinstance(labels, bool):
            labels = np.full([n], labels, np.int64)
        if labels is not None or not self.num_classes:
            labels = self.check_labels(labels, n)
        return tf.cast(graph(*arguments, labels), tf.uint8)

    def generate(self, n, temperature, seed, labels=None, method="cached"):
        """The sampler on tensors, for graphs (`sample`, SavedModels): int32 `n`, float32
        `temperature`, int64 `[2]` stateless `seed`, int32 `labels [n]` or None (a
        conditional model then draws classes uniformly from `seed`) -> int32 images
        `[n, H, W, C]`, computed in float32."""
        with self.float32_network():
            if self.num_classes and labels is None:
                labels = tf.random.stateless_uniform(
                    [n], tf.random.experimental.stateless_fold_in(seed, -1), 0, self.num_classes,
                    dtype=tf.int32)
            if method == "naive":
                return self._sample_naive(n, temperature, seed, labels)
            return self._sample(n, temperature, seed, labels)

    def _sampler(self, method):
        """The compiled sampler of `method` ("cached" or "naive")."""
        if method not in ("cached", "naive"):
            raise ValueError(f"method must be 'cached' or 'naive', got {method!r}.")
        return self._sample_graph if method == "cached" else self._sample_naive_graph

    def _sample_arguments(self, n, temperature, seed):
        """Validates `sample`'s arguments; returns the graph's (n, temperature, seed) tensors.

        Builds the model first. `seed=None` draws a fresh seed.
        """
        check_positive_int(n, "n")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating, np.integer)) \
                or not temperature >= 0:
            raise ValueError(f"temperature must be a number >= 0, got {temperature!r}.")
        if seed is None:
            seed = secrets.randbelow(MAX_SEED)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
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
        """A one-image batch of the model's `call` input (zeros; with label 0 if conditional)."""
        images = tf.zeros((1, *self.image_shape), tf.uint8)
        return (images, tf.zeros([1], tf.int32)) if self.num_classes else images

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
        labels = tf.zeros([1], tf.int32) if self.num_classes else None
        self._log_prob(tf.zeros((1, *self.image_shape), tf.int32), training=False, labels=labels)

    def build_for_images(self):
        """Builds the model if it is not built yet; returns it."""
        if not self.built:
            self.build((None, *self.image_shape))
        return self

    def initialize(self, images, labels=None):
        """Data-dependent initialization from a batch (actnorm, weight norm), before the
        first training step: `zoo.training.train` runs it on the first batch, under the
        strategy. A no-op for a model without any, or one already initialized."""
        del images, labels

    def save_weights(self, filepath, overwrite=True, max_shard_size=None):
        """Keras' `save_weights`, written to a temporary name and renamed: a process
        killed mid-save (`ModelCheckpoint`, `zoo.hub.publish`) leaves the previous
        file whole. Sharded saves (`max_shard_size`) are Keras' own, not atomic."""
        if max_shard_size is not None or (not overwrite and os.path.exists(filepath)):
            return super().save_weights(filepath, overwrite, max_shard_size)
        atomic_write(filepath, lambda tmp: super(DensityModel, self).save_weights(tmp))

    def get_config(self):
        return {"image_shape": list(self.image_shape), "num_levels": self.num_levels,
                "mixed_precision": self.mixed_precision, "training_chains": self.training_chains}

    # ---- what subclasses implement -----------------------------------------

    def _log_prob(self, images, training, labels=None):
        raise NotImplementedError

    def _sample(self, n, temperature, seed, labels=None):
        raise NotImplementedError

    def _sample_naive(self, n, temperature, seed, labels=None):
        """The plain sampler; models without a faster one sample the same way either way."""
        return self._sample(n, temperature, seed, labels)
