"""Gated ResNet block of PixelCNN++ (Salimans et al. 2017, section 2.4 and Figure 2)."""

import keras
import tensorflow as tf
from keras import ops

from zoo.layers.dropout import ResumableDropout
from zoo.layers.shifted_conv2d import DownRightShiftedConv2D, DownShiftedConv2D


def _concat_elu(x):
    return ops.elu(ops.concatenate([x, -x], axis=-1))


def _gated_sum(x, c):
    p, q = ops.split(c, 2, axis=-1)
    return x + p * ops.sigmoid(q)


# A 16-bit network's elementwise work on whole images runs as one XLA fusion per call
# (forward and gradient): TF's own bfloat16 Elu and EluGrad kernels are much slower than
# their float32 ones on CPU. float32 steps gain nothing fused, so they keep TF's kernels;
# so does the cached sampler's per-pixel work (`fused=False`), where an XLA launch costs
# more than the op. (A/Bs: results/benchmarks.md.)
_FUSED = {name: tf.function(fn, jit_compile=True, reduce_retracing=True)
          for name, fn in (("concat_elu", _concat_elu), ("gated_sum", _gated_sum))}
_FUSED_DTYPES = (tf.bfloat16, tf.float16)


def concat_elu(x, fused=True):
    """`elu([x, -x])` along channels: `[..., C]` -> `[..., 2C]` (keeps both signs' information).
    `fused`: one XLA fusion when `x` is 16-bit."""
    return (_FUSED["concat_elu"] if fused and x.dtype in _FUSED_DTYPES else _concat_elu)(x)


def gated_sum(x, c, fused=True):
    """`x + p * sigmoid(q)`, `[p, q] = c` split along channels: `[..., F]`, `[..., 2F]` -> `[..., F]`.
    `fused`: one XLA fusion when `x` is 16-bit."""
    return (_FUSED["gated_sum"] if fused and x.dtype in _FUSED_DTYPES else _gated_sum)(x, c)


@keras.saving.register_keras_serializable(package="zoo")
class GatedResNet(keras.layers.Layer):
    """`(x, a, cond) -> x'`, each of x, x' `[b, H, W, F]`:

        c  = conv(concat_elu(x)) + nin(concat_elu(a))        (a: shortcut input, optional)
        c  = dropout(concat_elu(c))
        [p, q] = conv_2F(c) + W cond                         (cond: `[b, d]`, optional)
        x' = x + p * sigmoid(q)

    `conv` is a `DownShiftedConv2D` (2 x 3, `direction="down"`, the up stream) or a
    `DownRightShiftedConv2D` (2 x 2, `"down_right"`, the up-left stream); nin is a 1 x 1
    conv. With the shifted inputs of PixelCNN++ each keeps its stream's causal support.
    The second conv starts at a tenth of the scale (init_scale 0.1, as weight norm's
    data-dependent initialization in openai/pixel-cnn), so every block starts near identity.
    """

    def __init__(self, direction="down", dropout=0.0, weight_norm=False, **kwargs):
        super().__init__(**kwargs)
        if direction not in ("down", "down_right"):
            raise ValueError(f"direction must be 'down' or 'down_right', got {direction!r}.")
        self.direction, self.dropout, self.weight_norm = direction, float(dropout), bool(weight_norm)
        self.drop = ResumableDropout(self.dropout, dtype=self.dtype_policy)

    def build(self, x_shape, a_shape=None, cond_shape=None):
        f = int(x_shape[-1])
        conv = DownShiftedConv2D if self.direction == "down" else DownRightShiftedConv2D
        dtype = self.dtype_policy  # sub-layers compute in this block's dtype
        self.conv_in = conv(f, weight_norm=self.weight_norm, name="conv_in", dtype=dtype)
        self.conv_in.build((*x_shape[:-1], 2 * f))
        self.conv_out = conv(2 * f, weight_norm=self.weight_norm, init_scale=0.1, name="conv_out",
                             dtype=dtype)
        self.conv_out.build((*x_shape[:-1], 2 * f))
        self.nin = None
        if a_shape is not None:
            self.nin = DownRightShiftedConv2D(f, (1, 1), weight_norm=self.weight_norm, name="nin",
                                              dtype=dtype)
            self.nin.build((*a_shape[:-1], 2 * int(a_shape[-1])))
        self.cond_kernel = None
        if cond_shape is not None:  # zeros: the label starts with no effect
            self.cond_kernel = self.add_weight(name="cond_kernel", shape=(int(cond_shape[-1]), 2 * f),
                                               initializer="zeros")

    def call(self, x, a=None, cond=None, training=False):
        c = self.conv_in(concat_elu(x), training=training)
        if a is not None:
            c = c + self.nin(concat_elu(a), training=training)
        c = self.drop(concat_elu(c), training=training)
        return self.gate(x, self.conv_out(c, training=training), self.label_bias(cond, x.dtype))

    def label_bias(self, cond, dtype):
        """`W cond` as `[b, 1, 1, 2F]`; None without a condition."""
        if cond is None:
            return None
        return ops.matmul(ops.cast(cond, dtype), ops.cast(self.cond_kernel, dtype))[:, None, None]

    def gate(self, x, c, label_bias=None, fused=True):
        """`x + p * sigmoid(q)` for `[p, q] = c + W cond`: the block's output from conv_out's
        (`fused`: see `gated_sum`)."""
        if label_bias is not None:
            c = c + label_bias
        return gated_sum(x, c, fused)

    def compute_output_shape(self, x_shape, a_shape=None, cond_shape=None):
        return x_shape

    def get_config(self):
        return {**super().get_config(), "direction": self.direction, "dropout": self.dropout,
                "weight_norm": self.weight_norm}
