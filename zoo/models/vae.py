"""VAEs with normalizing flows (Kingma and Welling 2014; Rezende and Mohamed, "Variational
Inference with Normalizing Flows", ICML 2015; Kingma et al., "Improved Variational
Inference with Inverse Autoregressive Flow", NeurIPS 2016; Tomczak and Welling,
"Improving Variational Auto-Encoders using Householder Flow", 2016; van den Berg,
Hasenclever, Tomczak and Welling, "Sylvester Normalizing Flows for Variational
Inference", UAI 2018) and flow-based priors (Chen et al., "Variational Lossy
Autoencoder", ICLR 2017; Gatopoulos and Tomczak, "Self-Supervised Variational
Auto-Encoders", 2021).

    encoder:    x -> h;   q(z0 | x) = N(mu(h), diag var(h));   zK = f_K o ... o f_1(z0; h)
    decoder:    p(x | z) Bernoulli (binary images), num_levels-way categorical per pixel, or
                a discretized logistic mixture per pixel (PixelCNN++'s, its levels ordered)
    prior:      p(z) standard normal, or a RealNVP / MAF density over z (change of variables
                to a standard normal; samples through the inverse)

    ELBO(x) = E_q[ log p(x | zK) + log p(zK) - (log q(z0 | x) - sum_k log|det df_k/dz_{k-1}|) ]

The posterior flows (planar, IAF, Householder, Sylvester) are the layers of
`zoo.layers.posterior_flow` (`POSTERIOR_FLOWS`): they compute the parameters of
`zoo.bijectors` flows from `h` (amortized).

Which number is which:
- `log_prob(images)` is the importance-weighted bound (Burda et al. 2016)
  `log (1/K) sum_k p(x, z_k) / q(z_k | x)`, z_k ~ q, with K = `importance_samples`. It is
  a lower bound on log p(x) that tightens as K grows (to log p(x) as K -> infinity), not an
  exact likelihood. K fixed draws shared by every image (seeded from `seed`), so it is
  deterministic; computed in chunks of at most `chunk_size` decoder passes, so K = 5000
  fits in memory. `log_prob(images, importance_samples=K)` overrides K for one call.
- `elbo(images)` is the evidence lower bound, one draw per image (the draw is picked
  from a fixed pool by a hash of the image: deterministic, independent of the batch,
  different across images); `elbo(images, num_samples=S)` averages S draws.
- Keras' `call`, so `fit`'s loss, `evaluate` and validation: -ELBO in bits/dim. Training
  draws fresh noise per image and weighs the KL part by beta, which rises linearly from
  0 to 1 over the first `kl_warmup` training steps (`kl_beta`); evaluation has beta = 1.
  `log_prob(images, training=True)` is that training objective in nats.
"""

import math
import random

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from zoo import bijectors as zb
from zoo.distributions import mixture_from_params, mixture_num_params, standard_normal_log_prob
from zoo.layers.made import maf_mades
from zoo.layers.posterior_flow import KINDS, posterior_flow
from zoo.layers.vae_nets import (DECODER_FILTERS, ENCODER_FILTERS, ENCODER_STRIDES,
                                 CouplingMLP, GatedConvDecoder, GatedConvEncoder, MLPDecoder, MLPEncoder,
                                 conv_reduction)
from zoo.models.base import DensityModel, centered_pixels, check_latents, check_positive_int

tfb = tfp.bijectors

POSTERIORS = ("gaussian", *KINDS)
PRIORS = ("normal", "realnvp", "maf")
NETWORKS = ("auto", "conv", "mlp")
DECODERS = ("auto", "bernoulli", "categorical", "logistic_mixture")
ELBO_POOL = 4096  # evaluation draws of the ELBO: a fixed pool, indexed by a hash of the image
MIN_VARIANCE = 1e-6  # added to the encoder's softplus variance


def _image_hashes(images):
    """int64 `[batch]` in [0, 2^31): a fingerprint of each image."""
    bytes_ = tf.cast(tf.fingerprint(images)[:, :4], tf.int64)
    return tf.reduce_sum(bytes_ * tf.constant([1, 256, 65536, 16777216], tf.int64), axis=1) % (2**31)


@keras.saving.register_keras_serializable(package="zoo")
class VAE(DensityModel):
    """A VAE over integer images with a Gaussian posterior, optionally flowed, and a
    standard normal or flow prior.

    Args:
      image_shape, num_levels: see `DensityModel`.
      latent_dim: size of z.
      posterior: "gaussian" (no flow), or a kind of `zoo.layers.posterior_flow`: "planar",
        "iaf", "householder", "sylvester_o", "sylvester_h", "sylvester_t".
      num_flows: flows of the posterior (not used by "gaussian").
      posterior_options: extra keyword arguments of the posterior's flow layer (e.g. its
        orthogonal vectors or reflections per flow), a dict; or such dicts by posterior
        kind (`{"sylvester_o": {"num_ortho_vecs": 8}}`), of which the `posterior`'s is used.
      prior: "normal", "realnvp" (`prior_flows` affine couplings over z, halves swapped
        between them, MLP networks of `prior_hidden_units`) or "maf" (`prior_flows` MADE
        layers of `prior_hidden_units`, orders alternating).
      network: "conv" (the Sylvester paper's gated convolutions; H and W divisible by 4),
        "mlp" (the lecture's MLPs of `hidden_units`), or "auto": conv for images of at
        least 16x16 that it fits, else mlp.
      hidden_units: widths of the MLP encoder and decoder.
      conv_filters, deconv_filters: channels of the six gated (transposed) convolutions.
      decoder: "bernoulli" (needs num_levels == 2), "categorical" (num_levels-way per
        pixel), "logistic_mixture" (`nr_logistic_mix` discretized logistics per pixel,
        `zoo.distributions.DiscretizedLogisticMixture`: neighbouring levels share
        probability, where a categorical learns each level on its own), or "auto"
        (bernoulli for binary images, else categorical).
      nr_logistic_mix: K of the logistic-mixture decoder.
      importance_samples: K of `log_prob`'s importance-weighted bound.
      chunk_size: decoder passes (images x samples) per chunk of that bound.
      kl_warmup: training steps over which the KL weight rises from 0 to 1 (0: none).
      seed: seeds every draw (training noise with a saved step counter, the fixed
        evaluation draws); None draws one, kept in the config.
      mixed_precision: see `DensityModel` (the networks; every head is float32).
    """

    capabilities = frozenset({"latent", "elbo"})

    def __init__(self, image_shape, num_levels, latent_dim=16, posterior="gaussian", num_flows=4,
                 posterior_options=None, prior="normal", prior_flows=3, prior_hidden_units=(256, 256),
                 network="auto", hidden_units=(256, 256), conv_filters=ENCODER_FILTERS,
                 deconv_filters=DECODER_FILTERS, decoder="auto", nr_logistic_mix=5, importance_samples=5000,
                 chunk_size=2048, kl_warmup=0, seed=None, **kwargs):
        super().__init__(image_shape, num_levels, **kwargs)
        self.refuse_training_chains("each training forward advances the step counter that seeds "
                                    "its draws and times the KL warm-up")
        self.latent_dim = int(latent_dim)
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}.")
        if posterior not in POSTERIORS:
            raise ValueError(f"posterior must be one of {POSTERIORS}, got {posterior!r}.")
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}.")
        if network not in NETWORKS:
            raise ValueError(f"network must be one of {NETWORKS}, got {network!r}.")
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}.")
        self.posterior, self.prior, self.network, self.decoder_kind = posterior, prior, network, decoder
        if isinstance(nr_logistic_mix, bool) or int(nr_logistic_mix) < 1:
            raise ValueError(f"nr_logistic_mix must be an integer >= 1, got {nr_logistic_mix!r}.")
        self.nr_logistic_mix = int(nr_logistic_mix)
        self.num_flows, self.prior_flows = int(num_flows), int(prior_flows)
        if self.num_flows < 1 and posterior != "gaussian":
            raise ValueError(f"num_flows must be >= 1 for posterior {posterior!r}, got {num_flows}.")
        if self.prior_flows < 1:
            raise ValueError(f"prior_flows must be >= 1, got {prior_flows}.")
        if prior == "realnvp" and self.latent_dim < 2:
            raise ValueError("prior='realnvp' couples halves of z: latent_dim must be >= 2, got "
                             f"{latent_dim}.")
        self.posterior_options = dict(posterior_options or {})
        self.prior_hidden_units = [int(u) for u in prior_hidden_units]
        self.hidden_units = [int(u) for u in hidden_units]
        self.conv_filters = [int(f) for f in conv_filters]
        self.deconv_filters = [int(f) for f in deconv_filters]
        for name, value in (("importance_samples", importance_samples), ("chunk_size", chunk_size)):
            if isinstance(value, bool) or int(value) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        self.importance_samples, self.chunk_size = int(importance_samples), int(chunk_size)
        if int(kl_warmup) < 0:
            raise ValueError(f"kl_warmup must be >= 0 training steps, got {kl_warmup}.")
        self.kl_warmup = int(kl_warmup)
        self.seed = int(seed) if seed is not None else random.randrange(2**31)

        if self.likelihood == "bernoulli" and self.num_levels != 2:
            raise ValueError(f"decoder='bernoulli' models binary images: num_levels must be 2, got "
                             f"{self.num_levels}.")
        height, width, channels = self.image_shape
        out_channels = {"bernoulli": channels, "categorical": channels * self.num_levels,
                        "logistic_mixture": mixture_num_params(channels, self.nr_logistic_mix)}[self.likelihood]
        dtype = self.net_dtype
        if self.network_kind == "conv":
            reduction = conv_reduction(ENCODER_STRIDES)
            if height % reduction or width % reduction:
                raise ValueError(f"network='conv' needs H and W divisible by {reduction}, got "
                                 f"{height}x{width}; use network='mlp'.")
            self.encoder = GatedConvEncoder(self.conv_filters, name="encoder", dtype=dtype)
            self.decoder = GatedConvDecoder(self.image_shape, out_channels, self.deconv_filters,
                                            name="decoder", dtype=dtype)
        else:
            self.encoder = MLPEncoder(self.hidden_units, name="encoder", dtype=dtype)
            self.decoder = MLPDecoder(self.image_shape, out_channels, self.hidden_units[::-1],
                                      name="decoder", dtype=dtype)
        self.q_mean = keras.layers.Dense(self.latent_dim, name="q_mean", dtype="float32")
        self.q_variance = keras.layers.Dense(self.latent_dim, name="q_variance", dtype="float32")
        self.flow = None
        if posterior != "gaussian":
            self.flow = posterior_flow(posterior, self.latent_dim, self.num_flows, name="posterior_flow",
                                       dtype=dtype, **self._flow_options())
        self.prior_nets = []
        d = self.latent_dim
        if prior == "realnvp":
            self.prior_nets = [CouplingMLP(d - d // 2, self.prior_hidden_units, name=f"prior_coupling{k}",
                                           dtype=dtype) for k in range(self.prior_flows)]
        elif prior == "maf":
            self.prior_nets = maf_mades(self.prior_flows, self.prior_hidden_units, seed=self.seed,
                                        name="prior_made", dtype=dtype)

    # ---- settings -------------------------------------------------------------

    @property
    def likelihood(self):
        """"bernoulli", "categorical" or "logistic_mixture": the decoder's distribution per pixel."""
        if self.decoder_kind == "auto":
            return "bernoulli" if self.num_levels == 2 else "categorical"
        return self.decoder_kind

    @property
    def network_kind(self):
        """"conv" or "mlp": the networks `network` resolves to."""
        if self.network != "auto":
            return self.network
        height, width = self.image_shape[:2]
        reduction = conv_reduction(ENCODER_STRIDES)
        return "conv" if min(height, width) >= 16 and height % reduction == 0 and width % reduction == 0 else "mlp"

    def build(self, input_shape=None):
        """The training step counter, then every variable by one ELBO pass and one prior draw."""
        self.step_counter = self.add_weight(name="step_counter", shape=(), dtype="int64",
                                            initializer="zeros", trainable=False,
                                            aggregation="only_first_replica")
        if self.prior == "maf":
            self.prior_log_scale_bounds = [
                self.add_weight(name=f"prior_log_scale_bound{k}", shape=(self.latent_dim,), initializer="ones")
                for k in range(self.prior_flows)]
        images = tf.zeros((1, *self.image_shape), tf.int32)
        h, mean, log_var = self._posterior(images, training=False)
        self._log_weights(images, h, mean, log_var, tf.zeros([1, 1, self.latent_dim]), training=False)

    @property
    def kl_beta(self):
        """The KL weight of the last training step: min(1, steps / kl_warmup) with `steps`
        the training steps so far (1 without warm-up), a float32 scalar."""
        return self._beta(self.step_counter.value)

    def _beta(self, step):
        if not self.kl_warmup:
            return tf.constant(1.0)
        return tf.minimum(1.0, tf.cast(step, tf.float32) / float(self.kl_warmup))

    # ---- the pieces -----------------------------------------------------------

    def _posterior(self, images, training):
        """`h`, and q(z0 | x)'s mean and log-variance `[batch, latent_dim]`, float32."""
        x = centered_pixels(images, self.num_levels)
        h = self.encoder(x, training=training)
        mean = self.q_mean(h)
        log_var = tf.math.log(tf.nn.softplus(self.q_variance(h)) + MIN_VARIANCE)
        return tf.cast(h, tf.float32), mean, log_var

    def _prior_bijector(self):
        """noise -> z of the flow prior (forward: sampling; inverse: density)."""
        d = self.latent_dim
        if self.prior == "maf":
            steps = zb.maf_steps(self.prior_nets, [bound.value for bound in self.prior_log_scale_bounds])
        else:
            steps = []
            for k, net in enumerate(self.prior_nets):
                steps.append(tfb.RealNVP(num_masked=d // 2, shift_and_log_scale_fn=(
                    lambda x, units, net=net: net(x)), name=f"coupling{k}"))
                steps.append(tfb.Permute(np.arange(d)[::-1].copy(), name=f"reverse{k}"))
        return tfb.Chain(steps[::-1])  # the first step applies first

    def prior_log_prob(self, z):
        """log p(z), `[batch]` float32 nats, for latents `z [batch, latent_dim]`."""
        z = tf.cast(z, tf.float32)
        log_det = 0.0
        if self.prior_nets:
            flow = self._prior_bijector()
            log_det = flow.inverse_log_det_jacobian(z, event_ndims=1)
            z = flow.inverse(z)
        return standard_normal_log_prob(z, axis=-1) + log_det

    def _prior_sample(self, n, temperature, seed):
        """`[n, latent_dim]` latents: standard normal noise at `temperature`, through the prior's flow."""
        z = temperature * tf.random.stateless_normal([n, self.latent_dim], seed=seed)
        return self._prior_bijector().forward(z) if self.prior_nets else z

    def _logits(self, z, training=False):
        """Decoder outputs, float32: logits `[batch, H, W, C, 1]` (Bernoulli) or `[..., C,
        num_levels]` (categorical); a logistic mixture's parameters `[batch, H, W, P]`."""
        logits = tf.cast(self.decoder(z, training=training), tf.float32)
        if self.likelihood == "logistic_mixture":
            return tf.reshape(logits, [-1, *self.image_shape[:2], mixture_num_params(
                self.image_shape[-1], self.nr_logistic_mix)])
        levels = 1 if self.likelihood == "bernoulli" else self.num_levels
        return tf.reshape(logits, [-1, *self.image_shape, levels])

    def _pixel_mixture(self, params):
        """The logistic-mixture decoder's distribution: batch `[batch, H, W]`, event `[C]`."""
        return mixture_from_params(params, self.image_shape[-1], self.nr_logistic_mix, self.num_levels)

    def _log_likelihood(self, images, z, training=False):
        """log p(x | z), `[batch]`: images int32 `[batch, H, W, C]`, z `[batch, latent_dim]`."""
        logits = self._logits(z, training)
        if self.likelihood == "logistic_mixture":
            return tf.reduce_sum(self._pixel_mixture(logits).log_prob(images), axis=[1, 2])
        if self.likelihood == "bernoulli":
            per_pixel = -tf.nn.sigmoid_cross_entropy_with_logits(
                labels=tf.cast(images, tf.float32), logits=logits[..., 0])
        else:
            per_pixel = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=images, logits=logits)
        return tf.reduce_sum(per_pixel, axis=[1, 2, 3])

    def _log_weights(self, images, h, mean, log_var, eps, training=False, parts=False):
        """log p(x, zK) - log q(zK | x) for draws `eps [S, batch, latent_dim]` of z0's noise:
        `[S, batch]` (with `parts`: log p(x | zK) and the KL part log p(zK) - log q(zK | x)
        separately). Images are tiled sample-major, so row s * batch + b is draw s of image b."""
        samples, batch = tf.shape(eps)[0], tf.shape(eps)[1]
        z0 = mean[None] + tf.exp(0.5 * log_var)[None] * eps
        # z0 = mean + std * eps: the standard normal's density over the std's volume.
        log_q = standard_normal_log_prob(eps, axis=-1) - 0.5 * tf.reduce_sum(log_var, axis=-1)[None]
        if self.flow is not None:
            z0, log_det = self.flow.transform(z0, h, training)
            log_q -= log_det
        zk = tf.reshape(z0, [-1, self.latent_dim])
        log_pz = tf.reshape(self.prior_log_prob(zk), [samples, batch])
        tiled = tf.tile(images, [samples, 1, 1, 1])
        log_px = tf.reshape(self._log_likelihood(tiled, zk, training), [samples, batch])
        if parts:
            return log_px, log_pz - log_q
        return log_px + log_pz - log_q

    def _elbo_draws(self, images, num_samples):
        """`[num_samples, batch, latent_dim]` evaluation noise: draw s of image b is row
        `(hash(b) + s) mod P` of a fixed pool of P = max(4096, num_samples) draws."""
        pool_size = max(ELBO_POOL, num_samples)
        pool = tf.random.stateless_normal([pool_size, self.latent_dim],
                                          seed=tf.constant([self.seed, 2], tf.int64))
        rows = (_image_hashes(images)[None, :] + tf.range(num_samples, dtype=tf.int64)[:, None]) % pool_size
        return tf.gather(pool, rows)

    def _chunked(self, images, num_samples, draws, reduce):
        """`reduce` ("logmeanexp" or "mean") over `num_samples` log-weights per image, in
        chunks of at most `chunk_size` decoder passes; `draws(index [S]) -> [S, batch, latent]`."""
        h, mean, log_var = self._posterior(images, training=False)
        batch = tf.shape(images)[0]
        per_chunk = tf.maximum(1, self.chunk_size // batch)
        per_chunk = tf.minimum(per_chunk, num_samples)
        chunks = (num_samples + per_chunk - 1) // per_chunk

        def body(i, log_sum, total):
            index = i * per_chunk + tf.range(per_chunk)
            valid = (index < num_samples)[:, None]
            log_w = self._log_weights(images, h, mean, log_var, draws(tf.minimum(index, num_samples - 1)))
            log_sum = tf.reduce_logsumexp(
                tf.stack([log_sum, tf.reduce_logsumexp(tf.where(valid, log_w, -np.inf), axis=0)]), axis=0)
            return i + 1, log_sum, total + tf.reduce_sum(tf.where(valid, log_w, 0.0), axis=0)

        zeros = tf.zeros([batch])
        _, log_sum, total = tf.while_loop(lambda i, *_: i < chunks, body,
                                          (tf.constant(0), zeros - np.inf, zeros))
        if reduce == "mean":
            return total / float(num_samples)
        return log_sum - math.log(num_samples)

    def _importance_log_prob(self, images, num_samples):
        draws = tf.random.stateless_normal([num_samples, self.latent_dim],
                                           seed=tf.constant([self.seed, 1], tf.int64))
        batch = tf.shape(images)[0]

        def shared(index):  # the same K draws for every image
            return tf.broadcast_to(tf.gather(draws, index)[:, None, :],
                                   tf.stack([tf.shape(index)[0], batch, self.latent_dim]))
        return self._chunked(images, num_samples, shared, "logmeanexp")

    def _training_elbo(self, images):
        """The training objective: log p(x | zK) + beta (log p(zK) - log q(zK | x)), one fresh
        draw per image (seeded by the step counter, which this advances)."""
        replica = tf.distribute.get_replica_context()
        replica_id = tf.cast(replica.replica_id_in_sync_group if replica else 0, tf.int64)
        self.step_counter.assign_add(1)
        step = self.step_counter.value
        seed = tf.stack([tf.constant(self.seed, tf.int64), step * 1024 + replica_id])
        eps = tf.random.stateless_normal(tf.stack([1, tf.shape(images)[0], self.latent_dim]), seed=seed)
        h, mean, log_var = self._posterior(images, training=True)
        log_px, kl_part = self._log_weights(images, h, mean, log_var, eps, training=True, parts=True)
        return (log_px + self._beta(step) * kl_part)[0]

    # ---- the DensityModel contract --------------------------------------------

    def _log_prob(self, images, training, labels=None, importance_samples=None):
        if training:
            return self._training_elbo(images)
        return self._importance_log_prob(images, importance_samples or self.importance_samples)

    def log_prob(self, images, labels=None, *, training=False, importance_samples=None):
        """The importance-weighted bound log (1/K) sum_k p(x, z_k) / q(z_k | x), `[batch]`
        float32 nats, K = `importance_samples` (default: the model's): a lower bound on
        log p(x) that tightens with K, not an exact likelihood. Deterministic (the same K
        draws for every call and image). `training=True`: the training objective instead
        (the KL-warmed ELBO, one fresh draw per image; advances the step counter)."""
        options = {} if importance_samples is None else {
            "importance_samples": check_positive_int(importance_samples, "importance_samples")}
        return self._checked_log_prob(images, labels, training, **options)

    def elbo(self, images, labels=None, *, num_samples=1):
        """The evidence lower bound log p(x | zK) + log p(zK) - log q(zK | x), `[batch]` float32
        nats, averaged over `num_samples` draws of z (the first picked by a hash of the
        image, so deterministic and batch-independent); always beta = 1, float32."""
        num_samples = check_positive_int(num_samples, "num_samples")
        self.build_for_images()
        images = self.check_images(images)
        self.check_labels(labels, images.shape[0])
        with self.float32_network():
            draws = self._elbo_draws(images, num_samples)
            return self._chunked(images, num_samples, lambda index: tf.gather(draws, index), "mean")

    def call(self, inputs, training=False):
        """Keras' forward pass: -ELBO in bits/dim per image (training: the KL-warmed one with
        fresh draws; else beta = 1 and `elbo`'s draws), so `fit`'s loss, `evaluate` and the
        validation loss are -ELBO bits/dim."""
        if training:
            return super().call(inputs, training=True)
        if isinstance(inputs, (tuple, list)):
            return -self.elbo(*inputs) / (self.num_dims * math.log(2.0))
        return -self.elbo(inputs) / (self.num_dims * math.log(2.0))

    def _sample(self, n, temperature, seed, labels=None):
        """z from the prior at `temperature`, then one draw of the decoder's distribution."""
        z = self._prior_sample(n, temperature, tf.random.experimental.stateless_fold_in(seed, 1))
        logits = self._logits(z)
        pixel_seed = tf.random.experimental.stateless_fold_in(seed, 2)
        if self.likelihood == "logistic_mixture":
            return self._pixel_mixture(logits).tempered_sample(1.0, pixel_seed)
        if self.likelihood == "bernoulli":
            u = tf.random.stateless_uniform(tf.shape(logits[..., 0]), seed=pixel_seed)
            return tf.cast(u < tf.sigmoid(logits[..., 0]), tf.int32)
        flat = tf.reshape(logits, [-1, self.num_levels])
        draws = tf.random.stateless_categorical(flat, 1, seed=pixel_seed, dtype=tf.int32)
        return tf.reshape(draws, [n, *self.image_shape])

    def encode(self, images, labels=None, *, sample=False, seed=None):
        """Images -> latents z float32 `[batch, latent_dim]`: q(z0 | x)'s mean through the
        posterior flows. `sample=True` draws z0 ~ q(z0 | x) instead (then flows it): with
        `seed` an int, from that seed; with None, the first of `elbo`'s draws (picked by a
        hash of the image, so deterministic)."""
        self.build_for_images()
        images = self.check_images(images)
        self.check_labels(labels, images.shape[0])
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed must be an integer or None, got {seed!r}.")
        with self.float32_network():
            h, z0, log_var = self._posterior(images, training=False)
            if sample:
                eps = (self._elbo_draws(images, 1)[0] if seed is None else tf.random.stateless_normal(
                    tf.shape(z0), seed=tf.constant([seed, 3], tf.int64)))
                z0 += tf.exp(0.5 * log_var) * eps
            return z0 if self.flow is None else self.flow.transform(z0[None], h)[0][0]

    @property
    def latent_shape(self):
        """The shape of one image's latent: `(latent_dim,)`."""
        return (self.latent_dim,)

    def check_latents(self, z):
        """Validates float latents `[batch, latent_dim]`; returns float32."""
        return check_latents(z, self.latent_shape)

    def decode(self, z, labels=None):
        """Latents `[batch, latent_dim]` -> uint8 images: the decoder's most probable image
        (each pixel's mode: logit > 0 for Bernoulli, the argmax level for categorical; for a
        logistic mixture each colour's mode given the colours before it), not a draw."""
        self.build_for_images()
        z = self.check_latents(z)
        self.check_labels(labels, z.shape[0])
        with self.float32_network():
            logits = self._logits(z)
            if self.likelihood == "logistic_mixture":
                return tf.cast(self._pixel_mixture(logits).tempered_sample(0.0, tf.zeros([2], tf.int32)), tf.uint8)
            if self.likelihood == "bernoulli":
                return tf.cast(logits[..., 0] > 0, tf.uint8)
            return tf.cast(tf.argmax(logits, axis=-1), tf.uint8)

    def posterior_parameters(self, images):
        """q(z0 | x)'s mean and log-variance, each float32 `[batch, latent_dim]` (float32
        network): the Gaussian before any posterior flow (`posterior_flows`)."""
        self.build_for_images()
        images = self.check_images(images)
        with self.float32_network():
            _, mean, log_var = self._posterior(images, training=False)
            return mean, log_var

    def posterior_flows(self, images):
        """Each image's posterior flows as a function: draws `z0 [S, batch, latent_dim]` of
        q(z0 | x), S per image of `images [batch, H, W, C]`, -> z, float32 (z0 itself for a
        Gaussian posterior). The flows' parameters are computed once, here, however often
        the function is called."""
        self.build_for_images()
        images = self.check_images(images)
        steps = []
        if self.flow is not None:
            with self.float32_network():
                steps = self.flow.flows(self._posterior(images, training=False)[0])

        def flows(z0):
            z = tf.convert_to_tensor(z0, tf.float32)
            if z.shape.rank != 3 or z.shape[-1] != self.latent_dim:
                raise ValueError(f"Expected draws z0 [S, batch, {self.latent_dim}], got shape {z.shape}.")
            with self.float32_network():
                for step in steps:
                    z = tf.cast(step.forward(z), tf.float32)
            return z
        return flows

    def prior_flow(self, u):
        """The prior's noise `u [batch, latent_dim]` -> latents z: the prior flow's forward
        (z = u for the normal prior), float32."""
        self.build_for_images()
        u = self.check_latents(u)
        with self.float32_network():
            return self._prior_bijector().forward(u) if self.prior_nets else u

    def prior_flow_inverse(self, z):
        """Latents `z [batch, latent_dim]` -> the prior's noise u (`prior_flow`'s inverse), float32."""
        self.build_for_images()
        z = self.check_latents(z)
        with self.float32_network():
            return self._prior_bijector().inverse(z) if self.prior_nets else z

    def pixel_log_probs(self, z):
        """log p(x_i = v | z) for every pixel value i and level v: float32 `[batch, H, W, C,
        num_levels]` at latents `z [batch, latent_dim]` (float32 network). The values are
        independent given z, except the colours of a logistic mixture over several
        colours (each depends on those before it): that decoder is a ValueError."""
        self.build_for_images()
        z = self.check_latents(z)
        if self.likelihood == "logistic_mixture" and self.image_shape[-1] > 1:
            raise ValueError(f"pixel_log_probs needs values independent given z; a logistic mixture over "
                             f"{self.image_shape[-1]} colours makes each colour depend on the ones before it.")
        with self.float32_network():
            logits = self._logits(z)
            if self.likelihood == "bernoulli":
                return tf.concat([tf.math.log_sigmoid(-logits), tf.math.log_sigmoid(logits)], axis=-1)
            if self.likelihood == "categorical":
                return tf.nn.log_softmax(logits, axis=-1)
            levels = tf.range(self.num_levels)[:, None, None, None, None]  # [L, 1, 1, 1, C = 1]
            log_p = self._pixel_mixture(logits).log_prob(levels)  # [L, batch, H, W]
            return tf.transpose(log_p, [1, 2, 3, 0])[..., None, :]

    def _flow_options(self):
        """The options of this posterior's flow layer: `posterior_options`, or its entry
        when `posterior_options` is keyed by posterior kind."""
        options = self.posterior_options
        if options and set(options) <= set(POSTERIORS):
            return dict(options.get(self.posterior, {}))
        return dict(options)

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "posterior": self.posterior,
                "num_flows": self.num_flows, "posterior_options": dict(self.posterior_options),
                "prior": self.prior, "prior_flows": self.prior_flows,
                "prior_hidden_units": list(self.prior_hidden_units), "network": self.network,
                "hidden_units": list(self.hidden_units), "conv_filters": list(self.conv_filters),
                "deconv_filters": list(self.deconv_filters), "decoder": self.decoder_kind,
                "nr_logistic_mix": self.nr_logistic_mix,
                "importance_samples": self.importance_samples, "chunk_size": self.chunk_size,
                "kl_warmup": self.kl_warmup, "seed": self.seed}
