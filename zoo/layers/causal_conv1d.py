"""Dilated causal 1D convolution over a sequence (van den Oord et al. 2016, WaveNet)."""

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class CausalConv1D(keras.layers.Layer):
    """`y[t] = b + sum_j W_j x[t - s - j * dilation]`, j = 0..kernel_size-1.

    Mask type "B" (s = 0) lets position t see itself; type "A" (s = 1) sees only
    positions strictly before t, as the first layer of an autoregressive model must.
    Implemented by left padding with zeros and dropping the trailing output, not by
    masking the kernel, so no weight is wasted.

    Input `[batch, length, in_channels]` -> output `[batch, length, filters]`.
    """

    def __init__(self, filters, kernel_size, dilation_rate=1, mask_type="B",
                 use_bias=True, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}.")
        if kernel_size < 1 or dilation_rate < 1:
            raise ValueError(f"kernel_size and dilation_rate must be >= 1, got {kernel_size}, {dilation_rate}.")
        self.filters = filters
        self.kernel_size = kernel_size
        self.dilation_rate = dilation_rate
        self.mask_type = mask_type
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    @property
    def shift(self):
        return 1 if self.mask_type == "A" else 0

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(self.kernel_size, input_shape[-1], self.filters),
            initializer=self.kernel_initializer)
        self.bias = (self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
                     if self.use_bias else None)

    def call(self, x):
        pad = (self.kernel_size - 1) * self.dilation_rate + self.shift
        y = ops.pad(x, [[0, 0], [pad, 0], [0, 0]])
        y = ops.conv(y, self.kernel, strides=1, padding="valid", dilation_rate=self.dilation_rate)
        if self.shift:
            y = y[:, :-1]
        if self.bias is not None:
            y = y + self.bias
        return y

    @property
    def window(self):
        """Inputs one output reads: the last (kernel_size - 1) * dilation_rate + 1 positions
        (ending at t for type B, at t - 1 for type A)."""
        return (self.kernel_size - 1) * self.dilation_rate + 1

    def step(self, window):
        """The output at one new position from the inputs it reads, for cached sampling.

        `window [batch, self.window, in_channels]`, oldest first, holds the inputs at
        positions t - s - window + 1 .. t - s -> `[batch, filters]`; equals `call`'s
        output at t (taps j = 0..k-1 read window[j * dilation]).
        """
        taps = window[:, :: self.dilation_rate]
        y = tf.einsum("nkc,kco->no", taps, tf.cast(self.kernel, taps.dtype))
        return y + tf.cast(self.bias, y.dtype) if self.bias is not None else y

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "dilation_rate": self.dilation_rate, "mask_type": self.mask_type,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
