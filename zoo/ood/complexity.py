"""Serra et al. 2020's complexity-corrected score (their eq. 2):

    S(x) = -log2 p(x) - L(x)

with L(x) the code length in bits a lossless compressor gives x, an estimate of its
complexity (simple inputs get high likelihood from every model; S keeps what the model
adds over a generic compressor). Higher S = more anomalous. In bits/dim (divided by
D = H W C, as their figures) or bits; the ranking, and so every metric, is the same.

A compressor is a callable: uint8 images `[n, H, W, C]` -> float64 `[n]` bits, with a
`name`. `PNG`, `JPEG2000` and the other formats of `zoo.codec.classical` (JPEG XL, the
successor of the FLIF Serra et al. also used, where its plugin is installed) at their
strongest lossless settings; `ModelCodeLength`
makes any zoo model the compressor through its ideal code length -log2 p(x).
"""

import numpy as np

from zoo.codec import classical
from zoo.ood.images import check_images
from zoo.ood.likelihood import BATCH_SIZE, log2_likelihood


class FileCompressor:
    """A lossless image format of `zoo.codec.classical` as the compressor: L(x) = 8 x the
    bytes of x's own file (headers included: a constant for images of one shape, so it
    shifts S and leaves every ranking alone). Every file is decoded and checked."""

    def __init__(self, codec, num_levels=256):
        self.name, self.num_levels = codec, num_levels

    def encode(self, image):
        """One uint8 image `[H, W, C]` -> the bytes of its file."""
        return classical.encode_image(classical.check_images(np.asarray(image)[None], self.num_levels)[0],
                                      self.num_levels, self.name)

    def decode(self, data, channels=1):
        """The bytes of a file -> the uint8 image `[H, W, channels]`."""
        return classical.decode_image(data, channels, self.num_levels)

    def __call__(self, images):
        """Code length per image: float64 `[n]` bits."""
        return classical.image_file_bits(images, self.num_levels, self.name)

    def __repr__(self):
        return f"FileCompressor({self.name!r})"


PNG = FileCompressor("png")
JPEG2000 = FileCompressor("jpeg2000")
COMPRESSORS = {c.name: c for c in (PNG, JPEG2000, *(FileCompressor(k) for k in classical.image_codecs()
                                                    if k not in ("png", "jpeg2000")))}


class ModelCodeLength:
    """A zoo model as the compressor: L(x) = -log2 p(x) bits, the ideal code length an
    entropy coder driven by the model attains to within a few bits per image.

    With a Ren et al. background model as the compressor, S is their likelihood ratio."""

    def __init__(self, model, name=None, batch_size=BATCH_SIZE):
        self.model, self.batch_size = model, batch_size
        self.name = name or f"model:{type(model).__name__}"

    def __call__(self, images):
        return -log2_likelihood(self.model, images, self.batch_size, what=f"{self.name} images")


def corrected(model_bits, code_bits, num_dims=1):
    """`S = -log2 p(x) - L(x)` from its parts: the model's and the compressor's bits per
    image, float64 `[n]`, divided by `num_dims` (D for bits/dim)."""
    return (np.asarray(model_bits, np.float64) - np.asarray(code_bits, np.float64)) / num_dims


def complexity_corrected(model, images, compressor, per_dim=True, batch_size=BATCH_SIZE):
    """Serra et al.'s S(x) per image: float64 `[n]`, bits/dim (`per_dim`) or bits."""
    images = check_images(images, model)
    return corrected(-log2_likelihood(model, images, batch_size), compressor(images),
                     model.num_dims if per_dim else 1)
