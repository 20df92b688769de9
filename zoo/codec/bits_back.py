"""Bits-back coding with ANS for the zoo's VAEs (BB-ANS: Townsend, Bird and Barber,
"Practical Lossless Compression with Latent Variables using Bits Back Coding", ICLR 2019).

One ANS stack (`constriction.stream.stack.AnsCoder`) carries every image of a stream.
The latent is coded in the prior's noise u (z = `VAE.latent_from_noise(u)`, u ~ N(0, I);
u = z for the normal prior), cut into buckets of equal prior mass per dimension
(`zoo.codec.latent_buckets`). Encoding image x:

    1. pop  u ~ Q(u | x)          the posterior's bucket masses,     gains -log2 Q(u | x)
                                  dimension by dimension
    2. push x under p(x | z(c(u)))  one categorical per pixel value, costs -log2 p(x | z)
                                  the decoder at the buckets' centres c(u)
    3. push u under P(u)          uniform over equal-prior-mass      costs latent_dim *
                                  buckets                            LATENT_BITS

so an image adds -log2 p(x | z) - log2 P(u) + log2 Q(u | x) bits: in expectation over
the popped u the discretized -ELBO(x) of Q, in bits. Step 1 draws u from the bits the
images before pushed (the "bits back"); decoding runs the inverse ops in reverse order,
images last to first (pop u under the prior, pop x, push u under Q(u | x) recomputed from
the decoded x, which returns the encoder's popped bits), then reverses the images back.

Q(u | x) (`VAE.noise_posterior`): for a Gaussian posterior and the normal prior, q(z | x)
itself; with a posterior flow or a flow prior, q carried into u and linearized at the
posterior mean, a Gaussian with a full covariance (local bits-back coding: Ho, Lohn and
Abbeel, "Compression with Flows via Local Bits-Back Coding", NeurIPS 2019), coded one
dimension at a time given the buckets before it (`latent_buckets.GaussianChain`). The
rate is then the linearized posterior's -ELBO; the model's own -ELBO (`ideal_bits`) is
what the coder's overhead is measured against.

Initial bits: the first image's pop needs bits on the stack, so every stream's stack
starts as the same INITIAL_WORDS pseudo-random 32-bit words (a seeded PCG64): a one-off
32 * INITIAL_WORDS = 1024 bits per stream, apart from the per-image rate. A first pop
larger than that (a latent of more than about 80 dimensions) still decodes exactly
(the stack pops past its end invertibly); the shortfall is then paid once, by the
first image. Decoding checks that the stack ends as exactly those words.

Precision: 2^LATENT_BITS = 4096 buckets per latent dimension; constriction's
categoricals and uniform quantize to 2^-24 (`perfect=False` on both sides), giving every
bucket and level at least that mass.

Bit-identical probabilities: each image goes through the same traced graphs with the
same batch layout on both sides (the posterior on `[1, H, W, C]`, the prior flow and
decoder on `[1, latent_dim]`, float32 network; the decoder's pass covers all pixels at
once), and the bucket masses are float64 numpy. The same machine gives the same numbers;
elsewhere a mismatch decodes wrong images, which the stream's checksum (the container)
and the final stack check refuse.
"""

import constriction
import numpy as np
import tensorflow as tf

from zoo.codec.latent_buckets import CENTRES, NUM_BUCKETS, GaussianChain
from zoo.models.base import check_positive_int
from zoo.models.vae import VAE

NAME = "bits_back"
INITIAL_WORDS = 32  # 32-bit words of seed data each stream's stack starts from
INITIAL_SEED = 0x5EED_B175  # seeds those words

CATEGORICAL = constriction.stream.model.Categorical(perfect=False)  # probabilities per symbol
PRIOR = constriction.stream.model.Uniform(NUM_BUCKETS)  # equal-mass buckets: exactly LATENT_BITS each


def supports(model):
    """None if bits-back coding can code `model`, else a one-line reason."""
    if not isinstance(model, VAE):
        return f"bits-back coding codes VAEs (zoo.models.VAE), not a {type(model).__name__}."
    if model.likelihood == "logistic_mixture" and model.image_shape[-1] > 1:
        return (f"the logistic-mixture decoder over {model.image_shape[-1]} colours makes a pixel's colours "
                "depend on each other; bits-back coding here codes values independent given z.")
    return None


def initial_words():
    """The INITIAL_WORDS uint32 words every stream's stack starts from (the top one nonzero,
    as an ANS stack never ends in a zero word)."""
    words = (np.random.PCG64(INITIAL_SEED).random_raw(INITIAL_WORDS) >> np.uint64(32)).astype(np.uint32)
    words[-1] |= np.uint32(1)
    return words


class _Passes:
    """The model's two network passes on one image, traced once (the same graphs for the
    encoder and the decoder): `posterior(image)` -> Q(u | x)'s mean float64 `[latent_dim]`
    and lower-triangular scale `[latent_dim, latent_dim]`; `pixel_probs(buckets)` ->
    float64 `[H * W * C, levels]` at the latent of the buckets' centres."""

    def __init__(self, model):
        self.num_levels = model.num_levels
        self._posterior = tf.function(model.noise_posterior).get_concrete_function(
            tf.TensorSpec([1, *model.image_shape], tf.int32))
        self._pixels = tf.function(lambda u: model.pixel_log_probs(model.latent_from_noise(u))).get_concrete_function(
            tf.TensorSpec([1, model.latent_dim], tf.float32))

    def posterior(self, image):
        mean, scale = self._posterior(tf.constant(image[None], tf.int32))
        return GaussianChain(mean.numpy()[0], scale.numpy()[0])

    def pixel_probs(self, buckets):
        u = tf.constant(CENTRES[buckets][None], tf.float32)
        return np.exp(self._pixels(u).numpy().reshape(-1, self.num_levels).astype(np.float64))


def _check_model(model):
    reason = supports(model)
    if reason is not None:
        raise ValueError(f"Cannot bits-back code this model: {reason}")
    model.build_for_images()


def encode(model, images, labels=None, batch_size=1):
    """uint8 images `[n, H, W, C]` -> the stack's bytes (little-endian 32-bit words), the
    initial words included. Images are chained one by one: each pops its latent from the
    bits the ones before it pushed, and the decoder knows x only after popping it, so
    q(z | x) is computed per image on both sides whatever `batch_size` (accepted for the
    codecs' common interface)."""
    check_positive_int(batch_size, "batch_size")
    _check_model(model)
    images = np.asarray(model.check_images(images))
    model.check_labels(labels, len(images))
    passes = _Passes(model)
    coder = constriction.stream.stack.AnsCoder(initial_words())
    buckets = np.empty(model.latent_dim, np.int32)
    for image in images:
        chain = passes.posterior(image)
        for k in range(model.latent_dim):  # bits back, a dimension at a time
            buckets[k] = coder.decode(CATEGORICAL, chain.masses()[None])[0]
            chain.take(buckets[k])
        coder.encode_reverse(image.reshape(-1).astype(np.int32), CATEGORICAL, passes.pixel_probs(buckets))
        coder.encode_reverse(buckets, PRIOR)
    return coder.get_compressed().astype("<u4").tobytes()


def decode(model, payload, count, labels=None, batch_size=1):
    """`encode`'s bytes -> uint8 images `[count, H, W, C]`. A stream that does not end in
    the initial words (corrupted, or coded with other weights) is a ValueError."""
    check_positive_int(batch_size, "batch_size")
    check_positive_int(count, "count")
    _check_model(model)
    model.check_labels(labels, int(count))
    if not isinstance(payload, (bytes, bytearray)) or len(payload) % 4 or len(payload) < 4 * INITIAL_WORDS:
        raise ValueError(f"Expected a bits-back payload of whole 32-bit words, at least {INITIAL_WORDS} of them; "
                         f"got {len(payload) if isinstance(payload, (bytes, bytearray)) else type(payload).__name__} "
                         "bytes.")
    words = np.frombuffer(bytes(payload), "<u4").astype(np.uint32)
    try:
        coder = constriction.stream.stack.AnsCoder(words)
    except ValueError as error:
        raise ValueError(f"Corrupted bits-back payload: {error}") from None
    passes = _Passes(model)
    images = np.empty((int(count), *model.image_shape), np.uint8)
    for i in reversed(range(int(count))):
        buckets = coder.decode(PRIOR, model.latent_dim)
        images[i] = coder.decode(CATEGORICAL, passes.pixel_probs(buckets)).reshape(model.image_shape)
        chain, masses = passes.posterior(images[i]), np.empty((model.latent_dim, NUM_BUCKETS))
        for k, bucket in enumerate(buckets):
            masses[k] = chain.masses()
            chain.take(bucket)
        coder.encode_reverse(buckets, CATEGORICAL, masses)  # the bits back, returned
    if not np.array_equal(coder.get_compressed(), initial_words()):
        raise ValueError("The bits-back stream does not end in its initial words: it is corrupted, or was "
                         "coded with other weights or on a machine that computes other probabilities.")
    return images


def ideal_bits(model, images, labels=None, chunk=256):
    """-ELBO(x) in bits per image, float64 `[n]`: the model's own `elbo` (one posterior
    draw per image, picked by a hash of the image, as the hub's -ELBO records), an
    unbiased estimate of the expected code length per image that bits-back coding
    attains before discretization and the one-off initial words."""
    _check_model(model)
    images = np.asarray(model.check_images(images))
    model.check_labels(labels, len(images))
    nats = [model.elbo(images[i:i + chunk]).numpy() for i in range(0, len(images), chunk)]
    return -np.concatenate(nats).astype(np.float64) / np.log(2.0)
