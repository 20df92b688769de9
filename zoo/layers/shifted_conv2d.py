"""Down-shifted and down-right-shifted convolutions of PixelCNN++ (Salimans et al. 2017,
section 2.4 and Figure 2; the shifts replace PixelCNN's masks), with optional weight
normalization and data-dependent initialization (Salimans and Kingma 2016)."""

import keras
import tensorflow as tf
from keras import ops

from zoo.layers.window_product import window_product


def shift_right(x):
    """Column c of the output is column c - 1 of `x` (column 0 is zeros): `[b, H, W, C]`."""
    return ops.pad(x, [[0, 0], [0, 0], [1, 0], [0, 0]])[:, :, :-1]


class _ShiftedConv(keras.layers.Layer):
    """What all four shifted convolutions share: the kernel, optional weight norm, the bias.

    Weight norm (`weight_norm=True`): kernel = g * v / ||v||, the norm over all axes but
    the output one. The first training call initializes g and the bias from its batch
    so that each output map has mean 0 and standard deviation `init_scale`
    (g = init_scale / sd, b = -mean * g); an `initialized` weight records that this
    happened, so a loaded or resumed model is never re-initialized.
    """

    transposed = False
    right = False  # down-right (kernel ends at the centre column) or down (centred)

    def __init__(self, filters, kernel_size, strides=1, weight_norm=False, init_scale=1.0, **kwargs):
        super().__init__(**kwargs)
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        if kh < 1 or kw < 1 or (not self.right and kw % 2 == 0):
            raise ValueError(f"kernel_size must be positive (and of odd width for a down-shifted "
                             f"conv), got {kernel_size!r}.")
        if int(strides) < 1:
            raise ValueError(f"strides must be >= 1, got {strides}.")
        self.filters, self.kernel_size, self.strides = int(filters), (int(kh), int(kw)), int(strides)
        self.weight_norm, self.init_scale = bool(weight_norm), float(init_scale)

    def build(self, input_shape):
        kh, kw = self.kernel_size
        c_in = int(input_shape[-1])
        shape = (kh, kw, self.filters, c_in) if self.transposed else (kh, kw, c_in, self.filters)
        init = keras.initializers.RandomNormal(stddev=0.05) if self.weight_norm else "glorot_uniform"
        self.kernel = self.add_weight(name="kernel", shape=shape, initializer=init)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        if self.weight_norm:
            self.g = self.add_weight(name="g", shape=(self.filters,), initializer="ones")
            self.initialized = self.add_weight(name="initialized", shape=(), dtype="int32",
                                               initializer="zeros", trainable=False)

    def _direction(self):
        v = tf.convert_to_tensor(self.kernel.value)
        axes = [0, 1, 3] if self.transposed else [0, 1, 2]
        return v * tf.math.rsqrt(tf.reduce_sum(tf.square(v), axis=axes, keepdims=True))

    def _g_shape(self, g):
        return g[:, None] if self.transposed else g

    def _apply(self, x, kernel, padded=False):
        kh, kw = self.kernel_size
        kernel = ops.cast(kernel, x.dtype)
        if not self.transposed:
            if not padded:
                x = ops.pad(x, [[0, 0], [kh - 1, 0], [self.left, kw - 1 - self.left], [0, 0]])
            elif tuple(x.shape[1:3]) == (kh, kw):  # one window, one output: a matrix product
                return window_product(x, kernel)
            return ops.conv(x, kernel, strides=self.strides, padding="valid")
        h, w = ops.shape(x)[1], ops.shape(x)[2]
        y = ops.conv_transpose(x, kernel, strides=self.strides, padding="valid")
        left = 0 if self.right else (kw - 1) // 2
        return y[:, :h * self.strides, left:left + w * self.strides]

    def _data_init(self, x):
        """Sets g and the bias from the batch `x` (first training call only); returns nothing."""
        def init():
            y = tf.cast(self._apply(x, self._direction()), tf.float32)
            mean, var = tf.nn.moments(y, axes=[0, 1, 2])
            scale = self.init_scale * tf.math.rsqrt(var + 1e-8)
            return tf.group(self.g.assign(scale), self.bias.assign(-mean * scale),
                            self.initialized.assign(1))
        tf.cond(tf.equal(self.initialized.value, 0), init, tf.no_op)

    def effective_weights(self):
        """`(kernel, bias)` as `call` applies them: kernel = g v / ||v|| under weight norm."""
        if self.weight_norm:
            return self._direction() * self._g_shape(tf.convert_to_tensor(self.g.value)), self.bias
        return self.kernel, self.bias

    def call(self, x, training=False):
        if self.weight_norm and training:
            self._data_init(x)
        return self.convolve(x, *self.effective_weights())

    def convolve(self, x, kernel, bias, padded=False):
        """`call` with the weights given (`effective_weights()`, computed once outside a
        sampling loop). `padded=True`: `x` is already padded as `call` pads it (a window,
        or a band of rows, of the padded input), so a `kh x kw` window gives its one output."""
        return self._apply(x, kernel, padded) + ops.cast(bias, x.dtype)

    @property
    def left(self):
        """Zero columns `call` pads on the left (the rest of kw - 1 on the right)."""
        kw = self.kernel_size[1]
        return kw - 1 if self.right else (kw - 1) // 2

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": self.strides, "weight_norm": self.weight_norm, "init_scale": self.init_scale}


@keras.saving.register_keras_serializable(package="zoo")
class DownShiftedConv2D(_ShiftedConv):
    """Output (r, c) sees input rows r - kh + 1 .. r and columns c - (kw-1)/2 .. c + (kw-1)/2
    (the input padded kh - 1 rows on top, (kw - 1)/2 columns each side; a `valid` conv).
    Followed by `shift_down`, it sees only rows strictly above: the "up" stream.
    `[b, H, W, in]` -> `[b, ceil(H / s), ceil(W / s), filters]`; default kernel 2 x 3."""

    def __init__(self, filters, kernel_size=(2, 3), strides=1, weight_norm=False, init_scale=1.0, **kwargs):
        super().__init__(filters, kernel_size, strides, weight_norm, init_scale, **kwargs)


@keras.saving.register_keras_serializable(package="zoo")
class DownRightShiftedConv2D(_ShiftedConv):
    """Output (r, c) sees input rows r - kh + 1 .. r and columns c - kw + 1 .. c: up and
    to the left, the current pixel included (shift it away with `shift_right` or
    `shift_down`): the "up-left" stream. Default kernel 2 x 2."""

    right = True

    def __init__(self, filters, kernel_size=(2, 2), strides=1, weight_norm=False, init_scale=1.0, **kwargs):
        super().__init__(filters, kernel_size, strides, weight_norm, init_scale, **kwargs)


@keras.saving.register_keras_serializable(package="zoo")
class DownShiftedConv2DTranspose(_ShiftedConv):
    """Transposed `DownShiftedConv2D` (upsampling by `strides`): a `valid` transposed conv
    cropped to its top `H s` rows and its centre `W s` columns, so output row r only
    receives input rows i with s i <= r. `[b, H, W, in]` -> `[b, H s, W s, filters]`."""

    transposed = True

    def __init__(self, filters, kernel_size=(2, 3), strides=2, weight_norm=False, init_scale=1.0, **kwargs):
        super().__init__(filters, kernel_size, strides, weight_norm, init_scale, **kwargs)


@keras.saving.register_keras_serializable(package="zoo")
class DownRightShiftedConv2DTranspose(_ShiftedConv):
    """Transposed `DownRightShiftedConv2D`: cropped to the top `H s` rows and left `W s`
    columns, so output (r, c) receives input (i, j) only when s i <= r and s j <= c."""

    transposed = True
    right = True

    def __init__(self, filters, kernel_size=(2, 2), strides=2, weight_norm=False, init_scale=1.0, **kwargs):
        super().__init__(filters, kernel_size, strides, weight_norm, init_scale, **kwargs)
