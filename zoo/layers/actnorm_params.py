"""The parameters of an actnorm bijector (`zoo.bijectors.ActNorm`), with the
data-dependent initialization of Kingma and Dhariwal 2018, section 3.1.

`initialize(x)` sets, per channel c, over the batch and all pixels,

    b_c = -mean(x_c),      s_c = -log(std(x_c) + 1e-6),

so `(x + b) * exp(s)` has zero mean and unit variance per channel on that batch.
Under a `tf.distribute` strategy each replica sees part of the batch: the sums of
x and x^2 and the counts are all-reduced across replicas first, so every replica
sets the same values, those of the whole global batch. Once initialized (a saved
flag), `initialize` leaves the parameters as they are.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="zoo")
class ActNormParams(keras.layers.Layer):
    """Per-channel `(bias, log_scale)`, float32 `[C]` each; identity until initialized.

    Args:
      channels: C.
    """

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        if int(channels) < 1:
            raise ValueError(f"channels must be >= 1, got {channels}.")
        self.channels = int(channels)
        self.build()

    def build(self, input_shape=None):
        if self.built:
            return
        c = (self.channels,)
        self.bias = self.add_weight(name="bias", shape=c, initializer="zeros")
        self.log_scale = self.add_weight(name="log_scale", shape=c, initializer="zeros")
        self.initialized = self.add_weight(name="initialized", shape=(), initializer="zeros",
                                           trainable=False, aggregation="only_first_replica")
        self.built = True

    def params(self):
        """`(bias, log_scale)` as tensors (gradients reach the weights)."""
        return self.bias.value, self.log_scale.value

    def call(self, x):
        return self.params()

    def initialize(self, x):
        """Data-dependent initialization from `x [batch, H, W, C]` (no-op once done);
        returns `params()` after it. Call in a replica context (any `strategy.run`)."""
        x = tf.stop_gradient(tf.cast(x, tf.float32))
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
        sums = [tf.reduce_sum(x, axis=[0, 1, 2]), tf.reduce_sum(tf.square(x), axis=[0, 1, 2]), count]
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            sums = context.all_reduce(tf.distribute.ReduceOp.SUM, sums)
        total, total_sq, count = sums
        mean = total / count
        std = tf.sqrt(tf.maximum(total_sq / count - tf.square(mean), 0.0))
        done = self.initialized.value > 0
        # float32 reads: inside a 16-bit layer's call Keras autocasts variable values.
        bias, log_scale = (tf.cast(v.value, tf.float32) for v in (self.bias, self.log_scale))
        self.bias.assign(tf.where(done, bias, -mean))
        self.log_scale.assign(tf.where(done, log_scale, -tf.math.log(std + 1e-6)))
        self.initialized.assign(1.0)
        return self.params()

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}
