"""Cached sampling for PixelCNN++ (Ramachandran et al. 2017, "Fast Generation for
Convolutional Autoregressive Models", section 3: each layer keeps a cache of its recent
inputs; the downsampled resolutions are updated only when their inputs change).

At scale s (factor f = 2^s) row i of the u stream sees only image rows < f i, and
position (i, j) of the ul stream only the pixels before (f i, f j) in raster order. So:

- once per image row r, the u stream (up and down pass) computes row r / f of every
  scale with f | r, each convolution reading the band of its last kh input rows;
- once per pixel (r, c), the ul stream computes position (r / f, c / f) of every scale
  with f | r and f | c, each convolution reading its kh x kw window, then the head
  gives the pixel's mixture, drawn exactly as in the naive loop.

A cache holds the last kh rows of a convolution's input, padded as `call` pads it, so
every output is computed from the very numbers the whole network computes it from. The
ul stream's caches hold their kh - 1 complete rows above, a queue of the current row's
last kw inputs (its window's bottom row: down-right convolutions read no input to the
right), and the current row's inputs so far (a `TensorArray`, the next row's row above):
a position costs work on its window only, not on whole cached rows.
"""

import tensorflow as tf

from zoo.layers.gated_resnet import concat_elu
from zoo.models.pixelcnn_sampling import transpose_levels


def _push_row(cache, layer, row):
    """Shifts the cache `[n, kh, width + kw - 1, C]` up one row and appends `row [n, 1, width, C]`."""
    pad = [[0, 0], [0, 0], [layer.left, layer.kernel_size[1] - 1 - layer.left], [0, 0]]
    return tf.concat([cache[:, 1:], tf.pad(row, pad)], axis=1)


def _crop(x, top, left, height, width):
    """`x[:, top:top + height, left:left + width]` for tensor `top`, `left`: static sizes."""
    return tf.slice(x, [0, top, left, 0], [-1, height, width, -1])


def _place(row, value, column):
    """`row [n, 2, width, C]` with `value [n, 2, w, C]` at columns `column .. column + w - 1`."""
    width, w = row.shape[2], value.shape[2]
    value = tf.pad(value, [[0, 0], [0, 0], [column, width - w - column], [0, 0]])
    at = (tf.range(width) >= column) & (tf.range(width) < column + w)
    return tf.where(at[None, None, :, None], value, row)


def _push(queue, value):
    """Drops the oldest column of `queue [n, 1, kw, C]` and appends `value [n, 1, 1, C]`."""
    return tf.concat([queue, value], axis=2)[:, :, 1:]


class CachedSampler:
    """`PixelCNNPlusPlus`'s incremental pass with per-convolution input caches: it draws
    samples, and codes images (`zoo.codec.range_coding`), pixel by pixel (`run`).

    Args:
      model: a built `PixelCNNPlusPlus`.
      n: int32 scalar, the number of images.
      cond: `[n, d]` the blocks' condition (`PixelCNNPlusPlus.condition`), or None.
    """

    def __init__(self, model, n, cond):
        self.model, self.n = model, n
        f, dtype = model.filters, model.net_dtype_name
        self.widths = [model.image_shape[1] >> s for s in range(model.num_scales)]
        blocks = [(s, pair) for s in range(model.num_scales) for pair in model.up[s] + model.down[s]]
        # The cached convolutions of each stream: key -> (layer, scale of its input, channels).
        self.u_convs, self.ul_convs = {}, {}
        for s in range(1, model.num_scales):
            for convs, layer in zip((self.u_convs, self.ul_convs), model.downsample[s - 1]):
                convs[layer.name] = (layer, s - 1, f)
        for s, pair in blocks:
            for convs, block in zip((self.u_convs, self.ul_convs), pair):
                convs[f"{block.name}/in"] = (block.conv_in, s, 2 * f)
                convs[f"{block.name}/out"] = (block.conv_out, s, 2 * f)
        self.layers = {key: layer for convs in (self.u_convs, self.ul_convs) for key, (layer, _, _) in convs.items()}
        self.layers.update({f"{block.name}/nin": block.nin for _, pair in blocks for block in pair if block.nin})
        self.layers.update({layer.name: layer for layer in (model.u_in, model.ul_in_above, model.ul_in_left,
                                                            model.head, *sum(model.upsample, ()))})
        # Once, not per step: weight norm's g v / ||v||, the biases, each block's W cond.
        self.weights = {key: [tf.convert_to_tensor(w) for w in layer.effective_weights()]
                        for key, layer in self.layers.items()}
        self.label_bias = {block.name: block.label_bias(cond, dtype) for _, pair in blocks for block in pair}

    def conv(self, key, x):
        """The convolution `key` on `x`: a window or band of its padded input (transposed: its input)."""
        layer = self.layers[key]
        return layer.convolve(x, *self.weights[key], padded=not layer.transposed)

    # ---- state ----------------------------------------------------------------------

    def initial_state(self):
        """`(u, ul)`: the caches of each stream's convolutions (zeros: the padding above
        the image), and what later steps read: per row, the u stream's terms in the ul
        stream's blocks and its input from the row above; the upsampled outputs of the
        coarser scales. `self.scale_of`: the scale whose step writes each entry."""
        m, f = self.model, self.model.filters

        def zeros(*shape):
            return tf.zeros([self.n, *shape], m.net_dtype_name)

        u, ul, self.scale_of = {}, {}, {}
        for key, (layer, s, channels) in self.u_convs.items():
            kh, kw = layer.kernel_size
            u[key], self.scale_of[key] = zeros(kh, self.widths[s] + kw - 1, channels), s
        for key, (layer, s, channels) in self.ul_convs.items():
            ul[key], self.scale_of[key] = self.ul_cache(layer, s, channels), s
        for s in range(m.num_scales):
            rows = [f"u{s}/nin{k}" for k in range(len(m.up[s]))] + [f"u{s}/down{k}" for k in range(len(m.down[s]))]
            u.update({key: zeros(1, self.widths[s], f) for key in rows + ["ul_above"] * (s == 0)})
            if s:  # the upsampled u and ul of scale s: rows 2i, 2i + 1 of scale s - 1
                u[f"u{s}/up"], ul[f"ul{s}/up"] = zeros(2, self.widths[s - 1], f), zeros(2, self.widths[s - 1], f)
            self.scale_of.update({key: s for key in rows + ["ul_above", f"u{s}/up", f"ul{s}/up"]})
        return u, ul

    def ul_cache(self, layer, s, channels, above=None):
        """A ul convolution's cache at the start of a row of scale s: its `kh - 1` rows
        above (zeros: the padding above the image, unless given), the queue of the row's
        last kw inputs (zeros: the padding on the left) and the row's inputs so far."""
        kh, kw = layer.kernel_size
        if layer.left != kw - 1:
            raise ValueError(f"The ul stream's cached convolutions are down-right ones, got {layer.name}.")
        if above is None:
            above = tf.zeros([self.n, kh - 1, self.widths[s] + kw - 1, channels], self.model.net_dtype_name)
        return {"above": above, "queue": tf.zeros([self.n, 1, kw, channels], self.model.net_dtype_name),
                "row": tf.TensorArray(self.model.net_dtype_name, self.widths[s], element_shape=[None, channels])}

    def when(self, due, update, state, scale):
        """The entries of scales >= `scale`: `update()`'s where `due`, else `state`'s."""
        keys = [key for key in state if self.scale_of[key] >= scale]

        def updated():
            new = update()
            return {key: new[key] for key in keys}

        return tf.cond(due, updated, lambda: {key: state[key] for key in keys})

    def inputs(self, images):
        """Scaled images and the channel of ones, padded 2 rows above and 1 column either
        side: `[n, H + 2, W + 2, C + 1]`; row r + 2, column c + 1 is pixel (r, c)."""
        x = self.model.scale(images)
        x = tf.concat([x, tf.ones_like(x[..., :1])], axis=-1)
        return tf.pad(x, [[0, 0], [2, 0], [1, 1], [0, 0]])

    def nin(self, block, a):
        """The block's shortcut term `nin(concat_elu(a))`."""
        return self.conv(f"{block.name}/nin", concat_elu(a, fused=False))

    def block(self, block, x, shortcut, cached_conv):
        """`GatedResNet.call` at sampling time (no dropout): `shortcut`, its `nin` term or
        None; `cached_conv(key, input)` runs its two shifted convolutions from their caches."""
        c = cached_conv(f"{block.name}/in", concat_elu(x, fused=False))
        if shortcut is not None:
            c = c + shortcut
        return block.gate(x, cached_conv(f"{block.name}/out", concat_elu(c, fused=False)),
                          self.label_bias[block.name], fused=False)

    # ---- the u stream, one row of each due scale ----------------------------------

    def u_rows(self, s, r, u, x):
        """Row `r / 2^s` of the u stream at scale s and, where due, at the coarser scales:
        the updated state `u`. `x`: `inputs(images)`, rows < r drawn."""
        m, u = self.model, dict(u)

        def cached_conv(key, row):
            u[key] = _push_row(u[key], self.layers[key], row)
            return self.conv(key, u[key])

        if s == 0:  # shift_down(u_in(x)), shift_down(ul_in_above(x)): image rows r - 2, r - 1
            first = self.conv(m.u_in.name, _crop(x, r, 0, 2, x.shape[2]))
            first = tf.where(r > 0, first, tf.zeros_like(first))
            above = self.conv(m.ul_in_above.name, _crop(x, r + 1, 0, 1, x.shape[2]))
            u["ul_above"] = tf.where(r > 0, above, tf.zeros_like(above))
        else:
            first = self.conv(m.downsample[s - 1][0].name, u[m.downsample[s - 1][0].name])
        us = [first]
        for k, (block, block_ul) in enumerate(m.up[s]):
            us.append(self.block(block, us[-1], None, cached_conv))
            u[f"u{s}/nin{k}"] = self.nin(block_ul, us[-1])
        if s + 1 < m.num_scales:
            key = m.downsample[s][0].name
            u[key] = _push_row(u[key], self.layers[key], us[-1])
            u.update(self.when(tf.equal(r % (2 << s), 0), lambda: self.u_rows(s + 1, r, u, x), u, s + 1))
            out = _crop(u[f"u{s + 1}/up"], r // (1 << s) % 2, 0, 1, self.widths[s])
        else:
            out = us.pop()
        for k, (block, _) in enumerate(m.down[s]):
            out = self.block(block, out, self.nin(block, us.pop()), cached_conv)
            u[f"u{s}/down{k}"] = out
        if s:
            u[f"u{s}/up"] = self.conv(m.upsample[s - 1][0].name, out)
        return u

    # ---- the ul stream, one position of each due scale ----------------------------

    def ul_pixel(self, s, r, c, u, ul, x_left):
        """Position `(r / 2^s, c / 2^s)` of the ul stream at scale s and, where due, at the
        coarser scales: `(ul, output [n, 1, 1, F])`. `x_left`: `inputs(images)[:, r + 1:r
        + 3, c:c + 1]`, the inputs at (r - 1, c - 1) and (r, c - 1); `u`: the u stream's
        rows for image row r."""
        m, ul = self.model, dict(ul)
        i, j = r // (1 << s), c // (1 << s)

        def put(key, value):  # value [n, 1, 1, C] is the input at (i, j) of ul[key]'s convolution
            cache = ul[key]
            ul[key] = {"above": cache["above"], "queue": _push(cache["queue"], value),
                       "row": cache["row"].write(j, value[:, 0, 0])}

        def window(key, column):  # the kh x kw window from padded column `column`
            layer, cache = self.layers[key], ul[key]
            kh, kw = layer.kernel_size
            return tf.concat([_crop(cache["above"], 0, column, kh - 1, kw), cache["queue"]], axis=1)

        def cached_conv(key, value):
            put(key, value)
            return self.conv(key, window(key, j))

        if s == 0:  # shift_down(ul_in_above(x)) + shift_right(ul_in_left(x))
            left = self.conv(m.ul_in_left.name, x_left)
            first = _crop(u["ul_above"], 0, c, 1, 1) + tf.where(c > 0, left, tf.zeros_like(left))
        else:
            first = self.conv(m.downsample[s - 1][1].name, window(m.downsample[s - 1][1].name, 2 * j))
        uls = [first]
        for k, (_, block) in enumerate(m.up[s]):
            uls.append(self.block(block, uls[-1], _crop(u[f"u{s}/nin{k}"], 0, j, 1, 1), cached_conv))
        if s + 1 < m.num_scales:
            put(m.downsample[s][1].name, uls[-1])
            due = tf.equal(i % 2, 0) & tf.equal(j % 2, 0)
            ul.update(self.when(due, lambda: self.ul_pixel(s + 1, r, c, u, ul, x_left)[0], ul, s + 1))
            out = _crop(ul[f"ul{s + 1}/up"], i % 2, j, 1, 1)
        else:
            out = uls.pop()
        for k, (_, block) in enumerate(m.down[s]):
            shortcut = tf.concat([_crop(u[f"u{s}/down{k}"], 0, j, 1, 1), uls.pop()], axis=-1)
            out = self.block(block, out, self.nin(block, shortcut), cached_conv)
        if s:
            ul[f"ul{s}/up"] = _place(ul[f"ul{s}/up"], self.conv(m.upsample[s - 1][1].name, out), 2 * j)
        return ul, out

    def new_rows(self, r, ul):
        """At image row r > 0, starts a new row in the ul caches of every scale s with 2^s |
        r: the finished row joins the rows above, the queue and the row restart."""
        ul = dict(ul)

        def next_row(key):
            layer, s, channels = self.ul_convs[key]
            cache = ul[key]
            row = tf.transpose(cache["row"].stack(), [1, 0, 2])[:, None]  # [n, 1, width, C]
            return self.ul_cache(layer, s, channels, _push_row(cache["above"], layer, row))

        for s in range(self.model.num_scales):
            keys = [key for key in self.ul_convs if self.scale_of[key] == s]
            if keys:
                ul.update(tf.cond(tf.equal(r % (1 << s), 0) & (r > 0), lambda: {k: next_row(k) for k in keys},
                                  lambda: {k: ul[k] for k in keys}))
        return ul

    # ---- the loop -------------------------------------------------------------------

    @tf.autograph.experimental.do_not_convert  # plain Python around explicit loops: traces faster
    def run(self, choose_pixel):
        """`[n, H, W, C]` int32: pixel d = r W + c is `choose_pixel(d, mixture)` (int32 `[n,
        C]`) of its `DiscretizedLogisticMixture` (batch `[n]`): a draw when sampling
        (`tempered_sample`, as `PixelCNNPlusPlus._sample_naive` draws it), the coded value
        when coding (`DiscretizedLogisticMixture.draw` with a coder's `choose`)."""
        m = self.model
        height, width, channels = m.image_shape

        def pixel(c, r, x_rows, x_prev, pixels, u, ul):
            # x_rows: `inputs` of the rows above r; x_prev: the input at (r, c - 1) (zeros at c = 0)
            x_left = tf.concat([_crop(x_rows, r + 1, c, 1, 1), x_prev], axis=1)
            ul, out = self.ul_pixel(0, r, c, u, ul, x_left)
            params = tf.cast(self.conv(m.head.name, tf.nn.elu(out)), tf.float32)[:, 0, 0]
            value = choose_pixel(r * width + c, m.distribution(params))
            x_prev = self.model.scale(value)[:, None, None]
            x_prev = tf.concat([x_prev, tf.ones_like(x_prev[..., :1])], axis=-1)  # as `inputs`
            return c + 1, x_prev, pixels.write(c, value), ul

        def row(r, images, u, ul):
            x_rows = self.inputs(images)
            u = self.u_rows(0, r, u, x_rows)
            _, _, pixels, ul = tf.while_loop(
                lambda c, *_: c < width,
                lambda c, x_prev, pixels, ul: pixel(c, r, x_rows, x_prev, pixels, u, ul),
                (tf.constant(0), tf.zeros_like(x_rows[:, :1, :1]), tf.TensorArray(tf.int32, width),
                 self.new_rows(r, ul)))
            where = tf.reshape(tf.one_hot(r, height, dtype=tf.int32), [1, height, 1, 1])
            return r + 1, images + where * transpose_levels(pixels.stack(), [1, 0, 2], m.num_levels)[:, None], u, ul

        images = tf.zeros([self.n, height, width, channels], tf.int32)
        _, images, _, _ = tf.while_loop(lambda r, *_: r < height, row,
                                        (tf.constant(0), images, *self.initial_state()))
        return images
