"""The standard normal's log density: the base of the flows, the VAE's prior and the
noise of its Gaussian posterior, the components of the MADE mixture.

    log N(z; 0, 1) = -(z^2 + log 2 pi) / 2
"""

import math

import tensorflow as tf

LOG_2PI = math.log(2.0 * math.pi)


def standard_normal_log_prob(z, axis=None):
    """log N(z; 0, 1) of each element of `z`, or summed over `axis` (an int or a list)."""
    if axis is None:
        return -0.5 * (tf.square(z) + LOG_2PI)
    return -0.5 * tf.reduce_sum(tf.square(z) + LOG_2PI, axis=axis)
