"""MADE (Germain, Gregor, Murray and Larochelle, "MADE: Masked Autoencoder for
Distribution Estimation", ICML 2015, section 4): an MLP whose output d sees only
the inputs before d in an ordering.

Every input i has a degree m(i) in {0, ..., D-1}, its position in the order;
every hidden unit k of layer l a degree m_l(k) in [min m_(l-1), D-2]. The masks
(eq. 12-13, 0-based degrees) are

    hidden:  M_l[k', k] = 1  iff  m_l(k) >= m_(l-1)(k')
    output:  M_out[k, d] = 1  iff  m(d) > m_L(k)
    direct:  M_dir[i, d] = 1  iff  m(d) > m(i)        (optional input-to-output path)

so output d depends only on inputs i with m(i) < m(d). A context vector (class
one-hots, a VAE encoder's h) enters every hidden layer and the output layer through
unmasked dense maps: it conditions all outputs (the first in the order included,
which no hidden unit reaches) without breaking the autoregressive property.
"""

import keras
import numpy as np
import tensorflow as tf

from zoo.layers.dropout import ResumableDropout
from zoo.layers.masked_dense import MaskedDense

ORDERS = ("natural", "reversed", "random")
DEGREES = ("equal", "random")


def input_degrees(size, order="natural", seed=0):
    """Degrees `[size]` int: each input's position in the autoregressive order.

    `order`: "natural" (0, 1, ...), "reversed", "random" (a permutation drawn from
    `seed`), or a permutation of `range(size)` (input i is generated `order[i]`-th).
    """
    if isinstance(order, str):
        if order == "natural":
            return np.arange(size)
        if order == "reversed":
            return np.arange(size)[::-1].copy()
        if order == "random":
            return np.random.default_rng(seed).permutation(size)
        raise ValueError(f"input_order must be one of {ORDERS} or a permutation of range(D), "
                         f"got {order!r}.")
    degrees = np.asarray(order)
    if degrees.shape != (size,) or sorted(degrees.tolist()) != list(range(size)):
        raise ValueError(f"input_order must be a permutation of range({size}), got {order!r}.")
    return degrees.astype(np.int64)


def hidden_degrees(units, previous, size, kind="equal", rng=None):
    """Degrees `[units]` of a hidden layer after a layer of degrees `previous`: in
    `[min(previous), size - 2]`, spread evenly ("equal") or uniformly drawn ("random",
    the paper's). With `size == 1` no hidden unit can feed an output (degree 0)."""
    low, high = int(np.min(previous)), size - 2
    if high < low:
        return np.full(units, size - 1)
    if kind == "equal":
        return low + np.arange(units) % (high - low + 1)
    return rng.integers(low, high + 1, units)


@keras.saving.register_keras_serializable(package="zoo")
class MADE(keras.layers.Layer):
    """`x [batch, D]` (and `context [batch, context_size]`) -> `[batch, D, num_params]`;
    output `[:, d, :]` depends only on inputs before d in the order.

    Args:
      num_params: outputs per input dimension (2: a shift and a log-scale).
      hidden_units: widths of the hidden layers (at least one).
      input_order: "natural", "reversed", "random" (drawn from `seed`), or a
        permutation of range(D) (input i is generated `input_order[i]`-th).
      hidden_degrees: "equal" (degrees spread evenly) or "random" (drawn from `seed`).
      direct: adds the masked direct input-to-output connection.
      context_size: features of the optional context (None: no context).
      activation: of the hidden layers.
      dropout: rate of dropout on every hidden layer's units while training.
      kernel_initializer: of the hidden layers; output_initializer: of the output
        layer, the direct connection and the context's output map ("zeros": the
        outputs start at their biases). The outputs are computed in float32 whatever
        the hidden layers' precision.
      seed: of the random order and degrees (None: drawn once and kept in the config).
    """

    def __init__(self, num_params, hidden_units=(1024, 1024), input_order="natural",
                 hidden_degrees="equal", direct=False, context_size=None, activation="relu",
                 dropout=0.0, kernel_initializer="glorot_uniform", output_initializer="glorot_uniform",
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_params = int(num_params)
        self.hidden_units = [int(u) for u in hidden_units]
        if self.num_params < 1 or not self.hidden_units or min(self.hidden_units) < 1:
            raise ValueError(f"num_params must be >= 1 and hidden_units a non-empty list of positive "
                             f"widths, got {num_params}, {hidden_units}.")
        if isinstance(input_order, str):
            if input_order not in ORDERS:
                raise ValueError(f"input_order must be one of {ORDERS} or a permutation of range(D), "
                                 f"got {input_order!r}.")
        else:
            input_order = [int(i) for i in input_order]
        self.input_order = input_order
        if hidden_degrees not in DEGREES:
            raise ValueError(f"hidden_degrees must be one of {DEGREES}, got {hidden_degrees!r}.")
        self.hidden_degrees = hidden_degrees
        self.direct = bool(direct)
        self.context_size = None if context_size is None else int(context_size)
        if self.context_size is not None and self.context_size < 1:
            raise ValueError(f"context_size must be None or >= 1, got {context_size}.")
        self.activation = activation
        self._activation = keras.activations.get(activation)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        self.dropout = float(dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.output_initializer = keras.initializers.get(output_initializer)
        self.seed = int(seed) if seed is not None else int(np.random.randint(2**31 - 1))

    def build(self, x_shape, context_shape=None):
        size = int(x_shape[-1])
        self.size = size
        rng = np.random.default_rng(self.seed)
        self.degrees = input_degrees(size, self.input_order, rng.integers(2**31 - 1))
        self.unit_degrees = []
        self.hidden, self.context_layers, self.drops = [], [], []
        previous = self.degrees
        for l, units in enumerate(self.hidden_units):
            degrees = hidden_degrees(units, previous, size, self.hidden_degrees, rng)
            mask = degrees[None, :] >= previous[:, None]
            layer = MaskedDense(units, mask, kernel_initializer=self.kernel_initializer,
                                name=f"hidden{l}", dtype=self.dtype_policy)
            layer.build((None, len(previous)))
            self.hidden.append(layer)
            if self.context_size is not None:
                context = keras.layers.Dense(units, use_bias=False, name=f"context{l}",
                                             kernel_initializer=self.kernel_initializer,
                                             dtype=self.dtype_policy)
                context.build((None, self.context_size))
                self.context_layers.append(context)
            if self.dropout:
                self.drops.append(ResumableDropout(self.dropout, seed=self.seed + l, name=f"dropout{l}",
                                                   dtype=self.dtype_policy))
                self.drops[-1].build((None, units))
            self.unit_degrees.append(degrees)
            previous = degrees
        # Output unit d * num_params + p is parameter p of dimension d.
        out_degrees = np.repeat(self.degrees, self.num_params)
        self.out = MaskedDense(size * self.num_params, out_degrees[None, :] > previous[:, None],
                               kernel_initializer=self.output_initializer, name="output",
                               dtype="float32")
        self.out.build((None, len(previous)))
        if self.context_size is not None:
            context = keras.layers.Dense(size * self.num_params, use_bias=False, name="context_output",
                                         kernel_initializer=self.output_initializer, dtype="float32")
            context.build((None, self.context_size))
            self.context_layers.append(context)
        self.skip = None
        if self.direct:
            self.skip = MaskedDense(size * self.num_params, out_degrees[None, :] > self.degrees[:, None],
                                    use_bias=False, kernel_initializer=self.output_initializer,
                                    name="direct", dtype="float32")
            self.skip.build((None, size))

    def call(self, x, context=None, training=False):
        if (context is None) != (self.context_size is None):
            raise ValueError(f"{self.name}: context_size={self.context_size}, so pass "
                             f"{'no' if self.context_size is None else 'a'} context.")
        h = x
        for l, layer in enumerate(self.hidden):
            pre = layer(h)
            if context is not None:
                pre = pre + self.context_layers[l](context)
            h = self._activation(pre)
            if self.drops:
                h = self.drops[l](h, training=training)
        y = self.out(h)
        if context is not None:
            y = y + self.context_layers[-1](context)
        if self.skip is not None:
            y = y + self.skip(x)
        return tf.reshape(y, tf.concat([tf.shape(y)[:-1], [self.size, self.num_params]], 0))

    def sequential(self, n, step, context=None):
        """Generates `x [n, D]` one dimension at a time, in this MADE's order: for each
        position, with d the input there, `x[:, d] = step(d, params)` where `params
        [n, num_params]` is `call(x)[:, d]` given the values so far (`step`: int32 scalar
        d, float32 `[n, num_params]` -> float32 `[n]`). D passes in a `tf.while_loop`;
        each updates the first layer's pre-activation by one row of its kernel and
        computes only d's output units, so a pass costs the hidden-to-hidden layers."""
        size, params = self.size, self.num_params
        order = tf.constant(np.argsort(self.degrees), tf.int32)
        ctx = ([tf.cast(layer(context), tf.float32) for layer in self.context_layers]
               if context is not None else [0.0] * (len(self.hidden) + 1))
        first = self.hidden[0]
        w_first = first.masked_kernel(tf.float32)
        pre = tf.zeros([n, first.units]) + tf.cast(first.bias, tf.float32) + ctx[0]
        rest = [(layer.masked_kernel(tf.float32), tf.cast(layer.bias, tf.float32))
                for layer in self.hidden[1:]]
        w_out = tf.reshape(self.out.masked_kernel(tf.float32), [-1, size, params])
        b_out = tf.reshape(tf.cast(self.out.bias, tf.float32), [size, params])
        ctx_out = tf.reshape(ctx[-1] + tf.zeros([n, size * params]), [n, size, params])
        w_direct = (tf.reshape(self.skip.masked_kernel(tf.float32), [size, size, params])
                    if self.skip is not None else None)

        def body(i, x, pre):
            d = order[i]
            h = self._activation(pre)
            for (w, b), c in zip(rest, ctx[1:-1]):
                h = self._activation(tf.matmul(h, w) + b + c)
            out = tf.matmul(h, w_out[:, d]) + b_out[d] + ctx_out[:, d]
            if w_direct is not None:
                out += tf.matmul(x, w_direct[:, d])
            value = tf.cast(step(d, out), tf.float32)
            x += value[:, None] * tf.one_hot(d, size)
            return i + 1, x, pre + value[:, None] * w_first[d]

        _, x, _ = tf.while_loop(lambda i, *_: i < size, body,
                                (tf.constant(0), tf.zeros([n, size]), pre))
        return x

    def compute_output_shape(self, x_shape, context_shape=None):
        return (*x_shape, self.num_params)

    def get_config(self):
        return {**super().get_config(), "num_params": self.num_params,
                "hidden_units": list(self.hidden_units), "input_order": self.input_order,
                "hidden_degrees": self.hidden_degrees, "direct": self.direct,
                "context_size": self.context_size, "activation": self.activation,
                "dropout": self.dropout,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "output_initializer": keras.initializers.serialize(self.output_initializer),
                "seed": self.seed}


def alternating_order(k):
    """The input order of the k-th of stacked MADEs: natural, reversed, natural, ...
    (each layer of a MAF or IAF conditions on what the one before could not see)."""
    return "natural" if k % 2 == 0 else "reversed"


def maf_mades(num_layers, hidden_units, *, seed, name, **options):
    """The MADEs of `num_layers` affine autoregressive layers over a vector (MAF,
    Papamakarios et al. 2017, section 3): `num_params=2` (shift, raw log-scale), orders
    alternating, zero output weights so every layer starts as the identity, layer k
    seeded `seed + k` and named f"{name}{k}"; `options` are further `MADE` arguments
    (activation, dropout, context_size, dtype). `zoo.bijectors.maf_steps` turns them
    into bijectors."""
    return [MADE(2, hidden_units, input_order=alternating_order(k), output_initializer="zeros",
                 seed=seed + k, name=f"{name}{k}", **options) for k in range(num_layers)]
