"""Masked 2D convolution of PixelCNN (van den Oord et al. 2016a, "Pixel Recurrent
Neural Networks", section 3.4 and Figure 2)."""

import keras
import numpy as np
from keras import ops

from zoo.layers.window_product import window_product


def _pair(kernel_size):
    kh, kw = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
    return int(kh), int(kw)


def color_groups(channels, color_channels):
    """Colour group of each of `channels` feature maps: channel i belongs to colour
    i mod C, so splitting maps into halves (the gates) keeps every colour in each half
    as long as the half is a multiple of C."""
    return np.arange(channels) % color_channels


def pixelcnn_mask(kernel_size, in_channels, out_channels, mask_type, color_channels=1):
    """Mask `[kh, kw, in, out]` of 0/1: rows above the centre, pixels left of it in its
    row, and at the centre only the colours allowed by the mask type.

    With colours ordered R, G, B (C x H x W ordering within a pixel), output colour
    g sees input colour g' at the centre iff g' < g (type A) or g' <= g (type B).
    """
    kh, kw = _pair(kernel_size)
    ch, cw = kh // 2, kw // 2
    mask = np.zeros((kh, kw, in_channels, out_channels), np.float32)
    mask[:ch] = 1.0
    mask[ch, :cw] = 1.0
    g_in = color_groups(in_channels, color_channels)[:, None]
    g_out = color_groups(out_channels, color_channels)[None, :]
    mask[ch, cw] = (g_in < g_out) if mask_type == "A" else (g_in <= g_out)
    return mask


@keras.saving.register_keras_serializable(package="zoo")
class MaskedConv2D(keras.layers.Layer):
    """`y = conv2d(x, W * M) + b` with "same" padding and the PixelCNN mask M.

    Output at pixel (r, c), colour g depends only on inputs at pixels before (r, c) in
    raster order, and at (r, c) itself on colours before g (type "A", the first layer)
    or up to g (type "B", every later layer). Feature maps are assigned to colours by
    `color_groups` (channel i -> colour i mod `color_channels`); with one colour the
    centre is simply excluded (A) or included (B).

    Input `[batch, H, W, in_channels]` -> output `[batch, H, W, filters]`.

    Args:
      filters: output feature maps.
      kernel_size: odd int or (odd, odd) pair, e.g. 7 or (1, 3).
      mask_type: "A" or "B".
      color_channels: colours C of the image (1 grey, 3 RGB).
    """

    def __init__(self, filters, kernel_size, mask_type="B", color_channels=1, use_bias=True,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}.")
        kh, kw = _pair(kernel_size)
        if kh < 1 or kw < 1 or kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size!r}.")
        if int(color_channels) < 1:
            raise ValueError(f"color_channels must be >= 1, got {color_channels}.")
        self.filters = int(filters)
        self.kernel_size = (kh, kw)
        self.mask_type = mask_type
        self.color_channels = int(color_channels)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(*self.kernel_size, in_channels, self.filters),
                                      initializer=self.kernel_initializer)
        self.bias = (self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
                     if self.use_bias else None)
        self.mask = pixelcnn_mask(self.kernel_size, in_channels, self.filters, self.mask_type,
                                  self.color_channels)

    def masked_kernel(self, dtype):
        """`W * M` `[kh, kw, in, filters]`, cast to `dtype`."""
        return ops.cast(self.kernel * ops.cast(self.mask, self.kernel.dtype), dtype)

    def call(self, x):
        return self._biased(ops.conv(x, self.masked_kernel(x.dtype), strides=1, padding="same"))

    def step(self, window, kernel):
        """Output at one pixel: `window [b, kh, kw, in]` holds the inputs centred on it
        (rows below and pixels right of the centre are masked away: any finite values)
        -> `[b, 1, 1, filters]`, `call`'s output at that pixel. `kernel` is
        `masked_kernel(window.dtype)`, made once by a sampler outside its loop."""
        return self._biased(window_product(window, kernel))

    def _biased(self, y):
        return y + ops.cast(self.bias, y.dtype) if self.bias is not None else y

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "mask_type": self.mask_type, "color_channels": self.color_channels,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
