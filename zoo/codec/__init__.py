"""Lossless compression with the zoo's models: a model's -log2 p(x) becomes bytes on disk.

    import zoo.codec
    data = zoo.codec.compress("pixelcnnpp-mnist", images)   # uint8 [n, 28, 28, 1] -> bytes
    images = zoo.codec.decompress(data)                     # loads the named model itself

Three coders, picked by what the model can do (`codec_for`):
  * `range_coding`: autoregressive models (ARM, PixelCNN, Gated PixelCNN, PixelCNN++),
    every value range-coded under its exact conditional, through the model's cached pass;
  * `ordering_bits_back`: an autoregressive mixture over pixel orderings (PixelCNN++'s
    `augmentation_mixture`), the ordering a latent coded bits-back, on an ANS stack;
  * `bits_back`: VAEs, bits-back coding with ANS (BB-ANS).
The stream (`container`) names the model (its hub name and a digest of its weights),
the codec, the image shape, count and batch size, and carries checksums: a truncated or
corrupted stream, other weights, an unknown format version, or a decoder that computes
other probabilities than the encoder are a one-line ValueError, never wrong images.
`ideal_bits` gives the model's own code length per image, to compare the stream with, and
`initial_bits` the one-off bits a stream holds (bits-back's initial words).
"""

import functools
import importlib

import numpy as np

from zoo.codec import container, ordering_bits_back, range_coding
from zoo.models.base import check_image_array, check_positive_int

DEFAULT_BATCH_SIZE = 250  # range coding: images per cached pass; larger batches run faster per image


def _coders():
    """The coding modules, range coding first; bits_back where it is installed."""
    coders = [range_coding, ordering_bits_back]
    try:
        coders.append(importlib.import_module("zoo.codec.bits_back"))
    except ModuleNotFoundError as error:
        if error.name != "zoo.codec.bits_back":
            raise
    return coders


def codec_for(model_or_name):
    """The coding module that codes a model or pretrained name (its class and config
    suffice); a one-line ValueError with each coder's reason if none does."""
    model = _unbuilt(model_or_name) if isinstance(model_or_name, str) else model_or_name
    reasons = []
    for coder in _coders():
        reason = coder.supports(model)
        if reason is None:
            return coder
        reasons.append(f"{coder.NAME}: {reason}")
    raise ValueError(f"No codec compresses a {type(model).__name__}: " + " ".join(reasons))


def _unbuilt(name):
    """A pretrained model's class and config, without its weights (enough for `codec_for`)."""
    from zoo import hub
    e = hub.entry(name)
    return hub.build(e["model"], e["config"])


def initial_bits(data):
    """The one-off bits a stream's bytes hold apart from its images' code length
    (bits-back's initial words that its first pops read; none for the other coders)."""
    header, _, payload = container.unpack(data)
    return _coder_named(header["codec"]).initial_bits(payload)


def _coder_named(name):
    """The coding module a stream's header names; a one-line ValueError if this zoo lacks it."""
    coders = {coder.NAME: coder for coder in _coders()}
    if name not in coders:
        raise ValueError(f"This stream was coded with codec {name!r}; this zoo has {sorted(coders)}.")
    return coders[name]


def can_compress(model_or_name):
    """Whether a model (or pretrained name) can be compressed with."""
    try:
        codec_for(model_or_name)
    except ValueError:
        return False
    return True


def compressing_models():
    """The pretrained models (`zoo.hub.list_models()`) that can compress, sorted."""
    from zoo import hub
    return [name for name in hub.list_models() if can_compress(name)]


@functools.lru_cache(maxsize=4)
def _pretrained(name):
    """`zoo.hub.load(name)`, kept for the next stream: a model's coding graphs are traced
    once per model object and batch size."""
    from zoo import hub
    return hub.load(name)


def _model_and_name(model_or_name, name):
    """`(model, hub name)`: a pretrained name is loaded; a model object needs `name`."""
    from zoo import hub
    if isinstance(model_or_name, str):
        if name is not None and name != model_or_name:
            raise ValueError(f"Got the pretrained model {model_or_name!r} and name={name!r}: pass one name.")
        return _pretrained(model_or_name), model_or_name
    if not isinstance(name, str) or not name:
        raise ValueError("Compressing with a model object needs name=: the name decompress loads it by "
                         "(the pretrained model's, e.g. 'pixelcnnpp-mnist'); or pass the name instead of the model.")
    digest = container.weights_digest
    if name in hub.list_models() and digest(model_or_name) != digest(_pretrained(name)):
        raise ValueError(f"This model's weights are not those of the pretrained {name!r}: a stream named after it "
                         "could not be decoded.")
    return model_or_name.build_for_images(), name


def _check_images(model, images):
    return check_image_array(images, model.image_shape, model.num_levels)


def compress(model_or_name, images, labels=None, *, batch_size=None, name=None):
    """Images (and labels of a class-conditional model) -> the stream's bytes.

    model_or_name: a pretrained name (`zoo.hub.list_models()`, loaded here), or a model
      object with `name=`, the name `decompress` loads it by (a pretrained name; another
      name, e.g. for a model of one's own, needs `decompress(data, model=...)`).
    images: integers `[n, H, W, C]` in `[0, num_levels)` (uint8).
    labels: ints `[n]` in `[0, num_classes)` for a class-conditional model, else None.
    batch_size: images per network pass (range coding; default `DEFAULT_BATCH_SIZE` or n
      if fewer); the stream records it and decoding uses it.
    """
    model, name = _model_and_name(model_or_name, name)
    coder = codec_for(model)
    images = _check_images(model, images)
    labels = model.check_labels(labels, len(images))
    labels = None if labels is None else np.asarray(labels, np.int32)
    if batch_size is None:
        batch_size = min(DEFAULT_BATCH_SIZE, len(images))
    payload = coder.encode(model, images, labels, check_positive_int(batch_size, "batch_size"))
    header = {"codec": coder.NAME, "model": name, "weights_digest": container.weights_digest(model),
              "image_shape": list(model.image_shape), "num_levels": model.num_levels, "count": len(images),
              "batch_size": int(batch_size), "label_bytes": container.label_bytes(model.num_classes),
              "images_digest": container.images_digest(images, labels)}
    return container.pack(header, labels, payload)


def decompress(data, *, model=None):
    """The stream's bytes -> uint8 images `[n, H, W, C]`, or `(images, labels)` when the
    model is class-conditional. Loads the pretrained model the stream names, or decodes
    with `model` (its weights must be the encoder's either way)."""
    header, labels, payload = container.unpack(data)
    if model is None:
        from zoo import hub
        if header["model"] not in hub.list_models():
            raise ValueError(f"This stream was coded with {header['model']!r}, which is not a pretrained model "
                             "of this zoo: pass model= to decode it.")
        model = _pretrained(header["model"])
    model.build_for_images()
    container.check_model(header, model)
    coder = _coder_named(header["codec"])
    images = coder.decode(model, payload, header["count"], labels, header["batch_size"])
    container.check_decoded(header, images, labels)
    return images if labels is None else (images, labels)


def ideal_bits(model_or_name, images, labels=None):
    """The model's own code length per image in bits, float64 `[n]`, that the stream
    attains up to its coder's overhead: -log2 p(x) (range coding), the -ELBO in bits
    (bits-back coding, initial bits apart)."""
    model = _pretrained(model_or_name) if isinstance(model_or_name, str) else model_or_name.build_for_images()
    return codec_for(model).ideal_bits(model, _check_images(model, images), labels)
