"""The weight of an invertible 1x1 convolution (`zoo.bijectors.Invertible1x1Conv`),
plain or LU-decomposed (Kingma and Dhariwal 2018, section 3.2), initialized to a
random rotation (orthogonal matrix).

LU form: the orthogonal init W0 is factored once, W0 = P L U (scipy); P and sign(s)
stay fixed, L, U and log|s| are learned (`zoo.bijectors.lu_weight` recomposes W).
"""

import keras
import numpy as np
import scipy.linalg
import tensorflow as tf

from zoo.bijectors import lu_weight


def random_rotation(channels, seed):
    """An orthogonal `[C, C]` float64 matrix (QR of a Gaussian, sign-corrected)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(channels, channels)))
    return q * np.sign(np.diag(r))


@keras.saving.register_keras_serializable(package="zoo")
class Invertible1x1ConvWeight(keras.layers.Layer):
    """`params()` -> `(W float32 [C, C], log|det W| float32 scalar or None)`.

    Args:
      channels: C.
      lu: LU-decomposed (log-det = sum log|s|) or plain (None: the bijector uses slogdet).
      seed: of the orthogonal initialization (None: drawn from NumPy's global
        generator, which `keras.utils.set_random_seed` seeds).
    """

    def __init__(self, channels, lu=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        if int(channels) < 1:
            raise ValueError(f"channels must be >= 1, got {channels}.")
        self.channels, self.lu = int(channels), bool(lu)
        self.seed = int(seed) if seed is not None else None
        self.build()

    def build(self, input_shape=None):
        if self.built:
            return
        c = self.channels
        w0 = random_rotation(c, self.seed if self.seed is not None else np.random.randint(2**31))

        def const(value):
            return lambda shape, dtype=None: tf.constant(value, dtype or "float32")
        if not self.lu:
            self.weight = self.add_weight(name="weight", shape=(c, c), initializer=const(w0))
        else:
            p, lower, upper = scipy.linalg.lu(w0)
            s = np.diag(upper)
            self.permutation = self.add_weight(name="permutation", shape=(c, c),
                                               initializer=const(p), trainable=False)
            self.sign_s = self.add_weight(name="sign_s", shape=(c,), initializer=const(np.sign(s)),
                                          trainable=False)
            self.lower = self.add_weight(name="lower", shape=(c, c), initializer=const(np.tril(lower, -1)))
            self.upper = self.add_weight(name="upper", shape=(c, c), initializer=const(np.triu(upper, 1)))
            self.log_s = self.add_weight(name="log_s", shape=(c,), initializer=const(np.log(np.abs(s))))
        self.built = True

    def params(self):
        if not self.lu:
            return self.weight.value, None
        return lu_weight(self.permutation.value, self.lower.value, self.upper.value,
                         self.sign_s.value, self.log_s.value)

    def call(self, x):
        return self.params()

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "lu": self.lu, "seed": self.seed}
