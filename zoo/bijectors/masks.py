"""Binary masks of RealNVP's couplings (Dinh et al. 2017, section 3.4, Figure 3).

A mask `b` is float32 `[1, H, W, C]` (or broadcastable to it); the coupling keeps
the entries where `b == 1` (the conditioning half) and transforms the rest.
"""

import numpy as np
import tensorflow as tf


def checkerboard_mask(height, width, parity=0):
    """`[1, H, W, 1]`: 1 where `(row + column) % 2 == parity`, else 0."""
    if parity not in (0, 1):
        raise ValueError(f"parity must be 0 or 1, got {parity!r}.")
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    mask = ((rows + cols) % 2 == parity).astype(np.float32)
    return tf.constant(mask[None, :, :, None])


def channel_mask(channels, half=0):
    """`[1, 1, 1, C]`: 1 on the first half of the channels (`half=0`) or the second."""
    if half not in (0, 1):
        raise ValueError(f"half must be 0 or 1, got {half!r}.")
    if channels % 2:
        raise ValueError(f"a channel mask needs an even number of channels, got {channels}.")
    first = np.arange(channels) < channels // 2
    mask = (first if half == 0 else ~first).astype(np.float32)
    return tf.constant(mask[None, None, None, :])
