"""Distribution strategies for tests that run several in one process."""

import itertools

import tensorflow as tf

_KEY_BASES = itertools.count(1)


def isolated_mirrored(devices):
    """A `MirroredStrategy` with collective keys of its own.

    TF numbers every MirroredStrategy's collectives from the same group and instance
    keys; in one process, a later strategy whose collective reuses a key with another
    shape fails ("Shape mismatch in the collective instance 100") and aborts the
    collectives of every later test. Actnorm's all-reduce has shapes no gradient
    all-reduce has, so these tests keep to their own key range."""
    base = 100_000 * next(_KEY_BASES)
    cls = type("IsolatedMirroredStrategy", (tf.distribute.MirroredStrategy,),
               {"_collective_key_base": base})
    return cls(devices)
