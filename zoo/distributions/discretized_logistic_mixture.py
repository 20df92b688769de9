"""Discretized mixture of logistics over integer pixels (Salimans, Karpathy, Chen and
Kingma 2017, "PixelCNN++", section 2.1 and 2.2)."""

import tensorflow as tf
import tensorflow_probability as tfp

from zoo.distributions.categorical import seeded_draws

tfd = tfp.distributions


def log1mexp(d):
    """`log(1 - exp(-d))` for `d > 0`, accurate for tiny and large d (Maechler 2012).

    Each branch sees only inputs of its own side of log 2: `tf.where` back-propagates
    zero times the unused branch's gradient, and log1p(-exp(-d)) is -inf for d below
    float32's epsilon (a logistic wider than the whole pixel range), which made a NaN
    gradient from an unused branch.
    """
    small = d < 0.6931472
    return tf.where(small, tf.math.log(-tf.math.expm1(-tf.where(small, d, 1.0))),
                    tf.math.log1p(-tf.exp(-tf.where(small, 1.0, d))))


def logistic_bin_log_mass(centered, log_scale, value, num_levels):
    """`log P(value)` of one logistic, discretized to `num_levels` bins of [-1, 1].

    `centered` = x - mu, with x = 2 value / (L - 1) - 1 the bin's centre; bins have
    half-width h = 1 / (L - 1); the first and last bins reach to -inf and +inf (eq. 2):

        P(0)     = sigma((x + h - mu) / s)
        P(L - 1) = 1 - sigma((x - h - mu) / s)
        P(v)     = sigma((x + h - mu) / s) - sigma((x - h - mu) / s)

    computed in log space by the identity sigma(b) - sigma(a) = sigma(b) sigma(-a)
    (1 - e^(a - b)): log P(v) = log sigma(b) + log sigma(-a) + log(1 - e^-(b - a)), with
    b - a = 2h / s > 0. Every term is finite and accurate in float32 for any mean and
    scale, so the paper's float32 fallback for bins of mass < 1e-5 (the density at the
    bin's centre times its width) is not needed: where it would apply, this is exact.
    All arguments broadcast; `value` is int32. Returns float32.
    """
    inv_s = tf.exp(-log_scale)
    h = 1.0 / (num_levels - 1)
    plus = inv_s * (centered + h)
    minus = inv_s * (centered - h)
    left = tf.math.log_sigmoid(plus)
    right = tf.math.log_sigmoid(-minus)
    inner = left + right + log1mexp(2.0 * h * inv_s)
    return tf.where(value == 0, left, tf.where(value == num_levels - 1, right, inner))


class DiscretizedLogisticMixture(tfd.Distribution):
    """Mixture of K discretized logistics over a pixel of C colours in `[0, num_levels)`.

    A value v is the bin centred at x = 2 v / (L - 1) - 1 in [-1, 1]. For C = 3 the
    colours of component k are conditionally dependent through its means (eq. 3):

        mu_R = loc_R,   mu_G = loc_G + c_0 x_R,   mu_B = loc_B + c_1 x_R + c_2 x_G
        p(x) = sum_k pi_k  L(x_R | mu_R,k, s_R,k) L(x_G | mu_G,k, s_G,k) L(x_B | mu_B,k, s_B,k)

    with L the discretized logistic of `logistic_bin_log_mass`. In general colour c's
    mean adds coeffs c(c-1)/2 .. c(c+1)/2 - 1 times the colours before it.

    Args:
      logits: `[..., K]` mixture logits (pi = softmax(logits)).
      locs: `[..., C, K]` means in [-1, 1] units.
      log_scales: `[..., C, K]` log s (used as given: bound them in the model).
      coeffs: `[..., C (C - 1) / 2, K]` linear coefficients (None when C = 1).
      num_levels: L >= 2.

    Event shape `[C]`, batch shape the broadcast of the parameters' leading dims. Values
    are int32; everything is computed in float32.
    """

    def __init__(self, logits, locs, log_scales, coeffs=None, num_levels=256, validate_args=False,
                 name="DiscretizedLogisticMixture"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            self._logits = tf.convert_to_tensor(logits, tf.float32)
            self._locs = tf.convert_to_tensor(locs, tf.float32)
            self._log_scales = tf.convert_to_tensor(log_scales, tf.float32)
            if int(num_levels) < 2:
                raise ValueError(f"num_levels must be >= 2, got {num_levels}.")
            self._num_levels = int(num_levels)
            channels = self._locs.shape[-2]
            if self._locs.shape[-1] != self._logits.shape[-1] or self._log_scales.shape[-2:] != self._locs.shape[-2:]:
                raise ValueError(f"Expected locs and log_scales [..., C, K] with K = logits' last size "
                                 f"{self._logits.shape[-1]}, got {self._locs.shape} and {self._log_scales.shape}.")
            num_coeffs = channels * (channels - 1) // 2
            if num_coeffs:
                if coeffs is None:
                    raise ValueError(f"Expected coeffs [..., {num_coeffs}, K] for {channels} colours, got None.")
                self._coeffs = tf.convert_to_tensor(coeffs, tf.float32)
                if self._coeffs.shape[-2:] != (num_coeffs, self._logits.shape[-1]):
                    raise ValueError(f"Expected coeffs [..., {num_coeffs}, {self._logits.shape[-1]}], "
                                     f"got {self._coeffs.shape}.")
            else:
                self._coeffs = None
            self._channels = int(channels)
            super().__init__(dtype=tf.int32, reparameterization_type=tfd.NOT_REPARAMETERIZED,
                             validate_args=validate_args, allow_nan_stats=True,
                             parameters=parameters, name=name)

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(logits=tfp.util.ParameterProperties(event_ndims=1),
                    locs=tfp.util.ParameterProperties(event_ndims=2),
                    log_scales=tfp.util.ParameterProperties(event_ndims=2),
                    coeffs=tfp.util.ParameterProperties(event_ndims=2))

    @property
    def num_levels(self):
        return self._num_levels

    def _event_shape(self):
        return tf.TensorShape([self._channels])

    def _event_shape_tensor(self):
        return tf.constant([self._channels], tf.int32)

    def _batch_shape(self):
        shape = self._logits.shape[:-1]
        for p in (self._locs, self._log_scales):
            shape = tf.broadcast_static_shape(shape, p.shape[:-2])
        return shape

    def _batch_shape_tensor(self):
        shape = tf.shape(self._logits)[:-1]
        for p in (self._locs, self._log_scales):
            shape = tf.broadcast_dynamic_shape(shape, tf.shape(p)[:-2])
        return shape

    def scaled(self, values):
        """int32 values -> bin centres in [-1, 1], float32."""
        return tf.cast(values, tf.float32) * (2.0 / (self._num_levels - 1)) - 1.0

    def component_means(self, x, c):
        """Colour c's means `[..., K]` given the bin centres `x [..., C]` of earlier colours."""
        mean = self._locs[..., c, :]
        first = c * (c - 1) // 2
        for j in range(c):
            mean = mean + self._coeffs[..., first + j, :] * x[..., j:j + 1]
        return mean

    def _log_prob(self, values):
        """`values [..., C]` int32 -> `[...]` log p(values), eq. 2-3 summed over colours in
        each component, then log-sum-exp over components."""
        values = tf.convert_to_tensor(values, tf.int32)
        x = self.scaled(values)
        log_pk = tf.nn.log_softmax(self._logits, axis=-1)
        for c in range(self._channels):
            centered = x[..., c:c + 1] - self.component_means(x, c)
            log_pk = log_pk + logistic_bin_log_mass(centered, self._log_scales[..., c, :],
                                                    values[..., c:c + 1], self._num_levels)
        return tf.reduce_logsumexp(log_pk, axis=-1)

    def tempered_sample(self, temperature, seed):
        """One draw per batch member, `[*batch, C]` int32, colour by colour.

        Colour c is drawn from its exact conditional p(x_c | x_<c) (`draw`), tempered
        as softmax(log p(x_c = v | x_<c) / temperature) over all L values v:
        temperature 1 is exact ancestral sampling, 0 the greedy mode of each conditional.
        `seed`: a stateless `[2]` seed; colour c draws with `fold_in(seed, c)`.
        """
        return self.draw(seeded_draws(tf.convert_to_tensor(temperature, tf.float32), seed))

    def draw(self, choose):
        """One value per batch member, `[*batch, C]` int32, colour by colour: colour c is
        `choose(c, log_p)` (int32 `[m]`), `log_p [m, L]` float32 its exact conditional's
        log-probabilities log p(x_c = v | x_<c) over all L values v (m: the batch's
        size, flattened). The conditional is the mixture whose weights are the
        components' posteriors given the colours chosen so far. A sampler's `choose`
        draws (`tempered_sample`), a coder's returns the value it codes.
        """
        batch = self.batch_shape_tensor()
        levels = tf.range(self._num_levels, dtype=tf.int32)
        x_levels = self.scaled(levels)  # [L], against [..., K, 1]: the levels innermost
        log_w = tf.broadcast_to(tf.nn.log_softmax(self._logits, axis=-1),
                                tf.concat([batch, tf.shape(self._logits)[-1:]], 0))
        x = tf.zeros(tf.concat([batch, [self._channels]], 0), tf.float32)
        drawn = []
        for c in range(self._channels):
            mean = self.component_means(x, c)[..., None]  # [..., K, 1]
            lp = logistic_bin_log_mass(x_levels - mean, self._log_scales[..., c, :, None],
                                       levels, self._num_levels)  # [..., K, L]
            post = tf.nn.log_softmax(log_w, axis=-1)[..., None]
            log_p_value = tf.reduce_logsumexp(post + lp, axis=-2)  # [..., L]
            v = tf.reshape(choose(c, tf.reshape(log_p_value, [-1, self._num_levels])), batch)
            drawn.append(v)
            log_w = log_w + tf.gather(lp, v[..., None], axis=-1, batch_dims=len(lp.shape) - 2)[..., 0]
            x = x + tf.one_hot(c, self._channels) * self.scaled(v)[..., None]
        return tf.stack(drawn, axis=-1)

    def _sample_n(self, n, seed=None):
        seed = tfp.random.sanitize_seed(seed)
        batch = self.batch_shape_tensor()
        widened = DiscretizedLogisticMixture(
            *[tf.broadcast_to(p, tf.concat([[n], batch, tf.shape(p)[-1 if i == 0 else -2:]], 0))
              for i, p in enumerate([self._logits, self._locs, self._log_scales])],
            coeffs=None if self._coeffs is None else tf.broadcast_to(
                self._coeffs, tf.concat([[n], batch, tf.shape(self._coeffs)[-2:]], 0)),
            num_levels=self._num_levels)
        return widened.tempered_sample(1.0, seed)


def mixture_num_params(channels, num_mix):
    """Parameters per pixel of a `DiscretizedLogisticMixture` of `num_mix` components over
    `channels` colours: K logits, C K means, C K log-scales, C (C - 1) / 2 K coefficients."""
    return num_mix * (1 + 2 * channels + channels * (channels - 1) // 2)


def mixture_from_params(params, channels, num_mix, num_levels, min_log_scale=-7.0):
    """A network's raw `[..., mixture_num_params(C, K)]` -> `DiscretizedLogisticMixture`
    with batch shape `[...]`, event `[C]`: log-scales bounded below by `min_log_scale`,
    coefficients squashed by tanh (as openai/pixel-cnn)."""
    params = tf.convert_to_tensor(params, tf.float32)
    expected = mixture_num_params(channels, num_mix)
    if params.shape[-1] != expected:
        raise ValueError(f"Expected [..., {expected}] mixture parameters for {channels} colours and "
                         f"{num_mix} components, got {params.shape}.")
    logits, rest = params[..., :num_mix], params[..., num_mix:]
    rest = tf.reshape(rest, tf.concat([tf.shape(rest)[:-1], [2 * channels + channels * (channels - 1) // 2,
                                                               num_mix]], 0))
    return DiscretizedLogisticMixture(
        logits, rest[..., :channels, :], tf.maximum(rest[..., channels:2 * channels, :], min_log_scale),
        tf.tanh(rest[..., 2 * channels:, :]) if channels > 1 else None, num_levels=num_levels)
