"""A convolution's one output from one window of its input, as a matrix product."""

import tensorflow as tf


def window_product(windows, kernel):
    """`windows [n, kh, kw, C]`, `kernel [kh, kw, C, F]` -> `[n, 1, 1, F]`: the `valid`
    convolution of each window (one output), as `[n, kh kw C] @ [kh kw C, F]`.

    Cached samplers call it for every pixel: on CPU a matrix product of these sizes costs
    less than a convolution call (measured in `python -m reproduce bench`)."""
    if windows.shape.rank != 4 or tuple(windows.shape[1:]) != tuple(kernel.shape[:3]):
        raise ValueError(f"windows must be [n, kh, kw, C] = [n, {', '.join(map(str, kernel.shape[:3]))}] "
                         f"for a kernel of shape {tuple(kernel.shape)}, got {tuple(windows.shape)}.")
    kh, kw, c = windows.shape[1:]
    y = tf.matmul(tf.reshape(windows, [-1, kh * kw * c]), tf.reshape(kernel, [kh * kw * c, kernel.shape[-1]]))
    return tf.reshape(y, [-1, 1, 1, kernel.shape[-1]])
