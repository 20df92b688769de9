"""Per-channel moments of a batch, with running averages: the statistics of a
batch-normalization bijector (`zoo.bijectors.BatchNorm`) held as Keras weights."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="zoo")
class MovingMoments(keras.layers.Layer):
    """`x [batch, H, W, C]` -> `(mean, variance)`, each float32 `[C]`.

    Training: the batch's moments, and the running averages move towards them,
    `avg <- momentum * avg + (1 - momentum) * batch`. Otherwise: the running averages.
    """

    def __init__(self, momentum=0.95, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}.")
        self.momentum = float(momentum)

    def build(self, input_shape):
        channels = input_shape[-1]
        self.moving_mean = self.add_weight(name="moving_mean", shape=(channels,),
                                           initializer="zeros", trainable=False,
                                           aggregation="mean")
        self.moving_variance = self.add_weight(name="moving_variance", shape=(channels,),
                                               initializer="ones", trainable=False,
                                               aggregation="mean")

    def moving(self):
        """The running `(mean, variance)` as tensors."""
        return tf.identity(self.moving_mean.value), tf.identity(self.moving_variance.value)

    def call(self, x, training=False):
        if not training:
            return self.moving()
        mean, variance = tf.nn.moments(tf.cast(x, tf.float32), axes=[0, 1, 2])
        m = self.momentum
        self.moving_mean.assign(m * self.moving_mean.value + (1.0 - m) * tf.stop_gradient(mean))
        self.moving_variance.assign(m * self.moving_variance.value
                                    + (1.0 - m) * tf.stop_gradient(variance))
        return mean, variance

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}
