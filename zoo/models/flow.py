"""`FlowModel`: the plumbing every normalizing flow of the zoo shares.

A flow is a bijector `f` from dequantized pixels `v = x + u` (u uniform in [0, 1)^D)
to a latent `z` of the image's shape, with a base density over z:

    log p(x) >= E_u[ log p_Z(f(x + u)) + log|det df/dv| ]

(`f` includes the scaling by 1/L and the logit, whose log-det is counted, so this is
the paper's bound on the original pixel scale). Training draws one u per image;
evaluation averages `eval_draws` fixed draws, so log_prob is deterministic.
`encode` uses the midpoints u = 1/2; `decode` rounds down, so
`decode(encode(x)) == x`.

`n_bits` (any flow) models the images reduced to 2^n_bits levels (e.g. 5-bit CelebA,
as Glow): the flow sees `x // bin`, and decoding maps its levels back to the input's.

The prior over z is a standard normal over every dimension, or (`prior=
"autoregressive"`) a MADE MoG over the flattened latent in raster order, so every
scale's factored-out latent and the top are modelled jointly and autoregressively
(p(z_1) p(z_2 | z_1) ... instead of a product of independent factors).

Subclasses implement `bijector(training)` (a TFP bijector built from their layers,
over values in `[0, model_levels)`) and may override `base_log_prob(z)` /
`base_sample(n, temperature, seed)`, or `base_mixture()` (the MADE of a MADE MoG base
they own, as MAF's "mog" base). A class-conditional flow sets `num_classes` and takes
`bijector(training, labels=...)`; its `log_prob`, `sample`, `encode` and `decode`
then take `labels [batch]`.
"""

import random

import numpy as np
import tensorflow as tf

from zoo.distributions import made_mixture_log_prob, made_mixture_sample, standard_normal_log_prob
from zoo.layers import MADE
from zoo.models.base import DensityModel, check_latents

PRIORS = ("normal", "autoregressive")


class FlowModel(DensityModel):
    """Base of flows. `eval_draws`: dequantization draws averaged when not training;
    `seed`: seeds the training noise (a saved counter makes resumed runs draw the same);
    `n_bits`: None, or model 2^n_bits levels (`num_levels` a power of two >= 2^n_bits);
    `prior`: "normal" or "autoregressive" (a MADE MoG of `prior_components` Gaussians
    per dimension, hidden widths `prior_hidden_units`)."""

    capabilities = frozenset({"latent", "interpolate"})

    def __init__(self, image_shape, num_levels, eval_draws=4, seed=None, n_bits=None,
                 prior="normal", prior_hidden_units=(256, 256), prior_components=5, **kwargs):
        super().__init__(image_shape, num_levels, **kwargs)
        if int(eval_draws) < 1:
            raise ValueError(f"eval_draws must be >= 1, got {eval_draws}.")
        self.eval_draws = int(eval_draws)
        self.seed = int(seed) if seed is not None else random.randrange(2**31)
        self.n_bits = None if n_bits is None else int(n_bits)
        if self.n_bits is not None and not (
                self.num_levels & (self.num_levels - 1) == 0 and 1 <= self.n_bits
                and 2 ** self.n_bits <= self.num_levels):
            raise ValueError(f"n_bits={n_bits} needs num_levels a power of two >= 2^n_bits, got "
                             f"num_levels={self.num_levels}.")
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}.")
        self.prior, self.prior_components = prior, int(prior_components)
        self.prior_hidden_units = [int(u) for u in prior_hidden_units]
        if self.prior_components < 1 or not self.prior_hidden_units or min(self.prior_hidden_units) < 1:
            raise ValueError(f"prior_components must be >= 1 and prior_hidden_units non-empty "
                             f"positive widths, got {prior_components}, {prior_hidden_units}.")
        # Random output weights tell the mixture's components apart.
        self.prior_made = (MADE(3 * self.prior_components, self.prior_hidden_units, seed=self.seed,
                                name="prior_made", dtype=self.net_dtype)
                           if prior == "autoregressive" else None)

    @property
    def model_levels(self):
        """Levels the flow models: 2^n_bits, or num_levels."""
        return 2 ** self.n_bits if self.n_bits is not None else self.num_levels

    @property
    def bin_size(self):
        """Input levels per modelled level (1 unless `n_bits`)."""
        return self.num_levels // self.model_levels

    def build(self, input_shape=None):
        self.noise_step = self.add_weight(name="noise_step", shape=(), dtype="int64",
                                          initializer="zeros", trainable=False,
                                          aggregation="only_first_replica")
        super().build(input_shape)

    # ---- what subclasses implement -----------------------------------------

    def bijector(self, training=False):
        """The TFP bijector `v = x + u -> z`, events `[H, W, C]`."""
        raise NotImplementedError

    def base_mixture(self):
        """The MADE of the MADE MoG prior over the flattened latent
        (`zoo.distributions.made_mixture`), or None for the standard normal."""
        return self.prior_made

    def base_log_prob(self, z):
        """`log p_Z(z)`, `[batch]`: the prior over `z [batch, H, W, C]`."""
        made = self.base_mixture()
        if made is not None:
            return made_mixture_log_prob(made, tf.reshape(z, [-1, self.num_dims]))
        return standard_normal_log_prob(z, axis=[1, 2, 3])

    def base_sample(self, n, temperature, seed):
        """`[n, H, W, C]` latents from the prior at `temperature` (stds scaled by it); a
        MADE MoG draws in its MADE's order (`made_mixture_sample`)."""
        made = self.base_mixture()
        if made is not None:
            return tf.reshape(made_mixture_sample(made, n, temperature, seed), [n, *self.image_shape])
        return temperature * tf.random.stateless_normal([n, *self.image_shape], seed=seed)

    # ---- the DensityModel contract ------------------------------------------

    def _noise(self, batch, training):
        """Dequantization noise: `[1, b, H, W, C]` fresh draws when training, else
        `[eval_draws, 1, H, W, C]` fixed draws shared by every image."""
        if training:
            replica = tf.distribute.get_replica_context()
            replica_id = tf.cast(replica.replica_id_in_sync_group if replica else 0, tf.int64)
            self.noise_step.assign_add(1)
            seed = tf.stack([tf.constant(self.seed, tf.int64),
                             self.noise_step.value * 1024 + replica_id])
            return tf.random.stateless_uniform([1, batch, *self.image_shape], seed=seed)
        return tf.random.stateless_uniform([self.eval_draws, 1, *self.image_shape],
                                           seed=tf.constant([self.seed, -1], tf.int64))

    def _flow(self, training, labels):
        """`bijector(training)`, given `labels` when the flow is class-conditional."""
        return self.bijector(training) if labels is None else self.bijector(training, labels=labels)

    def _log_prob(self, images, training, labels=None):
        x = tf.cast(images // self.bin_size, tf.float32)
        batch = tf.shape(x)[0]
        v = x[None] + self._noise(batch, training)
        draws = tf.shape(v)[0]
        v = tf.reshape(v, [-1, *self.image_shape])
        if labels is not None:  # one copy per dequantization draw, draw-major as v
            labels = tf.tile(labels, [draws])
        flow = self._flow(training, labels)
        z = flow.forward(v)
        log_p = self.base_log_prob(z) + flow.forward_log_det_jacobian(v, event_ndims=3)
        return tf.reduce_mean(tf.reshape(log_p, [draws, batch]), axis=0)

    def _decode(self, z, labels=None):
        v = self._flow(False, labels).inverse(z)
        x = tf.cast(tf.clip_by_value(tf.floor(v), 0.0, self.model_levels - 1.0), tf.int32)
        return x * self.bin_size

    def _sample(self, n, temperature, seed, labels=None):
        return self._decode(self.base_sample(n, temperature, seed), labels)

    def encode(self, images, labels=None):
        """uint8/int images `[batch, H, W, C]` -> latents float32 `[batch, H, W, C]`
        (all scales, each factored-out part where the flow put it), at u = 1/2;
        `labels [batch]` for a class-conditional flow."""
        self.build_for_images()
        x = tf.cast(self.check_images(images) // self.bin_size, tf.float32)
        labels = self.check_labels(labels, x.shape[0])
        with self.float32_network():
            return self._flow(False, labels).forward(x + 0.5)

    @property
    def latent_shape(self):
        """The shape of one image's latent: the image's, `(H, W, C)`."""
        return self.image_shape

    def check_latents(self, z):
        """Validates float latents `[batch, H, W, C]`; returns float32."""
        return check_latents(z, self.latent_shape)

    def decode(self, z, labels=None):
        """Latents `[batch, H, W, C]` -> uint8 images: the flow's inverse, rounded down
        to a pixel level (values outside [0, L) are set to the nearest level);
        `labels [batch]` for a class-conditional flow."""
        self.build_for_images()
        z = self.check_latents(z)
        labels = self.check_labels(labels, z.shape[0])
        with self.float32_network():
            return tf.cast(self._decode(z, labels), tf.uint8)

    def interpolate(self, image_a, image_b, num=8, label=None):
        """Images along the straight line between the latents of two images:
        uint8 `[num, H, W, C]`, the first and last decode `image_a` and `image_b`
        (a class-conditional model encodes and decodes all with one `label`)."""
        if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 2:
            raise ValueError(f"num must be an integer >= 2, got {num!r}.")
        pair = np.stack([np.asarray(image_a), np.asarray(image_b)])
        labels = None if label is None else np.full([2], label, np.int64)
        z = self.encode(pair, labels)
        t = tf.reshape(tf.linspace(0.0, 1.0, num), [-1, 1, 1, 1])
        return self.decode((1.0 - t) * z[:1] + t * z[1:], None if label is None else labels[:1].repeat(num))

    def get_config(self):
        return {**super().get_config(), "eval_draws": self.eval_draws, "seed": self.seed,
                "n_bits": self.n_bits, "prior": self.prior,
                "prior_hidden_units": list(self.prior_hidden_units),
                "prior_components": self.prior_components}
