"""Amortized posterior flows of a VAE: z_0 ~ q(z_0 | x) -> z_K by K flows whose
parameters the encoder's features `h [batch, H]` give (van den Berg et al. 2018,
section 4: one set of flow parameters per image, from dense maps of h).

    log q(z_K | x) = log q(z_0 | x) - sum_k log|det dz_k / dz_(k-1)|

Kinds (their math is in `zoo.bijectors`):

  planar       Rezende and Mohamed 2015: u, w (each [D]) and b per flow from h; u's map
               starts at zero, so each flow starts as the identity.
  iaf          Kingma et al. 2016 (the numerically stable, LSTM-like step of section 4):
               [m, s] = MADE(z, context=h),  sigma = sigmoid(s + forget_bias),
               z' = sigma * z + (1 - sigma) * m,  log|det| = sum log sigma; the MADEs'
               orders alternate natural / reversed between steps.
  householder  Tomczak and Welling 2016: `num_householder` vectors v per flow from h
               (T = num_flows * num_householder reflections in all), log|det| = 0.
  sylvester_o  van den Berg et al. 2018: Q [D, M] (M = `num_ortho_vecs`) orthogonalized
               iteratively from a dense map of h; R, R~ from one amortized [M, M] matrix
               (its strict upper triangle for R, strict lower for R~, the paper code's
               sharing) and two amortized tanh-bounded diagonals; b [M].
  sylvester_h  as sylvester_o with Q [D, D] the product of `num_householder` reflections.
  sylvester_t  as sylvester_o with Q the identity (even flows) or the reversal (odd).
"""

import numbers

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from zoo.bijectors.householder import Householder, householder_product
from zoo.bijectors.memo import TensorMemo
from zoo.bijectors.planar import Planar
from zoo.bijectors.sylvester import Sylvester, bounded_triangular, orthogonalize, reversal
from zoo.layers.made import MADE

tfb = tfp.bijectors

OPTIONS = {  # kind -> its options and their defaults (None: resolved from latent_dim)
    "planar": {},
    "iaf": {"hidden_units": (320, 320), "activation": "elu", "forget_bias": 1.0},
    "householder": {"num_householder": 1},
    "sylvester_o": {"num_ortho_vecs": None, "ortho_steps": 30},
    "sylvester_h": {"num_householder": 8},
    "sylvester_t": {},
}
KINDS = tuple(OPTIONS)


class GatedIAFStep(tfb.Bijector):
    """One IAF step `z' = sigma * z + (1 - sigma) * m`, `[m, s] = made(z, context)`,
    `sigma = sigmoid(s + forget_bias)`. Events rank 1: z `[batch, D]`; log-dets `[batch]`.
    Forward is one MADE pass (memoized for the log-det); the inverse is D passes of the
    fixed point z <- (z' - (1 - sigma(z)) m(z)) / sigma(z), exact after D passes since
    dimension d's sigma and m depend only on the dimensions before it."""

    def __init__(self, made, context, forget_bias=1.0, training=False, name="gated_iaf"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            self._made, self._context = made, context
            self._forget_bias, self._training = forget_bias, training
            self._memo = TensorMemo()
            super().__init__(forward_min_event_ndims=1, parameters=parameters, name=name)

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}

    def _get_parameterization(self):
        # TFP caches results globally by bijector equality; instances built per call with
        # equal parameters must not share them (stale values, no gradient on a new tape).
        return id(self)

    def _params(self, z):
        """(m, s + forget_bias), each `[batch, D]` in z's dtype."""
        def compute(z):
            out = tf.cast(self._made(z, context=self._context, training=self._training), z.dtype)
            return out[..., 0], out[..., 1] + self._forget_bias
        return self._memo(z, compute)

    def _forward(self, z):
        m, s = self._params(z)
        sigma = tf.sigmoid(s)
        return sigma * z + (1.0 - sigma) * m

    def _forward_log_det_jacobian(self, z):
        return tf.reduce_sum(tf.math.log_sigmoid(self._params(z)[1]), -1)

    def _inverse(self, y):
        z = y
        for _ in range(y.shape[-1]):
            m, s = self._params(z)
            sigma = tf.sigmoid(s)
            z = (y - (1.0 - sigma) * m) / sigma
        return z

    def _inverse_log_det_jacobian(self, y):
        return -self._forward_log_det_jacobian(self._inverse(y))


def _positive_int(name, value, low=1, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (
            high is not None and value > high):
        bound = f" and <= {high}" if high is not None else ""
        raise ValueError(f"PosteriorFlow: {name} must be an integer >= {low}{bound}, got {value!r}.")
    return int(value)


@keras.saving.register_keras_serializable(package="zoo")
class PosteriorFlow(keras.layers.Layer):
    """`(z0 [batch, D], h [batch, H]) -> (zK [batch, D], log_det [batch])`, K flows whose
    parameters are dense maps of h.

    Args:
      kind: one of `KINDS`.
      latent_dim: D.
      num_flows: K.
      **options: per kind (defaults in `OPTIONS`):
        iaf: hidden_units (MADE widths), activation, forget_bias (added to s: steps
          start near the identity, Kingma et al. 2016, section 4);
        householder: num_householder (reflections per flow);
        sylvester_o: num_ortho_vecs (M, 1..D; default D), ortho_steps (iterations of
          the orthogonalization, `zoo.bijectors.orthogonalize`);
        sylvester_h: num_householder (reflections making each Q).
    The parameter maps and the flows compute in float32 (float64 under a float64 dtype
    policy) whatever the mixed-precision policy; the MADEs' hidden layers follow it.
    """

    def __init__(self, kind, latent_dim, num_flows, **options):
        base = {k: options.pop(k) for k in ("name", "dtype", "trainable") if k in options}
        super().__init__(**base)
        if kind not in OPTIONS:
            raise ValueError(f"PosteriorFlow: kind must be one of {KINDS}, got {kind!r}.")
        unknown = sorted(set(options) - set(OPTIONS[kind]))
        if unknown:
            raise ValueError(f"PosteriorFlow: kind {kind!r} takes the options "
                             f"{sorted(OPTIONS[kind])}, got unknown {unknown}.")
        self.kind = kind
        self.latent_dim = _positive_int("latent_dim", latent_dim)
        self.num_flows = _positive_int("num_flows", num_flows)
        opts = {**OPTIONS[kind], **options}
        if kind == "iaf":
            units = opts["hidden_units"]
            if (isinstance(units, (str, numbers.Integral)) or not units
                    or any(isinstance(u, bool) or not isinstance(u, numbers.Integral) or u < 1
                           for u in units)):
                raise ValueError(f"PosteriorFlow: hidden_units must be a non-empty list of positive "
                                 f"integers, got {units!r}.")
            opts["hidden_units"] = [int(u) for u in units]
            keras.activations.get(opts["activation"])
            opts["forget_bias"] = float(opts["forget_bias"])
        if "num_householder" in opts:
            opts["num_householder"] = _positive_int("num_householder", opts["num_householder"])
        if kind == "sylvester_o":
            if opts["num_ortho_vecs"] is None:
                opts["num_ortho_vecs"] = self.latent_dim
            opts["num_ortho_vecs"] = _positive_int("num_ortho_vecs", opts["num_ortho_vecs"],
                                                   high=self.latent_dim)
            opts["ortho_steps"] = _positive_int("ortho_steps", opts["ortho_steps"])
        self.options = opts
        self._work = "float64" if self.dtype_policy.variable_dtype == "float64" else "float32"
        self.context_size = None

    @property
    def num_vectors(self):
        """M: the Sylvester flows' R size (D but for sylvester_o)."""
        return self.options.get("num_ortho_vecs", self.latent_dim)

    def _dense(self, units, name, random_bias=False, zero_kernel=False):
        bias = keras.initializers.RandomNormal(stddev=1.0) if random_bias else "zeros"
        kernel = "zeros" if zero_kernel else "glorot_uniform"
        layer = keras.layers.Dense(units, kernel_initializer=kernel, bias_initializer=bias, name=name,
                                   dtype=self._work)
        layer.build((None, self.context_size))
        return layer

    def build(self, z0_shape=None, h_shape=None):
        if h_shape is None or h_shape[-1] is None:
            raise ValueError(f"PosteriorFlow: h must be [batch, H] with a known H, got {h_shape}.")
        self.context_size = int(h_shape[-1])
        d, k, kind = self.latent_dim, self.num_flows, self.kind
        if kind == "planar":
            # u = 0 at the start: every planar flow begins as the identity, as IAF's steps
            # begin near it (on digits, 3 seeds: -ELBO 0.64 nats lower than Glorot-drawn u).
            self.amor_u = self._dense(k * d, "amor_u", zero_kernel=True)
            self.amor_w = self._dense(k * d, "amor_w", random_bias=True)
            self.amor_b = self._dense(k, "amor_b")
        elif kind == "householder":
            self.amor_v = self._dense(k * self.options["num_householder"] * d, "amor_v",
                                      random_bias=True)
        elif kind == "iaf":
            self.mades = []
            for i in range(k):
                made = MADE(2, self.options["hidden_units"],
                            input_order="natural" if i % 2 == 0 else "reversed",
                            context_size=self.context_size, activation=self.options["activation"],
                            seed=i, name=f"made{i}", dtype=self.dtype_policy)
                made.build((None, d), (None, self.context_size))
                self.mades.append(made)
        else:
            m = self.num_vectors
            self.amor_full = self._dense(k * m * m, "amor_full")
            self.amor_diag1 = self._dense(k * m, "amor_diag1")
            self.amor_diag2 = self._dense(k * m, "amor_diag2")
            self.amor_b = self._dense(k * m, "amor_b")
            if kind == "sylvester_o":
                self.amor_q = self._dense(k * d * m, "amor_q", random_bias=True)
            elif kind == "sylvester_h":
                self.amor_q = self._dense(k * self.options["num_householder"] * d, "amor_q",
                                          random_bias=True)
        self.built = True

    def get_build_config(self):
        return {"h_size": self.context_size} if self.built else None

    def build_from_config(self, config):
        if config and config.get("h_size") is not None:
            self.build((None, self.latent_dim), (None, config["h_size"]))

    def flows(self, h, training=False):
        """The K flow bijectors, z0 -> zK order, parameters from `h [batch, H]`."""
        h = tf.convert_to_tensor(h)
        if not self.built:
            self.build((None, self.latent_dim), tuple(h.shape))
        if h.shape.rank != 2 or h.shape[-1] != self.context_size:
            raise ValueError(f"PosteriorFlow: h must be [batch, {self.context_size}], got {h.shape}.")
        h = tf.cast(h, self._work)
        d, k, kind = self.latent_dim, self.num_flows, self.kind

        def per_flow(layer, *shape):
            return tf.reshape(layer(h), [-1, k, *shape])

        if kind == "planar":
            u, w, b = per_flow(self.amor_u, d), per_flow(self.amor_w, d), per_flow(self.amor_b)
            return [Planar(u[:, i], w[:, i], b[:, i], name=f"planar{i}") for i in range(k)]
        if kind == "householder":
            v = per_flow(self.amor_v, self.options["num_householder"], d)
            return [Householder(v[:, i, t], name=f"householder{i}_{t}")
                    for i in range(k) for t in range(self.options["num_householder"])]
        if kind == "iaf":
            return [GatedIAFStep(made, h, self.options["forget_bias"], training, name=f"iaf{i}")
                    for i, made in enumerate(self.mades)]
        m = self.num_vectors
        full, b = per_flow(self.amor_full, m, m), per_flow(self.amor_b, m)
        r = bounded_triangular(full, per_flow(self.amor_diag1, m))
        r_tilde = bounded_triangular(tf.linalg.matrix_transpose(full), per_flow(self.amor_diag2, m))
        if kind == "sylvester_o":
            q = orthogonalize(per_flow(self.amor_q, d, m), self.options["ortho_steps"])
            qs = [q[:, i] for i in range(k)]
        elif kind == "sylvester_h":
            vs = per_flow(self.amor_q, self.options["num_householder"], d)
            qs = [householder_product(vs[:, i]) for i in range(k)]
        else:
            qs = [tf.eye(d, dtype=h.dtype) if i % 2 == 0 else reversal(d, h.dtype) for i in range(k)]
        return [Sylvester(qs[i], r[:, i], r_tilde[:, i], b[:, i], name=f"sylvester{i}")
                for i in range(k)]

    def bijector(self, h, training=False):
        """A `tfb.Chain` of the flows (data order z0 -> zK), parameters from `h [batch, H]`."""
        return tfb.Chain(list(reversed(self.flows(h, training))), name=f"{self.kind}_flow")

    def call(self, z0, h, training=False):
        z = tf.cast(z0, self._work)
        if z.shape.rank != 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"PosteriorFlow: z0 must be [batch, {self.latent_dim}], got {z.shape}.")
        log_det = tf.zeros(tf.shape(z)[:1], self._work)
        for flow in self.flows(h, training):
            log_det += flow.forward_log_det_jacobian(z, event_ndims=1)
            z = flow.forward(z)
        return z, log_det

    def compute_output_shape(self, z0_shape, h_shape=None):
        return tuple(z0_shape), tuple(z0_shape[:1])

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "latent_dim": self.latent_dim,
                "num_flows": self.num_flows,
                **{k: list(v) if isinstance(v, list) else v for k, v in self.options.items()}}
