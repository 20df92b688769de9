"""The tempered categorical draw every discrete sampler of the zoo uses."""

import tensorflow as tf


def sample_categorical(logits, temperature, seed):
    """One draw per row of `logits [batch, K]` from softmax(logits / temperature), int32 `[batch]`.

    `temperature == 0` returns the argmax (the mode). `seed` is an int32/int64 `[2]`
    stateless seed, so the same seed gives the same draw.
    """
    logits = tf.cast(logits, tf.float32)
    safe_t = tf.maximum(temperature, 1e-6)
    draw = tf.random.stateless_categorical(logits / safe_t, 1, seed=seed, dtype=tf.int32)[:, 0]
    mode = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return tf.where(temperature > 0.0, draw, mode)


def seeded_draws(temperature, seed):
    """The `choose(index, logits) -> int32 [batch]` of a sampler that draws: value `index`
    of a sequential sampler from `sample_categorical` with seed `fold_in(seed, index)`.
    (A coder passes its own `choose`, returning the value it codes: `zoo.codec.range_coding`.)"""
    def choose(index, logits):
        return sample_categorical(logits, temperature, tf.random.experimental.stateless_fold_in(seed, index))
    return choose
