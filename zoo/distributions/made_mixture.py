"""MADE MoG (Papamakarios, Pavlakou and Murray 2017, section 4; Germain et al. 2015):
an autoregressive density over vectors whose every conditional is a mixture of K
Gaussians computed by a MADE from the dimensions before it,

    p(z) = prod_d  sum_k pi_dk(z_<d) N(z_d; mu_dk(z_<d), sigma_dk(z_<d)^2).

The MADE (`zoo.layers.MADE` with `num_params = 3K`: logits, means, log-stds) is the
caller's layer, so its weights live where the model tracks them. MAF's "mog" base
and the flows' `prior="autoregressive"` are this density.
"""

import tensorflow as tf

from zoo.distributions.normal import standard_normal_log_prob


def mixture_log_prob(params, z):
    """Sum over d of `log sum_k pi_dk N(z_d; mu_dk, exp(s_dk)^2)`: `params [b, D, 3K]`
    (logits, means, log-stds), `z [b, D]` -> `[b]`."""
    logits, loc, log_scale = tf.split(params, 3, axis=-1)
    eps = (z[..., None] - loc) * tf.exp(-log_scale)
    log_normal = standard_normal_log_prob(eps) - log_scale
    per_dim = tf.reduce_logsumexp(tf.nn.log_softmax(logits) + log_normal, axis=-1)
    return tf.reduce_sum(per_dim, axis=-1)


def made_mixture_log_prob(made, z, training=False):
    """`log p(z)`, float32 `[b]`, of `z [b, D]` under the MADE MoG `made`."""
    z = tf.cast(z, tf.float32)
    return mixture_log_prob(tf.cast(made(z, training=training), tf.float32), z)


def made_mixture_sample(made, n, temperature, seed):
    """`[n, D]` float32 draws in the MADE's order, D sequential passes: each dimension's
    component drawn by its weights (Gumbel-max), its std scaled by `temperature`."""
    size, components = made.size, made.num_params // 3
    eps = tf.random.stateless_normal([n, size], seed=seed)
    uniform = tf.random.stateless_uniform([n, size, components],
                                          tf.random.experimental.stateless_fold_in(seed, 1),
                                          minval=1e-12, maxval=1.0)
    gumbel = -tf.math.log(-tf.math.log(uniform))

    def step(d, params):
        logits, loc, log_scale = tf.split(params, 3, axis=-1)
        k = tf.argmax(logits + gumbel[:, d], axis=-1, output_type=tf.int32)
        pick = lambda t: tf.gather(t, k, axis=1, batch_dims=1)  # noqa: E731
        return pick(loc) + temperature * tf.exp(pick(log_scale)) * eps[:, d]
    return made.sequential(n, step)
