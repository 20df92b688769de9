"""PixelCNN (van den Oord et al. 2016a) and Gated PixelCNN (van den Oord et al. 2016b).

Both factorize the image in raster order, and within a pixel over its colours
(R, then G given R, then B given R and G):

    log p(x) = sum_{i, c} log Categorical(x_{i,c} | softmax(f_{i,c}(x_{<i}, x_{i,<c}))),

with f a stack of masked convolutions that outputs `num_levels` logits per pixel and
colour. PixelCNN stacks square masked convs, whose receptive field has a blind spot
(pixels up and to the right that no path reaches); the Gated PixelCNN's vertical and
horizontal stacks reach every earlier pixel within their extent.
"""

import keras
import tensorflow as tf

from zoo.layers import GatedPixelCNNLayer, MaskedConv2D, ResumableDropout
from zoo.distributions import seeded_draws
from zoo.models.base import DensityModel, centered_pixels
from zoo.models.pixelcnn_sampling import GatedPixelCNNColumns, PixelCNNColumns, raster_pass


class _PixelModel(DensityModel):
    """What both PixelCNNs share: input scaling, the per-(pixel, colour) softmax
    likelihood, and both samplers. Subclasses implement `features(x, cond, training) ->
    [b, H, W, F]` and `columns(n, cond)` (the cached sampler's per-pixel network);
    heads are built here."""

    capabilities = frozenset({"autoregressive"})  # `cached_pass`

    def __init__(self, image_shape, num_levels, head_filters, position_bias=False, **kwargs):
        super().__init__(image_shape, num_levels, **kwargs)
        self.position_bias = bool(position_bias)
        # The network's layers compute in 16 bits when asked (variables stay float32);
        # the logits come out of a float32 layer and the likelihood is float32.
        c = self.image_shape[-1]
        self.head_filters = int(head_filters)
        self.head = [MaskedConv2D(self.head_filters, 1, "B", c, name="head_0", dtype=self.net_dtype),
                     MaskedConv2D(c * self.num_levels, 1, "B", c, name="logits", dtype="float32")]

    def build(self, input_shape=None):
        if self.position_bias:  # learned logits per (pixel, colour, level), added to the head's
            self.position_logits = self.add_weight(
                name="position_logits", shape=(*self.image_shape[:2], self.image_shape[2] * self.num_levels),
                initializer="zeros")
        super().build(input_shape)

    def logit_bias_at(self, r, c):
        """The position bias of pixel (r, c), `[C L]` float32 (head order), or 0."""
        return self.position_logits[r, c] if self.position_bias else 0.0

    def scale(self, images):
        """int32 `[b, H, W, C]` -> float in [-1, 1], in the network's compute dtype."""
        return centered_pixels(images, self.num_levels, self.head[0].compute_dtype)

    def logits_from_inputs(self, x, labels=None, training=False):
        """Scaled images `[b, H, W, C]` -> logits `[b, H, W, C, num_levels]` float32.

        Differentiable in `x`: the causality tests take gradients through it. Logit map
        j is colour j mod C (see `MaskedConv2D`), level j // C.
        """
        cond = None
        if self.num_classes:
            cond = tf.one_hot(labels, self.num_classes, dtype=x.dtype)
        h = self.features(x, cond, training)
        h = self.head[1](tf.nn.relu(self.head[0](tf.nn.relu(h))))
        height, width, c = self.image_shape
        h = tf.cast(h, tf.float32)
        if self.position_bias:  # input-independent: causality is unchanged
            h = h + self.position_logits
        logits = tf.reshape(h, [-1, height, width, self.num_levels, c])
        return tf.transpose(logits, [0, 1, 2, 4, 3])

    def _log_prob(self, images, training, labels=None):
        logits = self.logits_from_inputs(self.scale(images), labels, training=training)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=images, logits=logits)
        return -tf.reduce_sum(nll, axis=[1, 2, 3])

    def _sample(self, n, temperature, seed, labels=None):
        """Cached sampling (`cached_pass`): each new (pixel, colour) costs one pixel of
        every layer; draws the same images as `_sample_naive` for the same seed (both
        compute in float32)."""
        return self.cached_pass(n, seeded_draws(temperature, seed), labels)

    def cached_pass(self, n, choose, labels=None):
        """The cached incremental pass (`pixelcnn_sampling.raster_pass`): value d = (r W +
        c) C + g of `n` images is `choose(d, logits)` (int32 `[n]`) given its logits `[n,
        L]` float32, a draw when sampling, the coded value when coding. `labels`: int32
        `[n]` of a class-conditional model, else None. Returns int32 `[n, H, W, C]`."""
        cond = None
        if labels is not None:  # as `logits_from_inputs` makes it
            cond = tf.one_hot(labels, self.num_classes, dtype=self.head[0].compute_dtype)
        return raster_pass(self, self.columns(n, cond), n, choose)

    def _sample_naive(self, n, temperature, seed, labels=None):
        """The plain loop: H * W * C passes of the whole network, one new value each.

        `labels`: int32 `[n]` of a class-conditional model, else None.
        """
        d_total = self.num_dims
        choose = seeded_draws(temperature, seed)

        def step(d, flat):
            images = tf.reshape(flat, [n, *self.image_shape])
            logits = tf.reshape(self.logits_from_inputs(self.scale(images), labels),
                                [n, d_total, self.num_levels])[:, d]
            value = choose(d, logits)
            return d + 1, flat + tf.one_hot(d, d_total, dtype=tf.int32)[None] * value[:, None]

        _, flat = tf.while_loop(lambda d, _: d < d_total, step,
                                (tf.constant(0), tf.zeros([n, d_total], tf.int32)))
        return tf.reshape(flat, [n, *self.image_shape])

    def get_config(self):
        return {**super().get_config(), "head_filters": self.head_filters,
                "position_bias": self.position_bias}


@keras.saving.register_keras_serializable(package="zoo")
class PixelCNN(_PixelModel):
    """PixelCNN of van den Oord et al. 2016a (section 3.4, Figure 5, Table 1):

        7x7 conv mask A (2h maps)
        num_blocks x residual block: ReLU-1x1(h)-ReLU-kxk mask B(h)-ReLU-1x1(2h), + input
        ReLU-1x1 mask B (head_filters)-ReLU-1x1 mask B (C * num_levels logits)

    Args:
      image_shape, num_levels: see `DensityModel`.
      filters: h, the maps inside a residual block (the stream has 2h).
      num_blocks: residual blocks.
      kernel_size: the blocks' masked conv (3 in the paper); `first_kernel_size` (7).
      head_filters: maps of the first output 1x1 conv.
      dropout: rate on each block's output while training.
      mixed_precision: None, "bfloat16" or "float16" for the network's convolutions
        (variables, logits and the likelihood stay float32).
      position_bias: learn a logit bias per pixel, colour and level (zero-initialized),
        as the ARM's position embedding: the network knows where it is on small images.
    """

    def __init__(self, image_shape, num_levels, filters=64, num_blocks=6, kernel_size=3,
                 first_kernel_size=7, head_filters=128, dropout=0.0, **kwargs):
        super().__init__(image_shape, num_levels, head_filters, **kwargs)
        if num_blocks < 0:
            raise ValueError(f"num_blocks must be >= 0, got {num_blocks}.")
        c = self.image_shape[-1]
        self.filters, self.num_blocks = int(filters), int(num_blocks)
        self.kernel_size, self.first_kernel_size = int(kernel_size), int(first_kernel_size)
        self.dropout = float(dropout)
        f = self.filters
        dtype = self.net_dtype
        self.first = MaskedConv2D(2 * f, self.first_kernel_size, "A", c, name="conv_a", dtype=dtype)
        self.blocks = [[MaskedConv2D(f, 1, "B", c, name=f"block_{i}_in", dtype=dtype),
                        MaskedConv2D(f, self.kernel_size, "B", c, name=f"block_{i}_conv", dtype=dtype),
                        MaskedConv2D(2 * f, 1, "B", c, name=f"block_{i}_out", dtype=dtype)]
                       for i in range(self.num_blocks)]
        self.drop = ResumableDropout(self.dropout, dtype=dtype)

    def features(self, x, cond, training):
        h = self.first(x)
        for conv_in, conv, conv_out in self.blocks:
            r = conv_out(tf.nn.relu(conv(tf.nn.relu(conv_in(tf.nn.relu(h))))))
            h = h + self.drop(r, training=training)
        return h

    def columns(self, n, cond):
        del cond
        return PixelCNNColumns(self, n)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "num_blocks": self.num_blocks,
                "kernel_size": self.kernel_size, "first_kernel_size": self.first_kernel_size,
                "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="zoo")
class GatedPixelCNN(_PixelModel):
    """Gated PixelCNN of van den Oord et al. 2016b (section 2.2, Figure 2):

        v, h = image, image
        layer 0: `GatedPixelCNNLayer` with a `first_kernel_size` kernel, mask A, no residual
        layers 1..num_layers-1: `kernel_size`, mask B, residual
        ReLU-1x1 mask B (head_filters)-ReLU-1x1 mask B (C * num_levels logits) on h

    Class-conditional when `num_classes` is set (eq. 4: a one-hot label inside every
    gate): `log_prob(images, labels)`, `sample(n, labels=...)`.

    Args:
      image_shape, num_levels: see `DensityModel`.
      filters: maps p of both stacks (a multiple of the image's channels).
      num_layers: gated layers.
      kernel_size, first_kernel_size: odd widths of the stacks' convolutions.
      head_filters: maps of the first output 1x1 conv.
      num_classes: classes of the condition (None: unconditional).
      dropout: rate on each layer's horizontal output while training.
      vertical_dropout: the same rate on each layer's vertical output too (regularizes
        the vertical stack, which has neither dropout nor a residual otherwise).
      mixed_precision: None, "bfloat16" or "float16" for the network's convolutions
        (variables, logits and the likelihood stay float32).
      position_bias: learn a logit bias per pixel, colour and level (zero-initialized),
        as the ARM's position embedding: the network knows where it is on small images.
    """

    def __init__(self, image_shape, num_levels, filters=32, num_layers=8, kernel_size=3,
                 first_kernel_size=7, head_filters=128, num_classes=None, dropout=0.0,
                 vertical_dropout=False, **kwargs):
        super().__init__(image_shape, num_levels, head_filters, **kwargs)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}.")
        if num_classes is not None and int(num_classes) < 1:
            raise ValueError(f"num_classes must be None or >= 1, got {num_classes}.")
        self.filters, self.num_layers = int(filters), int(num_layers)
        self.kernel_size, self.first_kernel_size = int(kernel_size), int(first_kernel_size)
        self.num_classes = int(num_classes) if num_classes is not None else None
        self.dropout, self.vertical_dropout = float(dropout), bool(vertical_dropout)
        c = self.image_shape[-1]
        self.layers_ = [
            GatedPixelCNNLayer(self.filters, self.first_kernel_size if i == 0 else self.kernel_size,
                               "A" if i == 0 else "B", c, residual=i > 0, dropout=self.dropout,
                               vertical_dropout=self.vertical_dropout,
                               vertical_output=i < self.num_layers - 1,  # the last v' is not read
                               name=f"gated_{i}", dtype=self.net_dtype)
            for i in range(self.num_layers)]

    def features(self, x, cond, training):
        v = h = x
        for layer in self.layers_:
            v, h = layer(v, h, cond, training=training)
        return h

    def columns(self, n, cond):
        return GatedPixelCNNColumns(self, n, cond)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "num_layers": self.num_layers,
                "kernel_size": self.kernel_size, "first_kernel_size": self.first_kernel_size,
                "num_classes": self.num_classes, "dropout": self.dropout,
                "vertical_dropout": self.vertical_dropout}

