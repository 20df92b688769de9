"""Range coding of images under an autoregressive model's exact conditionals.

An autoregressive model factorizes p(x) = prod_d p(x_d | x_<d) over the values of an
image in raster-then-colour order (a pixel's colours in the model's order), so a range
coder that codes x_d under p(. | x_<d) for d = 1..D stores the image in -log2 p(x) bits
plus the coder's overhead. The coder is constriction's `RangeEncoder` / `RangeDecoder`
(a queue: values come out in the order they went in) with one
`Categorical(perfect=False)` per value, its probabilities given per value.

Both sides run the model's cached incremental pass (`model.cached_pass`, the very pass
its cached sampler runs) with a `choose` that codes instead of drawing: value d's
logits go through a float32 softmax in the graph, then into numpy, where they become
float64 and reach constriction. The encoder codes the given value and passes it on
(teacher forcing); the decoder decodes it and passes it on. Images are coded in
batches of `batch_size` (the stream's header records it), the last one padded with
zero images that are not coded; within a batch step d codes the d-th value of every
real image, batch after batch.

Determinism. The decoder must compute bit for bit the probabilities the encoder
computed, or it decodes garbage. Both run one traced `tf.function` per (model,
batch_size), the same ops on the same shapes: the coder is a `tf.numpy_function` whose
output, the value, is what the pass feeds forward on both sides; the padding rows are
zeros on both sides; the network computes in float32 (`float32_network`, whatever the
training precision); the probabilities are a float32 softmax cast to float64 in numpy,
and constriction's quantization of them to 24-bit integers is integer arithmetic. TF's
CPU kernels for these ops give the same float32 results for the same graph and shapes
whatever the thread settings (a test decodes in another process with other thread
counts). What is not guaranteed: another machine (another CPU's vector width, another
oneDNN build, a GPU) may round differently. The container's sha256 of the images
(`zoo.codec.container`) turns any such mismatch into a `ValueError`: a stream never
decodes to wrong images silently.

A model whose p(x) is a uniform mixture over T pixel orderings (PixelCNN++'s
`augmentation_mixture`) has no single sequence of conditionals: `ordering_bits_back`
codes it on a stack, with this module's pass (its "augmentation" input).

Overhead: constriction quantizes each value's distribution to 24-bit precision (every
value at least 2^-24, so even a value the float32 softmax gives 0 can be coded, at up to
24 bits) and the range coder adds at most two 32-bit words when it is sealed;
`OVERHEAD_BITS` and `OVERHEAD_BITS_PER_VALUE` bound both.
"""

import math
import weakref

import constriction
import numpy as np
import tensorflow as tf

from zoo.models.base import check_positive_int


NAME = "range"
FAMILY = constriction.stream.model.Categorical(perfect=False)  # probabilities given per value
OVERHEAD_BITS = 64  # sealing the range coder: at most two 32-bit words
# Quantizing a distribution to 24-bit integers costs at most about L 2^-24 / ln 2 bits per
# value in expectation (the mass given to the other L - 1 values); 1e-3 bounds it for
# L <= 256 with a wide margin for the rounding of each probability.
OVERHEAD_BITS_PER_VALUE = 1e-3


def initial_bits(payload):
    """The one-off bits a stream's payload holds: none (a range coder starts empty)."""
    return 0


def supports(model):
    """None if range coding can code `model` (class and config suffice: it need not be
    built), else a one-line reason."""
    if "autoregressive" not in model.capabilities:
        return (f"range coding needs an autoregressive model's exact per-pixel conditionals, and a "
                f"{type(model).__name__} has none.")
    if _orderings(model) > 1:
        return "a mixture over pixel orderings is coded by bits-back coding of the ordering (ordering_bits_back)."
    return None


def _orderings(model):
    """T, the pixel orderings a model's p(x) mixes over (`augmentation_mixture`), else 1."""
    return len(model.augmentations) if getattr(model, "augmentation_mixture", False) else 1


def check_codable(model, batch_size, reason, what="range-code"):
    """Refuses a model a coder does not code (`reason`, its `supports`) or a bad batch
    size, in one line; builds the model."""
    if reason is not None:
        raise ValueError(f"Cannot {what} this model: {reason}")
    check_positive_int(batch_size, "batch_size")
    model.build_for_images()


class _Encoder:
    """Codes the given values of a batch's first `rows` images; returns them."""

    def __init__(self):
        self.coder = constriction.stream.queue.RangeEncoder()
        self.rows = 0

    def __call__(self, probabilities, given):
        k = self.rows
        self.coder.encode(given[:k], FAMILY, probabilities[:k].astype(np.float64))
        return given

    def payload(self):
        return self.coder.get_compressed().astype("<u4").tobytes()


class Popper:
    """Decodes the values of a batch's first `rows` images from `coder` (constriction's
    range decoder, or an ANS stack); the padding rows are zeros, as the encoder's padding
    images. Keeps constriction's error for the pass to report."""

    def __init__(self, coder):
        self.coder, self.rows, self.error = coder, 0, None

    def __call__(self, probabilities, given):
        values = np.zeros_like(given)
        try:
            values[:self.rows] = self.coder.decode(FAMILY, probabilities[:self.rows].astype(np.float64))
        except Exception as error:  # constriction's own, on data no encoder wrote
            self.error = error
            raise
        return values


class _CodingPass:
    """`model.cached_pass` over a batch `[batch_size, H, W, C]`, each value through the
    active coder (`_Encoder` or `Popper`): one traced graph for both directions. One
    pass codes one stream at a time (not thread-safe)."""

    def __init__(self, model, batch_size):
        self.model = weakref.proxy(model)  # `_PASSES` holds passes as long as their model lives
        self.batch_size, self.coder = batch_size, None
        signature = {"images": tf.TensorSpec([batch_size, *model.image_shape], tf.int32)}
        if model.num_classes:
            signature["labels"] = tf.TensorSpec([batch_size], tf.int32)
        if _orderings(model) > 1:
            signature["augmentation"] = tf.TensorSpec([batch_size], tf.int32)
        self.graph = tf.function(self._pass, input_signature=[signature])

    def _pass(self, inputs):
        n = self.batch_size
        flat = tf.reshape(inputs["images"], [n, -1])

        def choose(d, logits):
            probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
            value = tf.numpy_function(self._code, [probabilities, tf.gather(flat, d, axis=1)], tf.int32,
                                      stateful=True)
            return tf.ensure_shape(value, [n])

        ordering = {"augmentation": inputs["augmentation"]} if "augmentation" in inputs else {}
        return self.model.cached_pass(n, choose, inputs.get("labels"), **ordering)

    def _code(self, probabilities, given):
        return self.coder(probabilities, given)

    def run(self, coder, inputs, rows):
        """The pass over one batch with `coder` coding its first `rows` images; `inputs`:
        "images" (and "labels", "augmentation" where the model takes them), padded to
        `batch_size`. Returns int32 `[batch_size, H, W, C]`."""
        self.coder, coder.rows = coder, rows
        try:
            with self.model.float32_network():
                return self.graph({k: tf.constant(v, tf.int32) for k, v in inputs.items()}).numpy()
        except tf.errors.OpError:
            if getattr(coder, "error", None) is not None:
                raise ValueError(f"Corrupted coded payload: {coder.error}") from None
            raise
        finally:
            self.coder = None


_PASSES = weakref.WeakKeyDictionary()  # model -> {batch_size: _CodingPass}


def _coding_pass(model, batch_size):
    passes = _PASSES.setdefault(model, {})
    if batch_size not in passes:
        passes[batch_size] = _CodingPass(model, batch_size)
    return passes[batch_size]


def _batches(count, batch_size):
    return [(start, min(start + batch_size, count)) for start in range(0, count, batch_size)]


def _padded(array, batch_size):
    """`array [k, ...]` padded with zeros to `[batch_size, ...]` (None stays None)."""
    if array is None:
        return None
    pad = np.zeros((batch_size - len(array), *array.shape[1:]), array.dtype)
    return np.concatenate([array, pad])


def encode(model, images, labels=None, batch_size=250):
    """uint8 images `[n, H, W, C]` (and int labels `[n]` for a class-conditional model)
    -> the range coder's bytes (little-endian 32-bit words)."""
    check_codable(model, batch_size, supports(model))
    images = np.asarray(model.check_images(images))
    labels = model.check_labels(labels, len(images))
    labels = None if labels is None else np.asarray(labels)
    coding, encoder = _coding_pass(model, batch_size), _Encoder()
    for start, stop in _batches(len(images), batch_size):
        inputs = {"images": _padded(images[start:stop], batch_size)}
        if labels is not None:
            inputs["labels"] = _padded(labels[start:stop], batch_size)
        coding.run(encoder, inputs, stop - start)
    return encoder.payload()


def decode(model, payload, count, labels=None, batch_size=250):
    """`encode`'s bytes -> uint8 images `[count, H, W, C]`, given the count, the labels
    and the batch size the encoder used. A payload that does not decode (corrupted, or
    coded under other probabilities) is a ValueError or wrong images: the container's
    checksum tells which."""
    check_codable(model, batch_size, supports(model))
    check_positive_int(count, "count")
    labels = model.check_labels(labels, count)
    labels = None if labels is None else np.asarray(labels)
    if len(payload) % 4:
        raise ValueError(f"Expected a range-coded payload of whole 32-bit words, got {len(payload)} bytes.")
    words = np.frombuffer(bytes(payload), "<u4").astype(np.uint32)
    coding, decoder = _coding_pass(model, batch_size), Popper(constriction.stream.queue.RangeDecoder(words))
    images = np.empty((count, *model.image_shape), np.uint8)
    for start, stop in _batches(count, batch_size):
        inputs = {"images": np.zeros((batch_size, *model.image_shape), np.int32)}
        if labels is not None:
            inputs["labels"] = _padded(labels[start:stop], batch_size)
        images[start:stop] = coding.run(decoder, inputs, stop - start)[:stop - start]
    return images


def ideal_bits(model, images, labels=None, chunk=250):
    """-log2 p(x) per image, float64 `[n]`: the model's `log_prob` (its parallel pass), the
    code length range coding attains up to the coder's overhead."""
    images = np.asarray(model.check_images(images))
    labels = model.check_labels(labels, len(images))
    nats = [model.log_prob(images[i:i + chunk], None if labels is None else labels[i:i + chunk]).numpy()
            for i in range(0, len(images), chunk)]
    return -np.concatenate(nats).astype(np.float64) / math.log(2.0)
