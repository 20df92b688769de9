"""Glow's networks (Kingma and Dhariwal 2018, section 3.3 and Table 1; openai/glow
`f`, `conv2d_zeros`, `split2d_prior`, the learned top prior).

    ZeroConv2D:      conv3x3(x) * exp(3 * logs)     kernel, bias, logs zero-initialized
    GlowCouplingNet: ZeroConv2D(relu(an(conv1x1(relu(an(conv3x3(x)))))))

The zero-initialized last layer makes every coupling the identity and every prior
a standard normal at initialization. `an` is an actnorm after each hidden convolution
(openai/glow's `conv2d(..., do_actnorm=True)`, whose convolutions then have no bias),
initialized from the data like the flow's (`ActNormParams`); `actnorm=False` gives
plain biased convolutions instead.

Every per-channel affine map after a convolution is folded into it (`scaled_conv`):
`(conv(x; W) + b) * s + t = conv(x; W s) + (b s + t)`, so each layer is one
convolution and one bias add, which TensorFlow fuses with the ReLU that follows,
instead of a pass over the activations per scale, shift and their gradients.
"""

import keras
import tensorflow as tf

from zoo.layers.actnorm_params import ActNormParams

LOGSCALE_FACTOR = 3.0  # openai/glow's logscale_factor: the learned log-scale moves 3x faster


def scaled_conv(conv, x, scale=None, shift=None):
    """`conv(x) * scale + shift` for a Keras `Conv2D` (stride 1) and per-channel `scale`,
    `shift` `[filters]` (None: 1 and 0), computed as one convolution with kernel
    `W * scale` and bias `b * scale + shift`: `[b, H, W, C_in]` -> `[b, H, W, filters]`
    in `x`'s dtype. The weights are folded in float32 and then cast to it once: call it
    outside Keras' autocasting (the layers here set `autocast=False`), which would
    hand over 16-bit variable values."""
    kernel = tf.cast(conv.kernel, tf.float32)
    bias = tf.cast(conv.bias, tf.float32) if conv.use_bias else None
    if scale is not None:
        scale = tf.cast(scale, tf.float32)
        kernel = kernel * scale
        bias = None if bias is None else bias * scale
    if shift is not None:
        shift = tf.cast(shift, tf.float32)
        bias = shift if bias is None else bias + shift
    y = tf.nn.conv2d(x, tf.cast(kernel, x.dtype), strides=1, padding=conv.padding.upper())
    return y if bias is None else tf.nn.bias_add(y, tf.cast(bias, x.dtype))


@keras.saving.register_keras_serializable(package="zoo")
class ZeroConv2D(keras.layers.Layer):
    """`[b, H, W, C_in]` -> `[b, H, W, filters]`: a zero-initialized 3x3 conv with a
    learned per-channel scale `exp(3 * logs)`."""

    def __init__(self, filters, **kwargs):
        super().__init__(autocast=False, **kwargs)  # float32 weights into `scaled_conv`
        if int(filters) < 1:
            raise ValueError(f"filters must be >= 1, got {filters}.")
        self.filters = int(filters)
        self.conv = keras.layers.Conv2D(self.filters, 3, padding="same", kernel_initializer="zeros",
                                        name="conv", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.logs = self.add_weight(name="logs", shape=(self.filters,), initializer="zeros")

    def call(self, x):
        x = tf.cast(x, self.compute_dtype)
        return scaled_conv(self.conv, x, scale=tf.exp(LOGSCALE_FACTOR * self.logs))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@keras.saving.register_keras_serializable(package="zoo")
class GlowCouplingNet(keras.layers.Layer):
    """`[b, H, W, C_in]` -> `[b, H, W, out_channels]`.

    Args:
      out_channels: C of the transformed half (additive) or twice it (affine).
      filters: width of the two hidden convolutions (512 in the paper).
      actnorm: an actnorm after each hidden convolution (openai/glow) instead of a bias.
    """

    def __init__(self, out_channels, filters=512, actnorm=False, **kwargs):
        super().__init__(autocast=False, **kwargs)  # float32 weights into `scaled_conv`
        if int(out_channels) < 1 or int(filters) < 1:
            raise ValueError(f"out_channels and filters must be >= 1, got {out_channels}, "
                             f"{filters}.")
        self.out_channels, self.filters = int(out_channels), int(filters)
        self.actnorm = bool(actnorm)
        self.conv_in = keras.layers.Conv2D(self.filters, 3, padding="same", name="conv_in",
                                           use_bias=not self.actnorm, dtype=self.dtype_policy)
        self.conv_mid = keras.layers.Conv2D(self.filters, 1, name="conv_mid",
                                            use_bias=not self.actnorm, dtype=self.dtype_policy)
        # The coupling's shift and scale come out of a float32 layer whatever the network's
        # precision: they are likelihood parameters.
        self.conv_out = ZeroConv2D(self.out_channels, name="conv_out", dtype="float32")
        self.norms = [ActNormParams(self.filters, name=f"actnorm_{n}")
                      for n in ("in", "mid")] if self.actnorm else []

    def build(self, input_shape):
        hidden = (*tuple(input_shape)[:-1], self.filters)
        self.conv_in.build(input_shape)
        self.conv_mid.build(hidden)
        self.conv_out.build(hidden)

    def _hidden(self, conv, x, index, initialize):
        """`relu(an(conv(x)))` of hidden layer `index`: `(conv(x) + b) * exp(s)` with its
        actnorm, folded into the convolution (after the initialization pass, which
        needs `conv(x)` itself to set b and s)."""
        if not self.actnorm:
            return tf.nn.relu(scaled_conv(conv, x))
        norm = self.norms[index]
        bias, log_scale = norm.initialize(conv(x)) if initialize else norm.params()
        scale = tf.exp(log_scale)
        return tf.nn.relu(scaled_conv(conv, x, scale=scale, shift=bias * scale))

    def call(self, x):
        return self._forward(x, initialize=False)

    def initialize(self, x):
        """`call(x)` with the hidden actnorms first set from their inputs (data-dependent,
        `ActNormParams.initialize`; a no-op once done)."""
        if not self.built:
            self.build(tuple(x.shape))
        return self._forward(x, initialize=True)

    def _forward(self, x, initialize):
        x = tf.cast(x, self.compute_dtype)
        h = self._hidden(self.conv_in, x, 0, initialize)
        h = self._hidden(self.conv_mid, h, 1, initialize)
        return self.conv_out(h)

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels,
                "filters": self.filters, "actnorm": self.actnorm}


@keras.saving.register_keras_serializable(package="zoo")
class LearnedPrior(keras.layers.Layer):
    """Glow's learned top prior: per-channel `(mean, log_std)`, each float32
    `[1, 1, 1, C]`, or `[b, 1, 1, C]` from class labels `[b]` when `num_classes` is
    set (a zero-initialized embedding added, openai/glow's `ycond`).
    Zero-initialized: a standard normal at first."""

    def __init__(self, channels, num_classes=None, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.num_classes = int(num_classes) if num_classes else None
        self.build()

    def build(self, input_shape=None):
        if self.built:
            return
        self.top = self.add_weight(name="top", shape=(2 * self.channels,), initializer="zeros")
        self.logs = self.add_weight(name="logs", shape=(2 * self.channels,), initializer="zeros")
        if self.num_classes:
            self.embedding = self.add_weight(name="class_embedding",
                                             shape=(self.num_classes, 2 * self.channels),
                                             initializer="zeros")
        self.built = True

    def params(self, labels=None):
        h = self.top.value * tf.exp(LOGSCALE_FACTOR * self.logs.value)
        h = tf.reshape(h, [1, 1, 1, -1])
        if self.num_classes and labels is not None:
            h = h + tf.reshape(tf.gather(self.embedding.value, labels), [-1, 1, 1, 2 * self.channels])
        return h[..., :self.channels], h[..., self.channels:]

    def call(self, labels=None):
        return self.params(labels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "num_classes": self.num_classes}
