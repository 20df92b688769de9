"""Validation of integer conditions: class labels and transform ids."""

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
