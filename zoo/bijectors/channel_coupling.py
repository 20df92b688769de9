"""Glow's couplings on halves of the channels (Kingma and Dhariwal 2018, section
3.3, Table 1), as `AffineCoupling`s with a channel mask.

Coupling (x = [x_a, x_b], h = NN(x_a)):

    additive:  y_b = x_b + h
    affine:    t, r = split(h);  scale = sigmoid(r + 2);  y_b = (x_b + t) * scale
               log|det| = sum log sigmoid(r + 2)

(the affine form is `AffineCoupling`'s `x * exp(s) + shift` with s = log sigmoid(r + 2)
and shift = t * scale.)

Split prior (openai/glow's `split2d`): the factored-out half x_a is modelled as
N(mu(x_b), exp(log_sigma(x_b))^2) given the half that goes on; as a bijector it is
the standardization `eps = (x_a - mu) * exp(-log_sigma)` (log-det -sum log_sigma)
followed by a standard normal, so sampling at temperature T draws
x_a = mu + T * sigma * eps, as in the paper.

The network sees only its conditioning half and returns channels for the other half;
the conditioners pad the kept half with zeros (`AffineCoupling` ignores them).
"""

import tensorflow as tf

from zoo.bijectors.coupling import AffineCoupling
from zoo.bijectors.masks import channel_mask


def _check(channels):
    if channels % 2:
        raise ValueError(f"a channel coupling needs an even number of channels, got {channels}.")
    return channels // 2


def channel_coupling(net, channels, affine=True):
    """Transforms the second half of `channels` given the first.

    `net`: `[b, H, W, C/2] -> [b, H, W, C]` (affine: shift then raw scale) or
    `[b, H, W, C/2]` (additive).
    """
    half = _check(channels)

    def conditioner(kept):
        h = tf.cast(net(kept[..., :half]), tf.float32)
        zeros = tf.zeros_like(kept[..., :half])
        if not affine:
            return tf.concat([zeros, h], -1), None
        shift, raw = h[..., :half], h[..., half:]
        log_scale = tf.math.log_sigmoid(raw + 2.0)
        return (tf.concat([zeros, shift * tf.exp(log_scale)], -1),
                tf.concat([zeros, log_scale], -1))
    return AffineCoupling(channel_mask(channels, 0), conditioner, name="channel_coupling")


def gaussian_split(net, channels):
    """Standardizes the first half of `channels` by a Gaussian conditioned on the second.

    `net`: `[b, H, W, C/2] -> [b, H, W, C]` (mean, then log std of the first half).
    """
    half = _check(channels)

    def conditioner(kept):
        h = tf.cast(net(kept[..., half:]), tf.float32)
        mean, log_std = h[..., :half], h[..., half:]
        zeros = tf.zeros_like(mean)
        return (tf.concat([-mean * tf.exp(-log_std), zeros], -1),
                tf.concat([-log_std, zeros], -1))
    return AffineCoupling(channel_mask(channels, 1), conditioner, name="gaussian_split")
