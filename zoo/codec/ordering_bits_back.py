"""Bits-back coding of the pixel ordering for models whose p(x) is a uniform mixture
over T orderings (PixelCNN++'s `augmentation_mixture`: p(x) = (1/T) sum_t p(t(x) | t)).

The ordering t is a discrete latent variable with a uniform prior and the posterior
P(t | x) = p(t(x) | t) / sum_s p(s(x) | s), so BB-ANS (Townsend, Bird and Barber 2019)
codes x in exactly -log2 p(x) bits up to the coder's overhead: per batch of images,

    1. pop  t ~ P(t | x)          per image, from the bits already on the stack
    2. push t(x), value by value under p(. | t(x)_<d, t), through the cached pass
    3. push t uniform over T      log2 T bits an image

so an image adds -log2 p(t(x) | t) + log2 T + log2 P(t | x) = -log2 p(x) bits. Decoding
pops t, pops t(x) in the cached pass's order, undoes t, computes P(t | x) from the
decoded x and pushes t back. An ANS stack (`constriction.stream.stack.AnsCoder`) pops
what was pushed last, so the encoder runs the batches last to first and pushes a batch's
values in reverse, after collecting their probabilities from one teacher-forced cached
pass (the pass `range_coding` codes with; the decoder runs the same graph on the same
batch layout, so its probabilities are bit-identical on the same machine).

The first batch coded finds the stack empty, with no bits to pop (popping from a stack
with fewer bits than the pops draw costs more than they return), so the stream's last
image is a batch of its own, coded first under its likeliest ordering t*: -log2 p(t*(x)
| t*) + log2 T bits, between -log2 p(x) and -log2 p(x) + log2 T, once a stream (the
decoder pushes nothing back for it); the WARMUP images before it are the next batch,
their pops (at most log2 T bits an image) drawing on the bits the last image pushed,
and full batches after that. No initial bits; decoding checks that the stack ends empty.
"""

import constriction
import numpy as np

from zoo.codec.range_coding import FAMILY, Popper, _batches, _coding_pass, _orderings, _padded, check_codable
from zoo.codec.range_coding import ideal_bits  # noqa: F401  (-log2 p(x): the mixture's own log_prob)
from zoo.models.base import check_positive_int
from zoo.models.distribution_augmentation import apply_transforms, inverses

NAME = "ordering_bits_back"
WARMUP = 16  # images coded second, on the bits of the one coded first


def initial_bits(payload):
    """The one-off bits a stream's payload holds: none (the last image is coded alone, without bits back)."""
    return 0


def supports(model):
    """None if this coder codes `model` (an autoregressive mixture over orderings)."""
    if "autoregressive" not in model.capabilities or _orderings(model) < 2:
        return (f"ordering bits-back coding codes autoregressive mixtures over pixel orderings "
                f"(augmentation_mixture), not a {type(model).__name__} without one.")
    return None


def posterior(model, images, labels):
    """P(t | x) float64 `[n, T]` from log p(t(x) | t) of each ordering (the same eager ops on
    the same uint8 batch on both sides)."""
    scores = np.stack([model.augmented_log_prob(images, np.full(len(images), t, np.int32), labels).numpy()
                       for t in range(_orderings(model))], axis=1).astype(np.float64)
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    return scores / scores.sum(axis=1, keepdims=True)


class _Collector:
    """In the teacher-forced pass: keeps each step's probabilities and given values."""

    def __init__(self):
        self.rows, self.steps = 0, []

    def __call__(self, probabilities, given):
        self.steps.append((given[:self.rows].copy(), probabilities[:self.rows].astype(np.float64)))
        return given


def _layout(count, batch_size):
    """The batches `(start, stop)` in the stream's order: of `batch_size` images, then up
    to WARMUP images, then the last image alone (the encoder codes them last to first)."""
    if count == 1:
        return [(0, 1)]
    full = max(count - 1 - min(WARMUP, batch_size), 0)
    return [*_batches(full, batch_size), (full, count - 1), (count - 1, count)]


def _inputs(images, labels, ids, batch_size):
    inputs = {"images": _padded(np.asarray(images, np.int32), batch_size), "augmentation": _padded(ids, batch_size)}
    if labels is not None:
        inputs["labels"] = _padded(labels, batch_size)
    return inputs


def encode(model, images, labels=None, batch_size=250):
    """uint8 images `[n, H, W, C]` (int labels `[n]` for a class-conditional model) -> the
    stack's bytes (little-endian 32-bit words)."""
    check_codable(model, batch_size, supports(model), "bits-back code the ordering of")
    images = np.asarray(model.check_images(images), np.uint8)
    labels = model.check_labels(labels, len(images))
    labels = None if labels is None else np.asarray(labels)
    coding, coder, orderings = _coding_pass(model, batch_size), constriction.stream.stack.AnsCoder(), _orderings(model)
    for start, stop in reversed(_layout(len(images), batch_size)):
        batch, batch_labels = images[start:stop], None if labels is None else labels[start:stop]
        probabilities = posterior(model, batch, batch_labels)
        if stop == len(images):  # the stack is empty: the likeliest ordering
            ids = np.argmax(probabilities, axis=1).astype(np.int32)
        else:
            ids = coder.decode(FAMILY, probabilities).astype(np.int32)  # bits back
        collector = _Collector()
        coding.run(collector, _inputs(np.asarray(apply_transforms(batch, ids, model.augmentations)),
                                      batch_labels, ids, batch_size), stop - start)
        for given, probabilities in reversed(collector.steps):
            coder.encode_reverse(given, FAMILY, probabilities)
        coder.encode_reverse(ids, constriction.stream.model.Uniform(orderings))
    return coder.get_compressed().astype("<u4").tobytes()


def decode(model, payload, count, labels=None, batch_size=250):
    """`encode`'s bytes -> uint8 images `[count, H, W, C]`. A stack that does not end
    empty (corrupted, or coded with other probabilities) is a ValueError."""
    check_codable(model, batch_size, supports(model), "bits-back code the ordering of")
    check_positive_int(count, "count")
    labels = model.check_labels(labels, count)
    labels = None if labels is None else np.asarray(labels)
    if not isinstance(payload, (bytes, bytearray)) or len(payload) % 4:
        raise ValueError("Expected an ordering bits-back payload of whole 32-bit words.")
    try:
        coder = constriction.stream.stack.AnsCoder(np.frombuffer(bytes(payload), "<u4").astype(np.uint32))
    except ValueError as error:
        raise ValueError(f"Corrupted ordering bits-back payload: {error}") from None
    coding, orderings = _coding_pass(model, batch_size), _orderings(model)
    images = np.empty((count, *model.image_shape), np.uint8)
    for start, stop in _layout(count, batch_size):
        batch_labels = None if labels is None else labels[start:stop]
        ids = coder.decode(constriction.stream.model.Uniform(orderings), stop - start).astype(np.int32)
        popper = Popper(coder)
        shape = (stop - start, *model.image_shape)
        decoded = coding.run(popper, _inputs(np.zeros(shape, np.int32), batch_labels, ids, batch_size),
                             stop - start)[:stop - start]
        images[start:stop] = np.asarray(apply_transforms(decoded, ids, inverses(model.augmentations)))
        if stop < count:  # the bits back (the last image took its likeliest ordering)
            coder.encode_reverse(ids, FAMILY, posterior(model, images[start:stop], batch_labels))
    if not coder.is_empty():
        raise ValueError("The ordering bits-back stream does not end empty: it is corrupted, or was coded "
                         "with other weights or on a machine that computes other probabilities.")
    return images
