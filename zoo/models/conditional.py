"""Class labels as an optional condition: `log_prob(images, labels)`,
`sample(n, labels=...)`, and `fit` on `(images, labels)` pairs."""

import numpy as np
import tensorflow as tf


def check_indices(values, count, batch, what):
    """Validates integers `[batch]` in `[0, count)` (class labels, transform ids); returns
    int32. Wrong dtype or shape is a `ValueError`, and so are values out of range when
    running eagerly (in a graph, a `tf.debugging` assertion). `what` names them in errors."""
    values = tf.convert_to_tensor(values)
    if not (values.dtype.is_integer and values.dtype != tf.bool):
        raise ValueError(f"Expected integer {what} in [0, {count}), got dtype {values.dtype.name}.")
    if values.shape.rank != 1 or (batch is not None and values.shape[0] != batch):
        raise ValueError(f"Expected {what} of shape [{batch if batch is not None else 'batch'}], "
                         f"got {values.shape}.")
    values = tf.cast(values, tf.int32)
    expected = f"Expected {what} in [0, {count})"
    if not tf.executing_eagerly():  # inside a graph (a SavedModel signature): assert
        with tf.control_dependencies([
                tf.debugging.assert_non_negative(values, message=expected),
                tf.debugging.assert_less(values, count, message=expected)]):
            return tf.identity(values)
    if tf.size(values) > 0:
        lo, hi = int(tf.reduce_min(values)), int(tf.reduce_max(values))
        if lo < 0 or hi >= count:
            raise ValueError(f"{expected}, got values in [{lo}, {hi}].")
    return values


class LabelConditioned:
    """Mixin for a `DensityModel` with a `num_classes` attribute (None: unconditional)
    whose `_log_prob` and `_sample` take `labels` (int32 `[batch]` or None)."""

    def check_labels(self, labels, batch):
        """Validates class labels `[batch]` in `[0, num_classes)`; returns int32."""
        if not self.num_classes:
            if labels is not None:
                raise ValueError(f"This {type(self).__name__} is unconditional (num_classes=None): pass no labels.")
            return None
        if labels is None:
            raise ValueError(f"This {type(self).__name__} is class-conditional: pass labels, integers in "
                             f"[0, {self.num_classes}) of shape [batch].")
        return check_indices(labels, self.num_classes, batch, "labels")

    def log_prob(self, images, labels=None, training=False):
        """Natural log-likelihood per image `[batch]`; `labels [batch]` when conditional."""
        self.build_for_images()
        images = self.check_images(images)
        labels = self.check_labels(labels, images.shape[0])
        return self._log_prob(images, training=training, labels=labels)

    def bits_per_dim(self, images, labels=None, training=False):
        return -self.log_prob(images, labels, training=training) / (self.num_dims * np.log(2.0))

    def call(self, inputs, training=False):
        """`images` or `(images, labels)` -> bits/dim per image."""
        if isinstance(inputs, (tuple, list)):
            return self.bits_per_dim(*inputs, training=training)
        return self.bits_per_dim(inputs, training=training)

    def _zero_inputs(self):
        images = super()._zero_inputs()
        return (images, tf.zeros([1], tf.int32)) if self.num_classes else images

    def sample(self, n, temperature=1.0, seed=None, labels=None, method="cached"):
        """`n` images uint8 `[n, H, W, C]`; a conditional model draws class `labels[i]` for
        image i (an int is every image's class; None draws classes uniformly).
        `method`: "cached" (the fastest sampler) or "naive" (see `DensityModel.sample`)."""
        if labels is None:
            return super().sample(n, temperature, seed, method=method)
        graph = self._sampler(method)
        arguments = self._sample_arguments(n, temperature, seed)
        if isinstance(labels, (int, np.integer)) and not isinstance(labels, bool):
            labels = np.full([n], labels, np.int64)
        labels = self.check_labels(labels, n)
        return tf.cast(graph(*arguments, labels), tf.uint8)
