"""Affine autoregressive flows (MAF, Papamakarios et al. 2017, section 3; IAF,
Kingma et al. 2016, section 4) as TFP's `tfb.MaskedAutoregressiveFlow`, driven by
a MADE (`zoo.layers.MADE`) that computes shift m and raw log-scale r from y:

    y_d = x_d * exp(s_d(y_<d)) + m_d(y_<d),      s = scale * tanh(r)

TFP's forward (x -> y) is D sequential passes; its inverse

    x = (y - m(y)) * exp(-s(y)),      log|det dx/dy| = -sum_d s_d(y)

is one pass. MAF models data as y (density in one pass, sampling in D); IAF is the
same bijector inverted (sampling in one pass, density in D). The log-scale is
bounded as the zoo's couplings bound theirs (`CouplingResNet`): `scale * tanh(r)`
with a learned per-dimension `scale` (a tensor from a Keras weight; None leaves
s = r unbounded). Events are the last `event_ndims` axes, flattened to the MADE's
D inputs. The D-pass direction runs the MADE's own loop (`MADE.sequential`: one row
of the first layer and d's output units a pass) unless `tfp_loop=True` (TFP's
`tf.while_loop` of whole MADE passes).
"""

import tensorflow as tf
import tensorflow_probability as tfp

from zoo.bijectors.memo import TensorMemo

tfb = tfp.bijectors


def _bounded(raw, scale):
    return raw if scale is None else tf.cast(scale, tf.float32) * tf.tanh(raw)


def _flat(y, event_ndims):
    """`[..., event]` -> `[prod(...), D]`."""
    return tf.reshape(y, [-1, tf.reduce_prod(tf.shape(y)[tf.rank(y) - event_ndims:])])


def autoregressive_affine(made, context=None, scale=None, event_ndims=1, training=False):
    """`y -> (shift, log_scale)`, each y's shape: `tfb.MaskedAutoregressiveFlow`'s
    `shift_and_log_scale_fn`. `made(y [batch, D], context=context, training=training)
    -> [batch, D, 2]` (shift, raw log-scale). Memoized per input tensor, so a pass and
    its log-det share one MADE pass."""
    memo = TensorMemo()

    def compute(y):
        params = tf.cast(made(_flat(y, event_ndims), context=context, training=training), tf.float32)
        shape = tf.shape(y)
        return (tf.reshape(params[..., 0], shape),
                tf.reshape(_bounded(params[..., 1], scale), shape))
    return lambda y: memo(y, compute)


def sequential_affine(made, context=None, scale=None, event_ndims=1):
    """`x -> y` of the D-pass direction, by `made.sequential`."""
    def forward(x):
        flat = _flat(x, event_ndims)

        def step(d, params):
            log_scale = _bounded(params[:, 1], None if scale is None else tf.gather(scale, d))
            return tf.gather(flat, d, axis=1) * tf.exp(log_scale) + params[:, 0]
        return tf.reshape(made.sequential(tf.shape(flat)[0], step, context), tf.shape(x))
    return forward


class _MaskedAutoregressiveFlow(tfb.MaskedAutoregressiveFlow):
    """TFP's bijector whose forward loop may be replaced by `forward_fn`."""

    def __init__(self, shift_and_log_scale_fn, forward_fn=None, event_ndims=1, name=None):
        self._forward_fn = forward_fn
        super().__init__(shift_and_log_scale_fn=shift_and_log_scale_fn, event_ndims=event_ndims,
                         name=name)

    def _forward(self, x, **kwargs):
        if self._forward_fn is None:
            return super()._forward(x, **kwargs)
        return self._forward_fn(x)


def masked_autoregressive_flow(made, context=None, scale=None, event_ndims=1, tfp_loop=False,
                               training=False, name="maf"):
    """MAF: forward noise -> data (D passes), inverse data -> noise (one pass).

    `made`: a `zoo.layers.MADE` with `num_params=2` (or, with `tfp_loop=True`, any
    callable `(y [batch, D], context=..., training=...) -> [batch, D, 2]`); `training`
    is passed to its one-pass calls (dropout), never to the D-pass loop."""
    return _MaskedAutoregressiveFlow(
        autoregressive_affine(made, context, scale, event_ndims, training),
        None if tfp_loop else sequential_affine(made, context, scale, event_ndims),
        event_ndims=event_ndims, name=name)


def maf_steps(mades, scales, context=None, event_ndims=1, tfp_loop=False, training=False):
    """K MAF layers over a vector, one per MADE of `zoo.layers.made.maf_mades`, each
    noise -> data as `masked_autoregressive_flow` with its log-scale bound from `scales`
    (K tensors `[D]`, or None); named maf0, maf1, ... The caller chains them in its
    order (with its batch norms between them, for instance)."""
    return [masked_autoregressive_flow(made, context, scale, event_ndims, tfp_loop, training, name=f"maf{k}")
            for k, (made, scale) in enumerate(zip(mades, scales))]


def inverse_autoregressive_flow(made, context=None, scale=None, event_ndims=1, tfp_loop=False,
                                training=False, name="iaf"):
    """IAF: forward noise -> data (one pass), inverse data -> noise (D passes)."""
    return tfb.Invert(masked_autoregressive_flow(made, context, scale, event_ndims, tfp_loop,
                                                 training, name))
