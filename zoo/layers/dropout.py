"""Dropout whose random stream lives in the layer's weights."""

import random

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="zoo")
class ResumableDropout(keras.layers.Layer):
    """`keras.layers.Dropout` with a counter weight that seeds each draw statelessly.

    Keras' own Dropout keeps its RNG state in a `SeedGenerator` that
    `save_weights` does not write, so `BackupAndRestore` resumes with a fresh
    stream. Here the mask of call k is `stateless_dropout(seed=(seed, k, replica))`
    and k is a saved, non-trainable weight: a resumed run draws the very masks an
    uninterrupted one would. Input and output: any shape.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate}.")
        self.rate = float(rate)
        self.seed = int(seed) if seed is not None else random.randrange(2**31)

    def build(self, input_shape):
        self.step = self.add_weight(name="step", shape=(), dtype="int64", initializer="zeros",
                                    trainable=False, aggregation="only_first_replica")

    def call(self, x, training=False):
        if not training or self.rate == 0.0:
            return x
        replica = tf.distribute.get_replica_context()
        replica_id = tf.cast(replica.replica_id_in_sync_group if replica else 0, tf.int64)
        self.step.assign_add(1)
        seed = tf.stack([tf.constant(self.seed, tf.int64), self.step.value * 1024 + replica_id])
        return tf.nn.experimental.stateless_dropout(x, self.rate, seed=seed)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
