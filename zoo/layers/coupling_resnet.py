"""The s and t networks of RealNVP's couplings (Dinh et al. 2017, section 3.7 and
appendix A): a ResNet on the kept half, with a tanh-scaled s.

    h = conv3x3(inputs)
    h = h + conv3x3(relu(norm(conv3x3(relu(norm(h))))))     num_blocks times
    s_raw, t = split(conv3x3(relu(norm(h))))                 last conv zero-initialized
    s = scale * tanh(s_raw)                                  scale learned per channel, init 1

The zero-initialized output makes every coupling the identity at initialization.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="zoo")
class CouplingResNet(keras.layers.Layer):
    """`[batch, H, W, C_in]` -> `(t, s)`, each `[batch, H, W, out_channels]`.

    Args:
      out_channels: channels of s and of t (those of the coupled tensor).
      num_blocks: residual blocks.
      filters: channels of the hidden convolutions.
      norm: "batch" (Keras BatchNormalization before each ReLU, as the paper) or "none".
    """

    def __init__(self, out_channels, num_blocks=4, filters=64, norm="batch", **kwargs):
        super().__init__(**kwargs)
        if norm not in ("batch", "none"):
            raise ValueError(f"norm must be 'batch' or 'none', got {norm!r}.")
        if int(num_blocks) < 0 or int(filters) < 1 or int(out_channels) < 1:
            raise ValueError("out_channels and filters must be >= 1, num_blocks >= 0; got "
                             f"{out_channels}, {filters}, {num_blocks}.")
        self.out_channels = int(out_channels)
        self.num_blocks = int(num_blocks)
        self.filters = int(filters)
        self.norm = norm

        def conv(filters, name, zeros=False):  # s and t (zeros=True) come out in float32
            return keras.layers.Conv2D(filters, 3, padding="same", name=name,
                                       kernel_initializer="zeros" if zeros else "he_normal",
                                       dtype="float32" if zeros else self.dtype_policy)

        def bn(name):
            if norm == "none":
                return None
            return keras.layers.BatchNormalization(name=name, dtype=self.dtype_policy)

        self.conv_in = conv(self.filters, "conv_in")
        self.blocks = [(bn(f"block{i}_bn0"), conv(self.filters, f"block{i}_conv0"),
                        bn(f"block{i}_bn1"), conv(self.filters, f"block{i}_conv1"))
                       for i in range(self.num_blocks)]
        self.bn_out = bn("bn_out")
        self.conv_out = conv(2 * self.out_channels, "conv_out", zeros=True)

    def build(self, input_shape):
        shape = tuple(input_shape)
        hidden = (*shape[:-1], self.filters)
        self.conv_in.build(shape)
        for bn0, conv0, bn1, conv1 in self.blocks:
            for layer in (bn0, conv0, bn1, conv1):
                if layer is not None:
                    layer.build(hidden)
        if self.bn_out is not None:
            self.bn_out.build(hidden)
        self.conv_out.build(hidden)
        self.scale = self.add_weight(name="scale", shape=(self.out_channels,), initializer="ones")

    def _act(self, bn, h, training):
        return tf.nn.relu(h if bn is None else bn(h, training=training))

    def call(self, inputs, training=False):
        h = self.conv_in(inputs)
        for bn0, conv0, bn1, conv1 in self.blocks:
            r = conv0(self._act(bn0, h, training))
            h = h + conv1(self._act(bn1, r, training))
        out = self.conv_out(self._act(self.bn_out, h, training))
        t, s = tf.split(out, 2, axis=-1)
        return t, tf.cast(self.scale, s.dtype) * tf.tanh(s)

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels,
                "num_blocks": self.num_blocks, "filters": self.filters, "norm": self.norm}
