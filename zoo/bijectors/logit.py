"""Logit preprocessing of dequantized pixels (Dinh et al. 2017, section 4.1).

A pixel x in {0, ..., L-1} plus uniform noise u in [0, 1) gives v = x + u in [0, L).
The bijector maps it to the logit space the flow models,

    p = alpha + (1 - 2 alpha) * v / L,      y = logit(p),

    log|det dy/dv| = sum_d [log((1 - 2 alpha) / L) - log p_d - log(1 - p_d)],

so `log N(f(y)) + log-dets` is the density of (x + u) / L minus D log L: the bits/dim
on the original pixel scale that the papers report.
"""

import numbers

import tensorflow_probability as tfp

tfb = tfp.bijectors


def check_alpha(alpha):
    """`alpha` as a float, or a ValueError unless 0 <= alpha < 0.5 (p must stay inside (0, 1))."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 <= alpha < 0.5:
        raise ValueError(f"alpha must be a number in [0, 0.5), got {alpha!r}.")
    return float(alpha)


def logit_preprocess(num_levels, alpha=0.05):
    """`v in [0, L)` -> `logit(alpha + (1 - 2 alpha) v / L)`, elementwise; any event rank.
    TFP's `Scale`, `Shift` and inverted `Sigmoid`, whose log-dets are the ones above."""
    alpha = check_alpha(alpha)
    return tfb.Chain([tfb.Invert(tfb.Sigmoid()), tfb.Shift(alpha),
                      tfb.Scale((1.0 - 2.0 * alpha) / float(num_levels))], name="logit_preprocess")
