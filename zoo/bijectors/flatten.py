"""An image as one pixel of D channels: `[H, W, C] <-> [1, 1, H*W*C]` (raster order,
channels fastest), so per-channel bijectors (`BatchNorm`, `ActNorm`) act per dimension
and a vector flow (MAF) sees the whole image as its event. `tf.reshape` with the
batch read from the tensor, so the batch may be dynamic (TFP's `tfb.Reshape` is not).
"""

import tensorflow as tf

from zoo.bijectors.base import ZooBijector


class Flatten(ZooBijector):
    """`[..., H, W, C]` -> `[..., 1, 1, H*W*C]`; log-det 0. `image_shape`: (H, W, C)."""

    constant_jacobian = True

    def __init__(self, image_shape, validate_args=False, name="flatten"):
        self._image_shape = tuple(int(d) for d in image_shape)
        self._size = self._image_shape[0] * self._image_shape[1] * self._image_shape[2]
        super().__init__(name, validate_args, image_shape=image_shape)

    def _reshaped(self, x, event):
        return tf.reshape(x, tf.concat([tf.shape(x)[:-3], event], 0))

    def _forward(self, x):
        return self._reshaped(x, [1, 1, self._size])

    def _inverse(self, y):
        return self._reshaped(y, self._image_shape)

    def _forward_log_det_jacobian(self, x):
        return tf.zeros(tf.shape(x)[:-3], tf.float32)

    def _inverse_log_det_jacobian(self, y):
        return tf.zeros(tf.shape(y)[:-3], tf.float32)

    def _forward_event_shape(self, input_shape):
        return input_shape[:-3].concatenate([1, 1, self._size])

    def _inverse_event_shape(self, output_shape):
        return output_shape[:-3].concatenate(self._image_shape)

    def _forward_event_shape_tensor(self, input_shape):
        return tf.concat([input_shape[:-3], [1, 1, self._size]], 0)

    def _inverse_event_shape_tensor(self, output_shape):
        return tf.concat([output_shape[:-3], self._image_shape], 0)
