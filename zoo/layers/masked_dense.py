"""A dense layer with a fixed binary mask on its kernel (Germain et al. 2015,
"MADE: Masked Autoencoder for Distribution Estimation", eq. 10-11):

    y = x @ (W * M) + b

M is a constant: masked weights get no gradient and never move from what they
contribute (nothing), so the connectivity is exactly M's.
"""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class MaskedDense(keras.layers.Layer):
    """`[..., in_features]` -> `[..., units]`, unit j reading input i only where
    `mask[i, j] == 1`.

    Args:
      units: output features.
      mask: 0/1 array `[in_features, units]`.
      use_bias: adds a bias `[units]`.
      kernel_initializer: of the full kernel W (the mask applies on use).
    """

    def __init__(self, units, mask, use_bias=True, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        mask = np.asarray(mask, np.float32)
        if mask.ndim != 2 or mask.shape[1] != self.units or not np.isin(mask, (0.0, 1.0)).all():
            raise ValueError(f"mask must be a 0/1 array [in_features, {self.units}], got shape "
                             f"{mask.shape}.")
        self.mask = mask
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        if int(input_shape[-1]) != self.mask.shape[0]:
            raise ValueError(f"{self.name}: the mask has {self.mask.shape[0]} input features, the "
                             f"input {input_shape[-1]}.")
        self.kernel = self.add_weight(name="kernel", shape=self.mask.shape,
                                      initializer=self.kernel_initializer)
        self.bias = (self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
                     if self.use_bias else None)

    def masked_kernel(self, dtype):
        """`W * M` `[in_features, units]` in `dtype`."""
        return ops.cast(self.kernel * ops.cast(self.mask, self.kernel.dtype), dtype)

    def call(self, x):
        y = ops.matmul(x, self.masked_kernel(x.dtype))
        return y + ops.cast(self.bias, y.dtype) if self.bias is not None else y

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "mask": self.mask.astype(int).tolist(),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
