"""One layer of the Gated PixelCNN (van den Oord et al. 2016b, "Conditional Image
Generation with PixelCNN Decoders", section 2.2 and Figure 2): a vertical and a
horizontal stack, which together have no blind spot."""

import keras
from keras import ops

from zoo.layers.dropout import ResumableDropout
from zoo.layers.masked_conv2d import MaskedConv2D


def gate(features):
    """`tanh(a) * sigmoid(b)` for `features = [a, b]` split along channels (eq. 2)."""
    a, b = ops.split(features, 2, axis=-1)
    return ops.tanh(a) * ops.sigmoid(b)


def shift_down(x):
    """Row r of the output is row r - 1 of `x` (row 0 is zeros): `[b, H, W, C]`."""
    return ops.pad(x, [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :-1]


@keras.saving.register_keras_serializable(package="zoo")
class VerticalConv2D(keras.layers.Layer):
    """Convolution whose output at row r sees input rows r - k//2 .. r, all columns
    within k//2: a `(k//2 + 1) x k` kernel, the centre row its last (no weight is
    masked away). Shifted down one row before it reaches the horizontal stack, it sees
    only rows strictly above. `[b, H, W, in]` -> `[b, H, W, filters]`."""

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(**kwargs)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size!r}.")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)

    def build(self, input_shape):
        k = self.kernel_size
        self.kernel = self.add_weight(name="kernel", shape=(k // 2 + 1, k, int(input_shape[-1]), self.filters),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, x):
        # Zero rows below the centre make a k x k kernel for a "same" convolution: the
        # same function as padding the input above, and faster on CPUs (oneDNN).
        kernel = ops.pad(self.kernel, [[0, self.kernel_size // 2], [0, 0], [0, 0], [0, 0]])
        return ops.conv(x, ops.cast(kernel, x.dtype), padding="same") + ops.cast(self.bias, x.dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package="zoo")
class GatedPixelCNNLayer(keras.layers.Layer):
    """`(v, h[, cond]) -> (v', h')`, each `[b, H, W, filters]` (van den Oord 2016b, Fig. 2):

        f_v = vconv(v)                                  (rows above and the current row)
        v'  = tanh(f_v,1 + V_1 cond) * sigmoid(f_v,2 + V_2 cond)
        f_h = hconv(h) + W_link shift_down(f_v)         (left pixels + rows strictly above)
        h'  = h + W_out (tanh(f_h,1 + H_1 cond) * sigmoid(f_h,2 + H_2 cond))

    hconv is a `1 x k` `MaskedConv2D` of `mask_type` ("A" in the first layer, which also
    has no residual since its input is the image); `cond` is a vector `[b, d]` (e.g. a
    one-hot class), added inside every gate. With `color_channels` > 1 every map of the
    horizontal stack belongs to a colour (i mod C), so `filters` must be a multiple of C.
    `vertical_output=False` (the last layer, whose v' nothing reads) returns `(None, h')`
    and has no V of its own: f_v reaches h' through the link only.
    """

    def __init__(self, filters, kernel_size, mask_type="B", color_channels=1, residual=True,
                 dropout=0.0, vertical_dropout=False, vertical_output=True, **kwargs):
        super().__init__(**kwargs)
        if filters % color_channels:
            raise ValueError(f"filters ({filters}) must be a multiple of color_channels ({color_channels}).")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.mask_type = mask_type
        self.color_channels = int(color_channels)
        self.residual = bool(residual)
        self.dropout, self.vertical_dropout = float(dropout), bool(vertical_dropout)
        self.vertical_output = bool(vertical_output)
        p, c = self.filters, self.color_channels
        dtype = self.dtype_policy  # sub-layers compute in this layer's dtype
        self.vconv = VerticalConv2D(2 * p, self.kernel_size, name="vertical", dtype=dtype)
        self.hconv = MaskedConv2D(2 * p, (1, self.kernel_size), mask_type, c, name="horizontal",
                                  dtype=dtype)
        self.link = keras.layers.Conv2D(2 * p, 1, name="vertical_to_horizontal", dtype=dtype)
        self.hout = MaskedConv2D(p, 1, "B", c, name="horizontal_out", dtype=dtype)
        self.drop = ResumableDropout(self.dropout, dtype=dtype)

    def build(self, v_shape, h_shape=None, cond_shape=None):
        p = self.filters
        self.vconv.build(v_shape)
        self.hconv.build(h_shape or v_shape)
        self.link.build((*v_shape[:-1], 2 * p))
        self.hout.build((*v_shape[:-1], p))
        if cond_shape is not None:
            # Embeddings of the condition, V and H of eq. 4 (no bias: the convs have one).
            if self.vertical_output:
                self.v_cond = self.add_weight(name="v_cond", shape=(cond_shape[-1], 2 * p), initializer="zeros")
            self.h_cond = self.add_weight(name="h_cond", shape=(cond_shape[-1], 2 * p), initializer="zeros")

    def call(self, v, h, cond=None, training=False):
        f_v = self.vconv(v)
        f_h = self.hconv(h) + self.link(shift_down(f_v))
        if cond is not None:
            cond = ops.cast(cond, f_v.dtype)
            f_h = f_h + ops.matmul(cond, ops.cast(self.h_cond, cond.dtype))[:, None, None]
        out = self.drop(self.hout(gate(f_h)), training=training)
        h_out = h + out if self.residual else out
        if not self.vertical_output:
            return None, h_out
        if cond is not None:
            f_v = f_v + ops.matmul(cond, ops.cast(self.v_cond, cond.dtype))[:, None, None]
        v_out = gate(f_v)
        if self.vertical_dropout:  # the same rate on the vertical stack's output
            v_out = self.drop(v_out, training=training)
        return v_out, h_out

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "mask_type": self.mask_type, "color_channels": self.color_channels,
                "residual": self.residual, "dropout": self.dropout,
                "vertical_dropout": self.vertical_dropout, "vertical_output": self.vertical_output}
