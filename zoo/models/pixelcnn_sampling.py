"""Cached sampling for PixelCNN and the Gated PixelCNN (Ramachandran et al. 2017, "Fast
Generation for Convolutional Autoregressive Models", section 3).

The naive sampler runs the whole network over the whole image once per (pixel, colour).
Here the image is drawn in raster order and every layer computes only its output at
the current pixel, from caches of its input:

  * a masked kh x kw conv at pixel (r, c) reads its input's kh//2 complete rows above
    (cached when a row ends) and, in row r, the kw//2 pixels left of c (a queue) and c;
  * the Gated PixelCNN's vertical stack at row r reads rows <= r only and reaches the
    horizontal stack shifted down a row: it runs once per row, for the next row;
  * 1x1 convs, gates and residual sums act on the pixel alone.

A layer's output at (r, c) depends only on the pixels before (r, c) and, at (r, c), on
colours before the current one; at the pixel's last colour it is final, so no cache is
ever revised. A pixel's C colours are drawn in order (R, G given R, B given R and G),
re-running the pixel's column of every layer each time.

Each step calls the layers' own convolutions (`MaskedConv2D.step`, `VerticalConv2D`,
the link) on windows of the caches, with the same sums in the same order in the
layers' compute dtype, and draws from the naive loop's random stream (`seeded_draws`:
`stateless_fold_in(seed, d)`, d = (r * W + c) * C + g): in float32 both samplers draw
identical images for the same seed. The same pass codes images (`raster_pass` with a
coder's `choose`). In bfloat16 TF's graph optimizer fuses and
reorders the two graphs' roundings differently, and a rare draw flips
(tests/test_pixelcnn_sampling.py).

A pixel thus costs one column of each layer instead of a pass over the whole image
(timings: results/benchmarks.md).
"""

import tensorflow as tf

from zoo.layers.gated_pixelcnn import gate


def transpose_levels(levels, perm, num_levels):
    """`tf.transpose` of int32 pixel values in `[0, num_levels)`, through float32 (exact
    below 2^24 levels): oneDNN's CPU transpose takes no integer dtype, and TF logs an
    error for each graph that asks it to. Returns int32."""
    if num_levels > 2 ** 24:
        return tf.transpose(levels, perm)
    return tf.cast(tf.transpose(tf.cast(levels, tf.float32), perm), tf.int32)


def window_at(above, left, current, c):
    """A masked conv's `[n, kh, kw, in]` input window centred on pixel (r, c).

    above: `[n, kh//2, W + 2 (kw//2), in]` its input's complete rows above r (zero
      columns at the sides), or None for a one-row kernel; left: `[n, 1, kw//2, in]` row
      r's inputs left of c (oldest first); current: `[n, 1, 1, in]` the input at (r, c).
      The masked-away pixels right of c and rows below r are zeros.
    """
    half_w = left.shape[2]
    half_h = 0 if above is None else above.shape[1]
    row = tf.pad(tf.concat([left, current], 2), [[0, 0], [0, half_h], [0, half_w], [0, 0]])
    return row if above is None else tf.concat([columns_at(above, c, 2 * half_w + 1), row], 1)


def columns_at(x, c, width):
    """`x[:, :, c:c + width]` of `[n, rows, W, ch]`, with its static shape."""
    return tf.slice(x, [0, 0, c, 0], [-1, -1, width, -1])


def push(queue, value, axis):
    """Drops the oldest entry of `queue` along `axis` and appends `value` (size 1 there)."""
    return tf.concat([queue, value], axis)[(slice(None),) * axis + (slice(1, None),)]


def pad_columns(row, half):
    """`[n, 1, W, ch]` -> `[n, 1, W + 2 half, ch]` with zero columns at both sides."""
    return tf.pad(row, [[0, 0], [0, 0], [half, half], [0, 0]])


def head_logits(model, kernels, h):
    """`_PixelModel`'s head at one pixel: ReLU-1x1-ReLU-1x1, `[n, 1, 1, F]` -> `[n, 1, 1, C L]`."""
    (head_0, head_1), (k0, k1) = model.head, kernels
    return head_1.step(tf.nn.relu(head_0.step(tf.nn.relu(h), k0)), k1)


def raster_pass(model, columns, n, choose):
    """The cached pass over `n` images `[n, H, W, C]` int32, value by value in
    raster-then-colour order: value d = (r W + c) C + g is `choose(d, logits)` (int32
    `[n]`) given its logits `[n, L]` float32, a draw when sampling, the coded value when
    coding (`zoo.codec.range_coding`).

    `columns` holds the model's caches: `row_cache()` and `pixel_cache()` start the image
    and a row; `column(row_cache, pixel_cache, c, x)` maps the current pixel's scaled
    values `x [n, 1, 1, C]` (colours not chosen yet are 0) to its logits `[n, 1, 1, C L]`
    and the input of every cached layer at the pixel (the image's first); `push_pixel`
    and `push_row` store a finished pixel's inputs and a finished row `[n, 1, W, C]`.
    """
    height, width, channels = model.image_shape
    levels = model.num_levels

    def row_step(r, rows, row_cache):
        def pixel_step(c, pixels, pixel_cache):
            pixel = tf.zeros([n, channels], tf.int32)
            for g in range(channels):
                x = model.scale(pixel)[:, None, None]
                logits, inputs = columns.column(row_cache, pixel_cache, c, x)
                logits = tf.cast(logits, tf.float32) + model.logit_bias_at(r, c)
                logits = tf.reshape(logits, [n, levels, channels])[:, :, g]
                value = choose((r * width + c) * channels + g, logits)
                pixel = pixel + tf.one_hot(g, channels, dtype=tf.int32)[None] * value[:, None]
            inputs[0] = model.scale(pixel)[:, None, None]  # now with every colour
            return c + 1, pixels.write(c, pixel), columns.push_pixel(pixel_cache, c, inputs)

        _, pixels, pixel_cache = tf.while_loop(
            lambda c, *_: c < width, pixel_step,
            (tf.constant(0), tf.TensorArray(tf.int32, width), columns.pixel_cache()))
        row = transpose_levels(pixels.stack(), [1, 0, 2], levels)
        return r + 1, rows.write(r, row), columns.push_row(row_cache, pixel_cache, model.scale(row)[:, None])

    _, rows, _ = tf.while_loop(lambda r, *_: r < height, row_step,
                               (tf.constant(0), tf.TensorArray(tf.int32, height), columns.row_cache()))
    return transpose_levels(rows.stack(), [1, 0, 2, 3], levels)


class PixelCNNColumns:
    """`PixelCNN`'s caches: for the first conv and each block's kxk conv, its input's
    complete rows above (`row_cache`), the current row's inputs left of the pixel (a
    queue) and all of them so far (a `TensorArray`, pushed when the row ends)."""

    def __init__(self, model, n):
        self.model, self.n, self.width = model, n, model.image_shape[1]
        self.dtype = model.head[0].compute_dtype
        self.convs = [model.first] + [conv for _, conv, _ in model.blocks]
        self.blocks = model.blocks
        self.kernels = [conv.masked_kernel(self.dtype) for conv in self.convs]
        self.pointwise = [(conv_in.masked_kernel(self.dtype), conv_out.masked_kernel(self.dtype))
                          for conv_in, _, conv_out in model.blocks]
        self.head = [layer.masked_kernel(self.dtype) for layer in model.head]

    def _zeros(self, conv, rows, columns):
        return tf.zeros([self.n, rows, columns, conv.kernel.shape[-2]], self.dtype)

    def row_cache(self):
        return tuple(self._zeros(conv, kh // 2, self.width + 2 * (kw // 2))
                     for conv in self.convs for kh, kw in [conv.kernel_size])

    def pixel_cache(self):
        return (tuple(self._zeros(conv, 1, conv.kernel_size[1] // 2) for conv in self.convs),
                tuple(tf.TensorArray(self.dtype, self.width) for _ in self.convs))

    def column(self, row_cache, pixel_cache, c, x):
        """`PixelCNN.features` and the head at one pixel."""
        left = pixel_cache[0]

        def conv_at(j, current):
            conv = self.convs[j]
            return conv.step(window_at(row_cache[j], left[j], current, c), self.kernels[j])

        def relu_of_sum(h):
            # The same values as tf.nn.relu, which here (a residual sum that also feeds the
            # next one) makes TF 2.21's graph remapper fail and skip its fusions.
            return tf.maximum(h, tf.zeros([], h.dtype))

        inputs = [x]
        h = conv_at(0, x)
        for j, ((conv_in, _, conv_out), (k_in, k_out)) in enumerate(zip(self.blocks, self.pointwise), start=1):
            b = tf.nn.relu(conv_in.step(relu_of_sum(h), k_in))
            inputs.append(b)
            h = h + conv_out.step(tf.nn.relu(conv_at(j, b)), k_out)
        return head_logits(self.model, self.head, h), inputs

    def push_pixel(self, pixel_cache, c, inputs):
        left, rows = pixel_cache
        return (tuple(push(q, x, 2) for q, x in zip(left, inputs)),
                tuple(ta.write(c, x[:, 0, 0]) for ta, x in zip(rows, inputs)))

    def push_row(self, row_cache, pixel_cache, image_row):
        del image_row  # the first conv's input row is in its TensorArray too
        rows = [tf.transpose(ta.stack(), [1, 0, 2])[:, None] for ta in pixel_cache[1]]
        return tuple(push(above, pad_columns(row, conv.kernel_size[1] // 2), 1)
                     for above, row, conv in zip(row_cache, rows, self.convs))


class GatedPixelCNNColumns:
    """`GatedPixelCNN`'s caches. Per layer: the vertical stack's input rows above
    (`[n, k//2, W, in]`) and its link into the horizontal stack for the current row
    (`link(f_v)` of the row above, `[n, 1, W, 2p]`), and the horizontal stack's inputs
    left of the pixel (a `[n, 1, k//2, in]` queue). `cond`: the one-hot labels or None."""

    def __init__(self, model, n, cond=None):
        self.model, self.n, self.width = model, n, model.image_shape[1]
        self.dtype = model.head[0].compute_dtype
        self.layers = model.layers_
        self.kernels = [(layer.hconv.masked_kernel(self.dtype), layer.hout.masked_kernel(self.dtype))
                        for layer in self.layers]
        self.head = [layer.masked_kernel(self.dtype) for layer in model.head]

        def embed(w):
            return tf.matmul(cond, tf.cast(w, cond.dtype))[:, None, None]

        # Eq. 4's V cond and H cond, as `GatedPixelCNNLayer.call` adds them (the last
        # layer has no V: its v' is not read).
        self.cond = [None if cond is None else
                     (embed(layer.v_cond) if layer.vertical_output else None, embed(layer.h_cond))
                     for layer in self.layers]

    def row_cache(self):
        above = tuple(
            tf.zeros([self.n, layer.kernel_size // 2, self.width, layer.vconv.kernel.shape[-2]], self.dtype)
            for layer in self.layers)
        # Row 0's link: shift_down gives it a zero row of f_v.
        links = tuple(layer.link(tf.zeros([self.n, 1, self.width, 2 * layer.filters], self.dtype))
                      for layer in self.layers)
        return above, links

    def pixel_cache(self):
        return tuple(tf.zeros([self.n, 1, layer.kernel_size // 2, layer.hconv.kernel.shape[-2]], self.dtype)
                     for layer in self.layers)

    def column(self, row_cache, pixel_cache, c, x):
        """The horizontal stack and the head at one pixel (`GatedPixelCNNLayer.call`)."""
        links = row_cache[1]
        inputs, h = [], x
        for layer, left, (k_h, k_out), link, cond in zip(self.layers, pixel_cache, self.kernels, links,
                                                          self.cond):
            inputs.append(h)
            f_h = layer.hconv.step(window_at(None, left, h, c), k_h) + columns_at(link, c, 1)
            if cond is not None:
                f_h = f_h + cond[1]
            out = layer.hout.step(gate(f_h), k_out)
            h = h + out if layer.residual else out
        return head_logits(self.model, self.head, h), inputs

    def push_pixel(self, pixel_cache, c, inputs):
        del c
        return tuple(push(q, x, 2) for q, x in zip(pixel_cache, inputs))

    def push_row(self, row_cache, pixel_cache, image_row):
        """The vertical stack over the finished row r: the links for row r + 1."""
        del pixel_cache
        above, links, v = [], [], image_row
        for layer, rows, cond in zip(self.layers, row_cache[0], self.cond):
            window = tf.concat([rows, v], 1)  # rows r - k//2 .. r
            f_v = layer.vconv(window)[:, -1:]
            links.append(layer.link(f_v))
            above.append(window[:, 1:])
            if layer.vertical_output:  # the last layer's v' is not read
                v = gate(f_v if cond is None else f_v + cond[0])
        return tuple(above), tuple(links)
