"""Classical lossless codecs, the baselines a model's code length is compared with.

Per-image formats (one file per image, as a user would store them): PNG, WebP lossless
and JPEG 2000 lossless through Pillow, JPEG XL lossless through `pillow-jxl-plugin` where it is
installed. Whole-array compressors over the raw uint8 bytes of a batch: gzip, bz2, lzma
from the standard library. Each is lossless: `check_round_trip` decodes and compares.
Images are uint8 `[n, H, W, C]` with C 1 or 3 and values below `num_levels`; a
two-level image is stored as a 1-bit PNG (as one would store a binarized image).
"""

import bz2
import gzip
import io
import lzma

import numpy as np
from PIL import Image

from zoo.models.base import check_image_array


def _jxl_available():
    try:
        import pillow_jxl  # noqa: F401  (registers the JXL format with Pillow)
    except ImportError:
        return False
    return True


def _to_pillow(image, num_levels):
    """uint8 `[H, W, C]` -> a Pillow image: mode "1" for two levels, "L" or "RGB" else."""
    if image.shape[-1] == 1:
        plane = image[..., 0]
        return Image.fromarray(plane.astype(bool)) if num_levels == 2 else Image.fromarray(plane, "L")
    return Image.fromarray(image, "RGB")


def _from_pillow(data, channels):
    """Bytes of an image file -> uint8 `[H, W, channels]` (a one-bit file as 0/1)."""
    with Image.open(io.BytesIO(data)) as im:
        one_bit = im.mode == "1"
        array = np.asarray(im.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    if one_bit:
        array = (array > 0).astype(np.uint8)
    return array[..., None] if channels == 1 else array


# Pillow's strongest lossless settings for each format.
_SAVE_OPTIONS = {
    "png": {"format": "PNG", "optimize": True},
    "webp": {"format": "WEBP", "lossless": True, "quality": 100, "method": 6},
    "jxl": {"format": "JXL", "lossless": True, "effort": 9},
    # The reversible 5/3 wavelet with no quality layers (lossless), the raw codestream.
    "jpeg2000": {"format": "JPEG2000", "irreversible": False, "no_jp2": True},
}


def encode_image(image, num_levels, codec):
    """One uint8 image `[H, W, C]` -> the bytes of its file in `codec` (see `image_codecs`)."""
    if codec not in _SAVE_OPTIONS or (codec == "jxl" and not _jxl_available()):
        raise ValueError(f"Expected an image codec among {image_codecs()}, got {codec!r}.")
    pil = _to_pillow(image, num_levels)
    if codec != "png" and pil.mode == "1":
        pil = pil.convert("L")  # WebP and JPEG XL take 8-bit planes; 0/255 is still lossless
    out = io.BytesIO()
    pil.save(out, **_SAVE_OPTIONS[codec])
    return out.getvalue()


def decode_image(data, channels, num_levels):
    """Bytes of an image file -> uint8 `[H, W, C]` in `[0, num_levels)`."""
    image = _from_pillow(data, channels)
    if num_levels == 2:
        image = (image > 0).astype(np.uint8)
    return image


def image_codecs():
    """The per-image formats this installation can write."""
    return ("png", "webp", "jpeg2000") + (("jxl",) if _jxl_available() else ())


ARRAY_CODECS = {
    "gzip": (lambda b: gzip.compress(b, compresslevel=9, mtime=0), gzip.decompress),
    "bz2": (lambda b: bz2.compress(b, compresslevel=9), bz2.decompress),
    "lzma": (lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME), lzma.decompress),
}


def check_images(images, num_levels):
    """uint8 images `[n, H, W, 1 or 3]` below `num_levels` (`check_image_array`)."""
    images = check_image_array(images, None, num_levels)
    if images.shape[-1] not in (1, 3):
        raise ValueError(f"images: expected 1 or 3 channels (gray or RGB), got shape {list(images.shape)}.")
    return images


def image_file_bits(images, num_levels, codec):
    """Bits of each image's own file in `codec`: float64 `[n]`; every file is decoded
    and compared with its image (a mismatch raises)."""
    images = check_images(images, num_levels)
    sizes = np.empty(len(images))
    for i, image in enumerate(images):
        data = encode_image(image, num_levels, codec)
        if not np.array_equal(decode_image(data, image.shape[-1], num_levels), image):
            raise RuntimeError(f"{codec} did not give image {i} back exactly.")
        sizes[i] = 8 * len(data)
    return sizes


def array_bits(images, num_levels, codec):
    """Bits of one `codec` stream ("gzip", "bz2", "lzma") over the raw uint8 bytes of all
    `images` (one byte per value, C order), checked by decompressing it."""
    images = check_images(images, num_levels)
    compress, decompress = ARRAY_CODECS[codec]
    raw = images.tobytes()
    data = compress(raw)
    if decompress(data) != raw:
        raise RuntimeError(f"{codec} did not give the array back exactly.")
    return 8 * len(data)
