"""The VAE's networks (`zoo.models.VAE`): encoders image -> h, decoders z -> pixel logits,
and the MLP of a coupling over z (the RealNVP prior).

Gated convolutions, as van den Berg, Hasenclever, Tomczak and Welling, "Sylvester
Normalizing Flows for Variational Inference", UAI 2018 (their code's `GatedConv2d`): a
layer is `a * sigmoid(g)` with `a` and `g` two convolutions of the input (no activation
on `a`). For 28x28 images the encoder is six of them, 32-32-64-64-64-256 channels,
kernel 5 with strides 1-2-1-2-1 ("same" padding), then a valid convolution whose kernel
covers what is left (7x7 for 28x28) down to 1x1: a 256-d `h`. The decoder mirrors it
with six gated transposed convolutions (a valid one from 1x1 up to 7x7, then 64-32-32-32-32
channels, kernel 5, strides 1-2-1-2-1) and a 1x1 convolution to the logits.

MLPs, as the lecture's VAE (Tomczak, "Deep Generative Modeling", ch. 4; 8x8 digits):
two hidden layers of 256 leaky-ReLU units each way.

The layers that output likelihood parameters (the decoders' logits, a coupling's shift
and log-scale) compute in float32 whatever the network's dtype policy.
"""

import keras
import numpy as np
import tensorflow as tf

ENCODER_FILTERS = (32, 32, 64, 64, 64, 256)
ENCODER_STRIDES = (1, 2, 1, 2, 1, 1)
DECODER_FILTERS = (64, 64, 32, 32, 32, 32)
DECODER_STRIDES = (1, 1, 2, 1, 2, 1)


def _ints(values, name):
    values = [int(v) for v in values]
    if not values or min(values) < 1:
        raise ValueError(f"{name} must be a non-empty list of positive integers, got {values}.")
    return values


def conv_reduction(strides):
    """The factor by which a conv net of these strides shrinks H and W before its last layer."""
    return int(np.prod(strides[:-1]))


@keras.saving.register_keras_serializable(package="zoo")
class GatedConv2D(keras.layers.Layer):
    """`conv_a(x) * sigmoid(conv_g(x))`, one convolution of `2 * filters` channels split in
    two; `transpose=True` makes both transposed convolutions."""

    def __init__(self, filters, kernel_size, strides=1, padding="same", transpose=False, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.strides, self.padding = int(filters), int(strides), padding
        self.kernel_size = (tuple(int(k) for k in kernel_size) if isinstance(kernel_size, (list, tuple))
                            else int(kernel_size))
        self.transpose = bool(transpose)
        conv = keras.layers.Conv2DTranspose if self.transpose else keras.layers.Conv2D
        self.conv = conv(2 * self.filters, self.kernel_size, strides=self.strides, padding=padding,
                         name="conv", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.conv.build(input_shape)

    def call(self, x):
        a, g = tf.split(self.conv(x), 2, axis=-1)
        return a * tf.sigmoid(g)

    def compute_output_shape(self, input_shape):
        return (*self.conv.compute_output_shape(input_shape)[:-1], self.filters)

    def get_config(self):
        kernel = list(self.kernel_size) if isinstance(self.kernel_size, tuple) else self.kernel_size
        return {**super().get_config(), "filters": self.filters, "kernel_size": kernel,
                "strides": self.strides, "padding": self.padding, "transpose": self.transpose}


@keras.saving.register_keras_serializable(package="zoo")
class GatedConvEncoder(keras.layers.Layer):
    """Images `[batch, H, W, C]` (floats) -> `h [batch, filters[-1]]`: gated convolutions
    with "same" padding and `strides`, the last one valid with a kernel that covers the
    remaining `H / prod(strides[:-1])` x `W / ...` grid (H and W must be divisible by it)."""

    def __init__(self, filters=ENCODER_FILTERS, kernel_size=5, strides=ENCODER_STRIDES, **kwargs):
        super().__init__(**kwargs)
        self.filters = _ints(filters, "filters")
        self.strides = _ints(strides, "strides")
        if len(self.strides) != len(self.filters) or len(self.filters) < 2:
            raise ValueError(f"filters and strides must have the same length >= 2, got {filters}, {strides}.")
        self.kernel_size = int(kernel_size)

    def build(self, input_shape):
        height, width = int(input_shape[1]), int(input_shape[2])
        reduction = conv_reduction(self.strides)
        if height % reduction or width % reduction:
            raise ValueError(f"GatedConvEncoder with strides {self.strides} needs H and W divisible by "
                             f"{reduction}, got {height}x{width}.")
        last = (height // reduction, width // reduction)
        self.convs = [GatedConv2D(f, self.kernel_size, s, name=f"gated{i}", dtype=self.dtype_policy)
                      for i, (f, s) in enumerate(zip(self.filters[:-1], self.strides[:-1]))]
        self.convs.append(GatedConv2D(self.filters[-1], last, 1, padding="valid",
                                      name=f"gated{len(self.filters) - 1}", dtype=self.dtype_policy))
        shape = tuple(input_shape)
        for conv in self.convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)

    def call(self, x):
        for conv in self.convs:
            x = conv(x)
        return tf.reshape(x, [-1, self.filters[-1]])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.filters[-1])

    def get_config(self):
        return {**super().get_config(), "filters": list(self.filters), "kernel_size": self.kernel_size,
                "strides": list(self.strides)}


@keras.saving.register_keras_serializable(package="zoo")
class GatedConvDecoder(keras.layers.Layer):
    """`z [batch, latent]` -> logits `[batch, H, W, out_channels]` (float32): z as a 1x1
    grid, a valid gated transposed convolution up to `H / prod(strides[1:])`, then gated
    transposed convolutions with "same" padding and `strides[1:]`, and a 1x1 convolution."""

    def __init__(self, image_shape, out_channels, filters=DECODER_FILTERS, kernel_size=5,
                 strides=DECODER_STRIDES, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.out_channels = int(out_channels)
        self.filters = _ints(filters, "filters")
        self.strides = _ints(strides, "strides")
        if len(self.strides) != len(self.filters) or len(self.filters) < 2:
            raise ValueError(f"filters and strides must have the same length >= 2, got {filters}, {strides}.")
        self.kernel_size = int(kernel_size)
        height, width = self.image_shape[:2]
        growth = int(np.prod(self.strides[1:]))
        if height % growth or width % growth:
            raise ValueError(f"GatedConvDecoder with strides {self.strides} needs H and W divisible by "
                             f"{growth}, got {height}x{width}.")
        first = (height // growth, width // growth)
        self.convs = [GatedConv2D(self.filters[0], first, 1, padding="valid", transpose=True,
                                  name="gated0", dtype=self.dtype_policy)]
        self.convs += [GatedConv2D(f, self.kernel_size, s, transpose=True, name=f"gated{i + 1}",
                                   dtype=self.dtype_policy)
                       for i, (f, s) in enumerate(zip(self.filters[1:], self.strides[1:]))]
        self.head = keras.layers.Conv2D(self.out_channels, 1, name="logits", dtype="float32")

    def build(self, z_shape):
        shape = (z_shape[0], 1, 1, int(z_shape[-1]))
        for conv in self.convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        self.head.build(shape)

    def call(self, z):
        x = tf.reshape(z, [-1, 1, 1, z.shape[-1]])
        for conv in self.convs:
            x = conv(x)
        return self.head(x)

    def compute_output_shape(self, z_shape):
        return (z_shape[0], *self.image_shape[:2], self.out_channels)

    def get_config(self):
        return {**super().get_config(), "image_shape": list(self.image_shape),
                "out_channels": self.out_channels, "filters": list(self.filters),
                "kernel_size": self.kernel_size, "strides": list(self.strides)}


@keras.saving.register_keras_serializable(package="zoo")
class MLPEncoder(keras.layers.Layer):
    """Images `[batch, H, W, C]` (floats) -> `h [batch, hidden_units[-1]]`: flattened, then
    dense layers with `activation`."""

    def __init__(self, hidden_units=(256, 256), activation="leaky_relu", **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = _ints(hidden_units, "hidden_units")
        self.activation = activation
        self.dense = [keras.layers.Dense(u, activation=activation, name=f"dense{i}", dtype=self.dtype_policy)
                      for i, u in enumerate(self.hidden_units)]

    def build(self, input_shape):
        size = int(np.prod(input_shape[1:]))
        for layer in self.dense:
            layer.build((None, size))
            size = layer.units

    def call(self, x):
        x = tf.reshape(x, [tf.shape(x)[0], -1])
        for layer in self.dense:
            x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.hidden_units[-1])

    def get_config(self):
        return {**super().get_config(), "hidden_units": list(self.hidden_units), "activation": self.activation}


@keras.saving.register_keras_serializable(package="zoo")
class MLPDecoder(keras.layers.Layer):
    """`z [batch, latent]` -> logits `[batch, H, W, out_channels]` (float32): dense layers
    with `activation`, then a float32 dense layer of `H * W * out_channels` outputs."""

    def __init__(self, image_shape, out_channels, hidden_units=(256, 256), activation="leaky_relu", **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.out_channels = int(out_channels)
        self.hidden_units = _ints(hidden_units, "hidden_units")
        self.activation = activation
        self.dense = [keras.layers.Dense(u, activation=activation, name=f"dense{i}", dtype=self.dtype_policy)
                      for i, u in enumerate(self.hidden_units)]
        height, width = self.image_shape[:2]
        self.head = keras.layers.Dense(height * width * self.out_channels, name="logits", dtype="float32")

    def build(self, z_shape):
        size = int(z_shape[-1])
        for layer in self.dense:
            layer.build((None, size))
            size = layer.units
        self.head.build((None, size))

    def call(self, z):
        for layer in self.dense:
            z = layer(z)
        return tf.reshape(self.head(z), [-1, *self.image_shape[:2], self.out_channels])

    def compute_output_shape(self, z_shape):
        return (z_shape[0], *self.image_shape[:2], self.out_channels)

    def get_config(self):
        return {**super().get_config(), "image_shape": list(self.image_shape),
                "out_channels": self.out_channels, "hidden_units": list(self.hidden_units),
                "activation": self.activation}


@keras.saving.register_keras_serializable(package="zoo")
class CouplingMLP(keras.layers.Layer):
    """The networks of an affine coupling over a vector (the lecture's flow prior): `x_a
    [batch, d]` -> `(shift, log_scale)`, each `[batch, out_dim]`; dense layers with
    `activation`, then a float32 output layer (zero-initialized: the coupling starts as
    the identity) whose log-scale half goes through tanh."""

    def __init__(self, out_dim, hidden_units=(256, 256), activation="leaky_relu", **kwargs):
        super().__init__(**kwargs)
        self.out_dim = int(out_dim)
        self.hidden_units = _ints(hidden_units, "hidden_units")
        self.activation = activation
        self.dense = [keras.layers.Dense(u, activation=activation, name=f"dense{i}", dtype=self.dtype_policy)
                      for i, u in enumerate(self.hidden_units)]
        self.out = keras.layers.Dense(2 * self.out_dim, kernel_initializer="zeros", name="shift_log_scale",
                                      dtype="float32")

    def build(self, input_shape):
        size = int(input_shape[-1])
        for layer in self.dense:
            layer.build((None, size))
            size = layer.units
        self.out.build((None, size))

    def call(self, x):
        for layer in self.dense:
            x = layer(x)
        shift, log_scale = tf.split(self.out(x), 2, axis=-1)
        return shift, tf.tanh(log_scale)

    def get_config(self):
        return {**super().get_config(), "out_dim": self.out_dim, "hidden_units": list(self.hidden_units),
                "activation": self.activation}
