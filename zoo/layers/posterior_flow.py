"""Amortized posterior flows of a VAE: z_0 ~ q(z_0 | x) -> z_K by K flows whose
parameters the encoder's features `h [batch, H]` give (van den Berg et al. 2018,
section 4: one set of flow parameters per image, from dense maps of h).

    log q(z_K | x) = log q(z_0 | x) - sum_k log|det dz_k / dz_(k-1)|

Each kind is a layer that owns those maps and builds its flows as bijectors of
`zoo.bijectors` (where their math is); `POSTERIOR_FLOWS` names them:

  planar       `PlanarFlow` (Rezende and Mohamed 2015): u, w and b per flow.
  iaf          `IAFFlow` (Kingma et al. 2016): one MADE per step, h its context.
  householder  `HouseholderFlow` (Tomczak and Welling 2016): reflection vectors.
  sylvester_o  `OrthogonalSylvesterFlow` (van den Berg et al. 2018): Q orthogonalized.
  sylvester_h  `HouseholderSylvesterFlow`: Q a product of reflections.
  sylvester_t  `TriangularSylvesterFlow`: Q the identity or the reversal, alternating.
"""

import inspect
import numbers

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from zoo.bijectors.gated_iaf import GatedIAF
from zoo.bijectors.householder import Householder, householder_product
from zoo.bijectors.planar import Planar
from zoo.bijectors.sylvester import Sylvester, bounded_triangular, orthogonalize, reversal
from zoo.layers.made import MADE, alternating_order

tfb = tfp.bijectors


def _positive_int(layer, name, value, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1 or (
            high is not None and value > high):
        bound = f" and <= {high}" if high is not None else ""
        raise ValueError(f"{layer}: {name} must be an integer >= 1{bound}, got {value!r}.")
    return int(value)


class AmortizedFlow(keras.layers.Layer):
    """`(z0 [batch, D], h [batch, H]) -> (zK [batch, D], log_det [batch])`: K flows
    whose parameters are dense maps of h.

    Subclasses create their maps in `build_maps()` (`self.context_size` = H is known
    there), return the K bijectors in z0 -> zK order from `make_flows(h, training)`, take
    their options as keyword arguments and list them in `options`. The maps and the
    flows compute in float32 (float64 under a float64 dtype policy) whatever the
    mixed-precision policy; a MADE's hidden layers follow it.
    """

    def __init__(self, latent_dim, num_flows, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = _positive_int(type(self).__name__, "latent_dim", latent_dim)
        self.num_flows = _positive_int(type(self).__name__, "num_flows", num_flows)
        self._work = "float64" if self.dtype_policy.variable_dtype == "float64" else "float32"
        self.context_size = None

    @property
    def options(self):
        """This kind's options (constructor arguments beyond latent_dim and num_flows)."""
        return {}

    @classmethod
    def option_names(cls):
        """The keyword arguments this kind takes beyond latent_dim and num_flows."""
        skip = {"self", "latent_dim", "num_flows", "kwargs"}
        return sorted(set(inspect.signature(cls.__init__).parameters) - skip)

    def _dense(self, units, name, random_bias=False, zero_kernel=False):
        """A dense map of h, built, in the working dtype."""
        bias = keras.initializers.RandomNormal(stddev=1.0) if random_bias else "zeros"
        kernel = "zeros" if zero_kernel else "glorot_uniform"
        layer = keras.layers.Dense(units, kernel_initializer=kernel, bias_initializer=bias, name=name,
                                   dtype=self._work)
        layer.build((None, self.context_size))
        return layer

    def _per_flow(self, layer, h, *shape):
        """`layer(h)` as `[batch, K, *shape]`: flow k's parameters at `[:, k]`."""
        return tf.reshape(layer(h), [-1, self.num_flows, *shape])

    def build(self, z0_shape=None, h_shape=None):
        if h_shape is None or h_shape[-1] is None:
            raise ValueError(f"{type(self).__name__}: h must be [batch, H] with a known H, got {h_shape}.")
        self.context_size = int(h_shape[-1])
        self.build_maps()
        self.built = True

    def build_maps(self):
        raise NotImplementedError

    def make_flows(self, h, training):
        raise NotImplementedError

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
            raise ValueError(f"{type(self).__name__}: h must be [batch, {self.context_size}], got {h.shape}.")
        return self.make_flows(tf.cast(h, self._work), training)

    def bijector(self, h, training=False):
        """A `tfb.Chain` of the flows (data order z0 -> zK), parameters from `h [batch, H]`."""
        return tfb.Chain(list(reversed(self.flows(h, training))), name=f"{self.name}_chain")

    def call(self, z0, h, training=False):
        z = tf.cast(z0, self._work)
        if z.shape.rank != 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"{type(self).__name__}: z0 must be [batch, {self.latent_dim}], got {z.shape}.")
        log_det = tf.zeros(tf.shape(z)[:1], self._work)
        for flow in self.flows(h, training):
            log_det += flow.forward_log_det_jacobian(z, event_ndims=1)
            z = flow.forward(z)
        return z, log_det

    def transform(self, z0, h, training=False):
        """The flows on S draws per image, `z0 [S, batch, D]`: `(zK [S, batch, D], sum of
        log-dets [S, batch])`, float32. The parameters are computed once per image (`h
        [batch, H]`) and broadcast over the draws, so K importance samples cost K flow
        passes, not K parameter computations (Sylvester's orthogonalization)."""
        log_det = tf.zeros(tf.shape(z0)[:2])
        for step in self.flows(h, training):
            log_det += tf.cast(step.forward_log_det_jacobian(z0, event_ndims=1), tf.float32)
            z0 = tf.cast(step.forward(z0), tf.float32)
        return z0, log_det

    def compute_output_shape(self, z0_shape, h_shape=None):
        return tuple(z0_shape), tuple(z0_shape[:1])

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "num_flows": self.num_flows,
                **self.options}


@keras.saving.register_keras_serializable(package="zoo")
class PlanarFlow(AmortizedFlow):
    """Planar flows (`zoo.bijectors.Planar`): u, w `[D]` and b per flow from h. u's map
    starts at zero, so each flow starts as the identity, as IAF's steps start near it."""

    def build_maps(self):
        d, k = self.latent_dim, self.num_flows
        self.amor_u = self._dense(k * d, "amor_u", zero_kernel=True)
        self.amor_w = self._dense(k * d, "amor_w", random_bias=True)
        self.amor_b = self._dense(k, "amor_b")

    def make_flows(self, h, training):
        d = self.latent_dim
        u, w, b = self._per_flow(self.amor_u, h, d), self._per_flow(self.amor_w, h, d), self._per_flow(self.amor_b, h)
        return [Planar(u[:, i], w[:, i], b[:, i], name=f"planar{i}") for i in range(self.num_flows)]

    def transform(self, z0, h, training=False):
        """As `AmortizedFlow.transform`, with h tiled over the draws: `Planar`'s inverse
        takes rank-2 events `[batch, D]` only."""
        samples = tf.shape(z0)[0]
        zk, log_det = self(tf.reshape(z0, [-1, self.latent_dim]), tf.tile(h, [samples, 1]), training=training)
        return (tf.reshape(tf.cast(zk, tf.float32), tf.shape(z0)),
                tf.reshape(tf.cast(log_det, tf.float32), tf.shape(z0)[:2]))


@keras.saving.register_keras_serializable(package="zoo")
class IAFFlow(AmortizedFlow):
    """Gated IAF steps (`zoo.bijectors.GatedIAF`), one MADE each with h as its context,
    orders alternating natural / reversed.

    Args:
      hidden_units: the MADEs' hidden widths; activation: theirs.
      forget_bias: added to s, so steps start near the identity (Kingma et al. 2016,
        section 4).
    """

    def __init__(self, latent_dim, num_flows, hidden_units=(320, 320), activation="elu", forget_bias=1.0,
                 **kwargs):
        super().__init__(latent_dim, num_flows, **kwargs)
        if (isinstance(hidden_units, (str, numbers.Integral)) or not hidden_units
                or any(isinstance(u, bool) or not isinstance(u, numbers.Integral) or u < 1
                       for u in hidden_units)):
            raise ValueError(f"IAFFlow: hidden_units must be a non-empty list of positive integers, got "
                             f"{hidden_units!r}.")
        self.hidden_units = [int(u) for u in hidden_units]
        keras.activations.get(activation)
        self.activation, self.forget_bias = activation, float(forget_bias)

    @property
    def options(self):
        return {"hidden_units": list(self.hidden_units), "activation": self.activation,
                "forget_bias": self.forget_bias}

    def build_maps(self):
        self.mades = []
        for i in range(self.num_flows):
            made = MADE(2, self.hidden_units, input_order=alternating_order(i), context_size=self.context_size,
                        activation=self.activation, seed=i, name=f"made{i}", dtype=self.dtype_policy)
            made.build((None, self.latent_dim), (None, self.context_size))
            self.mades.append(made)

    def make_flows(self, h, training):
        return [GatedIAF(made, h, self.forget_bias, training, name=f"iaf{i}") for i, made in enumerate(self.mades)]


@keras.saving.register_keras_serializable(package="zoo")
class HouseholderFlow(AmortizedFlow):
    """Householder flows (`zoo.bijectors.Householder`): `num_householder` reflection
    vectors per flow from h (K * num_householder reflections in all), log|det| = 0."""

    def __init__(self, latent_dim, num_flows, num_householder=1, **kwargs):
        super().__init__(latent_dim, num_flows, **kwargs)
        self.num_householder = _positive_int("HouseholderFlow", "num_householder", num_householder)

    @property
    def options(self):
        return {"num_householder": self.num_householder}

    def build_maps(self):
        self.amor_v = self._dense(self.num_flows * self.num_householder * self.latent_dim, "amor_v",
                                  random_bias=True)

    def make_flows(self, h, training):
        v = self._per_flow(self.amor_v, h, self.num_householder, self.latent_dim)
        return [Householder(v[:, i, t], name=f"householder{i}_{t}")
                for i in range(self.num_flows) for t in range(self.num_householder)]


class SylvesterFlow(AmortizedFlow):
    """Sylvester flows (`zoo.bijectors.Sylvester`, van den Berg et al. 2018): R, R~ from
    one amortized `[M, M]` matrix (its strict upper triangle for R, strict lower for R~,
    the paper code's sharing) and two amortized tanh-bounded diagonals, b `[M]`; the
    subclasses make Q `[D, M]`."""

    @property
    def num_vectors(self):
        """M, the columns of Q and the size of R (D but for the orthogonal flow)."""
        return self.latent_dim

    def build_maps(self):
        k, m = self.num_flows, self.num_vectors
        self.amor_full = self._dense(k * m * m, "amor_full")
        self.amor_diag1 = self._dense(k * m, "amor_diag1")
        self.amor_diag2 = self._dense(k * m, "amor_diag2")
        self.amor_b = self._dense(k * m, "amor_b")
        self.build_q()

    def build_q(self):
        """Creates Q's maps, if any."""

    def make_q(self, h):
        """The K matrices Q, each `[batch, D, M]` or `[D, M]`."""
        raise NotImplementedError

    def make_flows(self, h, training):
        m = self.num_vectors
        full, b = self._per_flow(self.amor_full, h, m, m), self._per_flow(self.amor_b, h, m)
        r = bounded_triangular(full, self._per_flow(self.amor_diag1, h, m))
        r_tilde = bounded_triangular(tf.linalg.matrix_transpose(full), self._per_flow(self.amor_diag2, h, m))
        return [Sylvester(q, r[:, i], r_tilde[:, i], b[:, i], name=f"sylvester{i}")
                for i, q in enumerate(self.make_q(h))]


@keras.saving.register_keras_serializable(package="zoo")
class OrthogonalSylvesterFlow(SylvesterFlow):
    """O-SNF: Q `[D, M]` orthogonalized iteratively (`zoo.bijectors.orthogonalize`, `ortho_steps`
    iterations) from a dense map of h; M = `num_ortho_vecs` (1..D; None: D)."""

    def __init__(self, latent_dim, num_flows, num_ortho_vecs=None, ortho_steps=30, **kwargs):
        super().__init__(latent_dim, num_flows, **kwargs)
        name = type(self).__name__
        self.num_ortho_vecs = _positive_int(name, "num_ortho_vecs", self.latent_dim if num_ortho_vecs is None
                                            else num_ortho_vecs, high=self.latent_dim)
        self.ortho_steps = _positive_int(name, "ortho_steps", ortho_steps)

    @property
    def options(self):
        return {"num_ortho_vecs": self.num_ortho_vecs, "ortho_steps": self.ortho_steps}

    @property
    def num_vectors(self):
        return self.num_ortho_vecs

    def build_q(self):
        self.amor_q = self._dense(self.num_flows * self.latent_dim * self.num_ortho_vecs, "amor_q",
                                  random_bias=True)

    def make_q(self, h):
        q = orthogonalize(self._per_flow(self.amor_q, h, self.latent_dim, self.num_ortho_vecs), self.ortho_steps)
        return [q[:, i] for i in range(self.num_flows)]


@keras.saving.register_keras_serializable(package="zoo")
class HouseholderSylvesterFlow(SylvesterFlow):
    """H-SNF: Q `[D, D]` the product of `num_householder` reflections from h
    (`zoo.bijectors.householder_product`)."""

    def __init__(self, latent_dim, num_flows, num_householder=8, **kwargs):
        super().__init__(latent_dim, num_flows, **kwargs)
        self.num_householder = _positive_int(type(self).__name__, "num_householder", num_householder)

    @property
    def options(self):
        return {"num_householder": self.num_householder}

    def build_q(self):
        self.amor_q = self._dense(self.num_flows * self.num_householder * self.latent_dim, "amor_q",
                                  random_bias=True)

    def make_q(self, h):
        vs = self._per_flow(self.amor_q, h, self.num_householder, self.latent_dim)
        return [householder_product(vs[:, i]) for i in range(self.num_flows)]


@keras.saving.register_keras_serializable(package="zoo")
class TriangularSylvesterFlow(SylvesterFlow):
    """T-SNF: Q the identity (even flows) or the reversal permutation (odd), no maps."""

    def make_q(self, h):
        d = self.latent_dim
        return [tf.eye(d, dtype=h.dtype) if i % 2 == 0 else reversal(d, h.dtype) for i in range(self.num_flows)]


POSTERIOR_FLOWS = {"planar": PlanarFlow, "iaf": IAFFlow, "householder": HouseholderFlow,
                   "sylvester_o": OrthogonalSylvesterFlow, "sylvester_h": HouseholderSylvesterFlow,
                   "sylvester_t": TriangularSylvesterFlow}
KINDS = tuple(POSTERIOR_FLOWS)


def posterior_flow(kind, latent_dim, num_flows, **options):
    """The `POSTERIOR_FLOWS[kind]` layer; `options`: its own (a `ValueError` names the
    ones it takes) and Keras' layer arguments (name, dtype, trainable)."""
    if kind not in POSTERIOR_FLOWS:
        raise ValueError(f"posterior flow kind must be one of {KINDS}, got {kind!r}.")
    cls = POSTERIOR_FLOWS[kind]
    unknown = sorted(set(options) - set(cls.option_names()) - {"name", "dtype", "trainable"})
    if unknown:
        raise ValueError(f"{cls.__name__} ({kind!r}) takes the options {cls.option_names()}, got unknown "
                         f"{unknown}.")
    return cls(latent_dim, num_flows, **options)
