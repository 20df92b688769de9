"""Causal-convolution autoregressive model over the flattened image.

The lecture's ARM (Tomczak, "Deep Generative Modeling", ch. 2; jmtomczak/intro_dgm):
flatten the image in raster-then-channel order to `x_1..x_D` and factorize

    log p(x) = sum_d log Categorical(x_d | softmax(f_d(x_<d))),

with f a stack of causal 1D convolutions (WaveNet-style dilations, residual
connections and dropout optional). The first layer has mask type A, so f_d never
sees x_d.
"""

import keras
import tensorflow as tf

from zoo.layers import CausalConv1D, ResumableDropout
from zoo.distributions import seeded_draws
from zoo.models.base import DensityModel, centered_pixels


@keras.saving.register_keras_serializable(package="zoo")
class ARM(DensityModel):
    """Autoregressive model `[batch, H, W, C]` -> logits `[batch, D, num_levels]`.

    Args:
      image_shape, num_levels: see `DensityModel`.
      filters: channels of every hidden layer.
      kernel_size: taps of every causal convolution.
      dilations: one dilation per hidden layer; the first layer is type A.
      residual: add each hidden layer's input to its output (all but the first).
      dropout: rate applied after every hidden layer while training.
      position_embedding: add a learned vector per position d to the first layer's
        output (the flat sequence otherwise cannot tell a row's edges apart).
      mixed_precision: None, "bfloat16" or "float16" for the hidden convolutions (the
        logits and the likelihood are float32).
    """

    capabilities = frozenset({"autoregressive"})  # `cached_pass`

    def __init__(self, image_shape, num_levels, filters=256, kernel_size=7,
                 dilations=(1, 1, 1), residual=False, dropout=0.0,
                 position_embedding=False, **kwargs):
        super().__init__(image_shape, num_levels, **kwargs)
        if not dilations:
            raise ValueError("dilations must name at least one hidden layer.")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.dilations = [int(d) for d in dilations]
        self.residual = bool(residual)
        self.dropout = float(dropout)
        self.position_embedding = bool(position_embedding)
        self.hidden = [
            CausalConv1D(self.filters, self.kernel_size, d, mask_type="A" if i == 0 else "B",
                         name=f"causal_conv_{i}", dtype=self.net_dtype)
            for i, d in enumerate(self.dilations)
        ]
        self.drop = ResumableDropout(self.dropout, dtype=self.net_dtype)
        self.head = CausalConv1D(self.num_levels, 1, mask_type="B", name="logits", dtype="float32")

    def build(self, input_shape):
        if self.position_embedding:
            self.position = self.add_weight(name="position", shape=(self.num_dims, self.filters),
                                            initializer="zeros")
        super().build(input_shape)

    def logits_from_inputs(self, inputs, training=False):
        """`inputs [batch, D, 1]` float (pixels scaled to [-1, 1]) -> logits `[batch, D, L]`.

        Differentiable in `inputs`: the causality tests take gradients through it.
        """
        h = inputs
        for i, layer in enumerate(self.hidden):
            out = layer(h)
            if i == 0 and self.position_embedding:
                out = out + tf.cast(self.position, out.dtype)
            out = self.drop(tf.nn.leaky_relu(out), training=training)
            h = h + out if (self.residual and i > 0) else out
        return tf.cast(self.head(h), tf.float32)

    @property
    def hidden_dtype(self):
        """The dtype the hidden layers compute in (float32, or 16 bits under mixed precision)."""
        return self.hidden[0].compute_dtype

    def scale(self, images):
        """int32 `[batch, H, W, C]` -> float `[batch, D, 1]` in [-1, 1], raster-then-channel."""
        return centered_pixels(tf.reshape(images, [-1, self.num_dims, 1]), self.num_levels, self.hidden_dtype)

    def _log_prob(self, images, training, labels=None):
        logits = self.logits_from_inputs(self.scale(images), training=training)
        targets = tf.reshape(images, [-1, self.num_dims])
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
        return -tf.reduce_sum(nll, axis=1)

    def _sample(self, n, temperature, seed, labels=None):
        """Cached sampling (`cached_pass`), position d drawn with `fold_in(seed, d)`:
        draws the same values as `_sample_naive` for the same seed."""
        return self.cached_pass(n, seeded_draws(temperature, seed))

    def cached_pass(self, n, choose, labels=None):
        """The cached incremental pass (fast WaveNet; Ramachandran et al. 2017): every
        layer keeps a queue of the inputs its next output reads, so a new position costs
        one column of each layer instead of a pass of the whole network over all D
        positions. Position d (raster-then-channel) takes the value `choose(d, logits)`
        (int32 `[n]`) given its logits `[n, L]` float32: a draw when sampling, the coded
        value when coding (`zoo.codec.range_coding`). Returns int32 `[n, H, W, C]`."""
        del labels  # unconditional
        d_total = self.num_dims
        dtype = self.hidden_dtype
        queues = [tf.zeros([n, layer.window, 1 if i == 0 else self.filters], dtype)
                  for i, layer in enumerate(self.hidden)]

        def step(d, flat, previous, queues):
            # Layer 0 (type A) reads the inputs before d: push x_{d-1} (zero padding at d = 0).
            queues = list(queues)
            queues[0] = tf.concat([queues[0][:, 1:], previous[:, None]], axis=1)
            h = None
            for i, layer in enumerate(self.hidden):
                if i > 0:
                    queues[i] = tf.concat([queues[i][:, 1:], h[:, None]], axis=1)
                out = layer.step(queues[i])
                if i == 0 and self.position_embedding:
                    out = out + tf.cast(tf.gather(self.position, d), out.dtype)
                out = tf.nn.leaky_relu(out)
                h = h + out if (self.residual and i > 0) else out
            logits = tf.cast(self.head.step(h[:, None]), tf.float32)
            value = choose(d, logits)
            flat = flat + tf.one_hot(d, d_total, dtype=tf.int32)[None] * value[:, None]
            scaled = centered_pixels(value[:, None], self.num_levels, dtype)
            return d + 1, flat, scaled, tuple(queues)

        _, flat, _, _ = tf.while_loop(
            lambda d, *_: d < d_total, step,
            (tf.constant(0), tf.zeros([n, d_total], tf.int32), tf.zeros([n, 1], dtype),
             tuple(queues)))
        return tf.reshape(flat, [n, *self.image_shape])

    def _sample_naive(self, n, temperature, seed, labels=None):
        """The plain loop: D passes of the whole network, one new position each."""
        d_total = self.num_dims
        choose = seeded_draws(temperature, seed)

        def step(d, flat):
            images = tf.reshape(flat, [n, *self.image_shape])
            logits = self.logits_from_inputs(self.scale(images))[:, d]
            value = choose(d, logits)
            return d + 1, flat + tf.one_hot(d, d_total, dtype=tf.int32)[None] * value[:, None]

        _, flat = tf.while_loop(lambda d, _: d < d_total, step,
                                (tf.constant(0), tf.zeros([n, d_total], tf.int32)))
        return tf.reshape(flat, [n, *self.image_shape])

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "dilations": list(self.dilations), "residual": self.residual,
                "dropout": self.dropout, "position_embedding": self.position_embedding}
