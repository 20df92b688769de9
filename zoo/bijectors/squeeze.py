"""Squeeze (Dinh et al. 2017, section 3.6, Figure 3): `[H, W, C] -> [H/2, W/2, 4C]`.

Each channel's 2x2 block becomes 4 channels in the paper's (and its code's)
ordering: output channel `4c + 2i + j` holds input channel c at row offset i,
column offset j. Built from `tf.nn.space_to_depth` (whose ordering is
`(2i + j) * C + c`) and a fixed channel permutation, so the batch may be dynamic.
"""

import numpy as np
import tensorflow as tf

from zoo.bijectors.base import ZooBijector


def _paper_order(channels):
    """Indices into space_to_depth's channels giving the paper's ordering."""
    return np.array([k * channels + c for c in range(channels) for k in range(4)], np.int32)


class Squeeze(ZooBijector):
    """Volume-preserving reshape (log-det 0). Events are rank 3."""

    constant_jacobian = True

    def __init__(self, validate_args=False, name="squeeze"):
        super().__init__(name, validate_args)

    def _forward(self, x):
        channels = x.shape[-1]
        if x.shape[-3] % 2 or x.shape[-2] % 2:
            raise ValueError(f"squeeze needs an even height and width, got shape {x.shape}.")
        return tf.gather(tf.nn.space_to_depth(x, 2), _paper_order(channels), axis=-1)

    def _inverse(self, y):
        if y.shape[-1] % 4:
            raise ValueError(f"unsqueeze needs channels divisible by 4, got shape {y.shape}.")
        order = np.argsort(_paper_order(y.shape[-1] // 4)).astype(np.int32)
        return tf.nn.depth_to_space(tf.gather(y, order, axis=-1), 2)

    def _forward_log_det_jacobian(self, x):
        return tf.zeros(tf.shape(x)[:1], tf.float32)

    def _inverse_log_det_jacobian(self, y):
        return tf.zeros(tf.shape(y)[:1], tf.float32)

    def _forward_event_shape(self, input_shape):
        h, w, c = input_shape[-3:]
        return input_shape[:-3].concatenate([h // 2 if h else None, w // 2 if w else None,
                                             4 * c if c else None])

    def _inverse_event_shape(self, output_shape):
        h, w, c = output_shape[-3:]
        return output_shape[:-3].concatenate([2 * h if h else None, 2 * w if w else None,
                                              c // 4 if c else None])

    def _forward_event_shape_tensor(self, input_shape):
        return tf.concat([input_shape[:-3], input_shape[-3:-1] // 2, 4 * input_shape[-1:]], 0)

    def _inverse_event_shape_tensor(self, output_shape):
        return tf.concat([output_shape[:-3], 2 * output_shape[-3:-1], output_shape[-1:] // 4], 0)
