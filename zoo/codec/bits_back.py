"""Bits-back coding with ANS for the zoo's VAEs (BB-ANS: Townsend, Bird and Barber,
"Practical Lossless Compression with Latent Variables using Bits Back Coding", ICLR 2019),
with local bits-back coding for the posterior flows and the flow priors (Ho, Lohn and
Abbeel, "Compression with Flows via Local Bits-Back Coding", NeurIPS 2019).

One ANS stack (`constriction.stream.stack.AnsCoder`) carries every image of a stream. The
latent is coded as the prior's noise u (z = `VAE.prior_flow(u)`, u ~ N(0, I); u = z for
the normal prior), on the grid of `zoo.codec.latent_grid` (spacing STEP = 2^-16). Image x
costs

    pop  u ~ q(u | x)        gains  -log2 q(u | x) - D log2 STEP   (bits back)
    push x under p(x | z(u))  costs  -log2 p(x | z)   (one categorical per pixel value)
    push u under N(0, I)      costs  -log2 N(u; 0, I) - D log2 STEP

so -log2 p(x | z) - log2 p(z) + log2 q(z | x) (a change of variables changes both
densities alike): in expectation over the popped u, the -ELBO(x) in bits. The images are
chained with a lag of one: image i's u is pushed after image i+1's is popped, so that pop
reads image i's pixel codes first (near-random bits) rather than the quantiles of the u
just pushed (popping right after pushing maps one quantile onto the other, and through a
flow that chain wanders into the tails). Decoding runs the inverse steps in reverse
order, images last to first.

q(u | x) is q(z0 | x) = N(m, diag(s^2)) carried through f = (the prior flow's inverse) o
(the posterior flows). Without flows f is the identity and q is coded dimension by
dimension (`latent_grid.Diagonal`); with flows it is coded by local bits-back, with a
small Gaussian of std LOCAL_STD around the flow:

    pop u:   pop  w ~ N(m, diag(s^2))
             pop  u ~ N(f(w), LOCAL_STD^2 I)
             push w under N(f^-1(u), LOCAL_STD^2 A A^T), A = d f^-1 / du at u  (`latent_grid.Chain`)
    push u:  the inverse: pop w, push u, push w,

gaining -log2 q(u | x) - D log2 STEP up to terms of order LOCAL_STD^2 (the flow's
curvature across LOCAL_STD). f^-1, which has no closed form for planar and Sylvester
flows, is the prior flow's forward (exact) followed by NEWTON_STEPS damped Newton steps
on the posterior flows from the posterior mean: the encoder and the decoder compute the
same steps, so an inexact inverse costs bits, never correctness (a far-off one makes the
Gaussian miss w, a ValueError).

Initial bits: the first two images' pops (the lag) need bits on the stack (about 16 +
log2(4.13 s) bits a dimension of std s, and a flow's pop around it), so every stream's
stack starts as the same pseudo-random 32-bit words (a seeded PCG64),
INITIAL_WORDS_PER_DIMENSION words a latent dimension. The pops read only the top ones;
the payload leaves out the bottom ones the stack ends on unchanged (the decoder has them)
and stores how many it keeps, a varint before the words: those kept are the stream's
one-off `initial_bits`, apart from the per-image rate. A first pop larger than all the
initial words still decodes exactly (the stack pops past its end invertibly), but draws a
latent far in its posterior's tail, which costs that image many bits or leaves the
prior's window (a ValueError). Decoding checks that the stack ends as exactly the initial
words.

Bit-identical probabilities: each image goes through the same traced graphs with the
same batch layout on both sides (`[1, H, W, C]` images, `[1, latent_dim]` latents, float32
network), every mass is float64 numpy, and the flows' inverses and Jacobians are computed
from values both sides hold (the grid points). The same machine gives the same numbers;
elsewhere a mismatch decodes wrong images, which the stream's checksum (the container)
and the final stack check refuse.
"""

import constriction
import numpy as np
import tensorflow as tf

from zoo.codec import container
from zoo.codec.latent_grid import CATEGORICAL, STEP, WIDE_WINDOW, Chain, Diagonal
from zoo.models.base import check_positive_int
from zoo.models.vae import VAE

NAME = "bits_back"
INITIAL_WORDS_PER_DIMENSION = 2  # 32-bit words of seed data a stream's stack starts from, a latent dimension
INITIAL_SEED = 0x5EED_B175  # seeds those words
LOCAL_STD = 2.0**-11  # local bits-back's noise around a flow: 32 grid steps
NEWTON_STEPS = 8  # inverting the posterior flows from the posterior mean
NEWTON_DAMPING = tf.constant([1.0, 0.5, 0.25, 0.125])  # each Newton step keeps the one that fits best
ELBO_DRAWS = 64  # posterior draws per image in `ideal_bits`' expected -ELBO


def supports(model):
    """None if bits-back coding can code `model`, else a one-line reason."""
    if not isinstance(model, VAE):
        return f"bits-back coding codes VAEs (zoo.models.VAE), not a {type(model).__name__}."
    if model.likelihood == "logistic_mixture" and model.image_shape[-1] > 1:
        return (f"the logistic-mixture decoder over {model.image_shape[-1]} colours makes a pixel's colours "
                "depend on each other; bits-back coding here codes values independent given z.")
    return None


def initial_words(model):
    """The uint32 words every stream of `model` starts from (the top one nonzero, as an ANS
    stack never ends in a zero word)."""
    count = max(1, round(INITIAL_WORDS_PER_DIMENSION * model.latent_dim))
    words = (np.random.PCG64(INITIAL_SEED).random_raw(count) >> np.uint64(32)).astype(np.uint32)
    words[-1] |= np.uint32(1)
    return words


def initial_bits(payload):
    """The one-off bits a stream's `payload` holds: its initial words that the first pops
    read (those it keeps)."""
    return 32 * container.read_varint(payload)[0]


class FlowDensity:
    """v = f(w), w ~ `base` (a `latent_grid.Diagonal`), coded by local bits-back.
    `forward(w)` -> f(w) and `inverse(v)` -> (f^-1(v), A = d f^-1 / dv), float64 `[D]` and
    `[D, D]`; `pop` and `push` undo each other."""

    def __init__(self, base, forward, inverse):
        self.base, self.forward, self.inverse = base, forward, inverse

    def _noise_given(self, points):
        w, a = self.inverse(points * STEP)
        return Chain(w, np.linalg.cholesky(LOCAL_STD**2 * (a @ a.T)))

    def _around(self, noise_points):
        return Diagonal(self.forward(noise_points * STEP), np.full(len(noise_points), LOCAL_STD))

    def push(self, coder, points):
        noise_points = self._noise_given(points).pop(coder)
        self._around(noise_points).push(coder, points)
        self.base.push(coder, noise_points)

    def pop(self, coder):
        """int64 grid points `[D]`."""
        noise_points = self.base.pop(coder)
        points = self._around(noise_points).pop(coder)
        self._noise_given(points).push(coder, noise_points)
        return points


def _with_jacobian(f, x):
    """f(x) `[1, D]` and its Jacobian `[D, D]` (row i: d f_i / dx) at `x [1, D]`,
    forward-mode over the D tangents at once (f takes a batch of D rows)."""
    d = x.shape[-1]
    rows = tf.tile(x, [d, 1])
    with tf.autodiff.ForwardAccumulator(rows, tf.eye(d)) as accumulator:
        y = f(rows)
    return y[:1], tf.transpose(accumulator.jvp(y))


def _newton_inverse(flows, z, start):
    """w `[1, D]` with flows(w) = z, by NEWTON_STEPS damped Newton steps from `start`: each
    takes the full step or a shorter one, whichever lands closest to z. `flows` maps draws
    `[S, 1, D]` of one image."""
    flow = lambda w: flows(w[:, None])[:, 0]  # noqa: E731  [S, D] -> [S, D]
    w = start
    for _ in range(NEWTON_STEPS):
        value, jacobian = _with_jacobian(flow, w)
        tries = w - NEWTON_DAMPING[:, None] * tf.transpose(tf.linalg.solve(jacobian, tf.transpose(value - z)))
        w = tries[None, tf.argmin(tf.reduce_sum(tf.square(flow(tries) - z), axis=-1))]
    return w


class _Passes:
    """The model's network passes on one image or latent, each traced once (the same graphs
    for the encoder and the decoder), and the latent densities they define over the prior's
    noise u (z = `VAE.prior_flow(u)`)."""

    def __init__(self, model):
        self.num_levels = model.num_levels
        self.has_flow = model.flow is not None or bool(model.prior_nets)
        image = tf.TensorSpec([1, *model.image_shape], tf.int32)
        latent = tf.TensorSpec([1, model.latent_dim], tf.float32)

        def posterior(images):
            mean, log_var = model.posterior_parameters(images)
            return mean, tf.exp(0.5 * log_var)

        def noise(flows):  # one image's map from draws z0 [S, d] of q(z0 | x) to u [S, d]: its posterior
            return lambda z0: model.prior_flow_inverse(flows(z0[:, None])[:, 0])  # flows, the prior's inverse

        def noise_inverse(images, u, mean):  # the prior flow exactly, then the posterior flows' inverse
            z, flows = model.prior_flow(u), model.posterior_flows(images)
            w = z if model.flow is None else _newton_inverse(flows, z, mean)
            return w, _with_jacobian(noise(flows), w)[1]

        self._posterior = tf.function(posterior).get_concrete_function(image)
        self._noise = tf.function(lambda images, z0: noise(model.posterior_flows(images))(z0)).get_concrete_function(
            image, latent)
        self._noise_inverse = tf.function(noise_inverse).get_concrete_function(image, latent, latent)
        self._pixels = tf.function(lambda u: model.pixel_log_probs(model.prior_flow(u))).get_concrete_function(latent)
        self.prior = Diagonal(np.zeros(model.latent_dim), np.ones(model.latent_dim), WIDE_WINDOW)

    @staticmethod
    def _call(function, *args):
        tensors = [tf.constant(a[None], tf.int32 if a.dtype.kind in "iu" else tf.float32) for a in args]
        out = function(*tensors)
        return [t.numpy().astype(np.float64) for t in (out if isinstance(out, (tuple, list)) else [out])]

    def posterior(self, image):
        """q(u | x) for one uint8 image `[H, W, C]`: q(z0 | x) itself (a Diagonal) without
        flows, else a FlowDensity over it."""
        mean, std = (t[0] for t in self._call(self._posterior, image))
        base = Diagonal(mean, std)
        if not self.has_flow:
            return base

        def inverse(u):
            w, jacobian = self._call(self._noise_inverse, image, u, mean)
            return w[0], np.linalg.inv(jacobian)
        return FlowDensity(base, lambda z0: self._call(self._noise, image, z0)[0][0], inverse)

    def pixel_probs(self, points):
        """float64 `[H * W * C, levels]` at the latent of noise grid `points [D]`."""
        log_p = self._call(self._pixels, points * STEP)[0]
        return np.exp(log_p.reshape(-1, self.num_levels))


def _check_model(model):
    reason = supports(model)
    if reason is not None:
        raise ValueError(f"Cannot bits-back code this model: {reason}")
    model.build_for_images()


def encode(model, images, labels=None, batch_size=1):
    """uint8 images `[n, H, W, C]` -> the payload: the stack's words (little-endian 32-bit)
    less the initial ones no pop read, after their count. Images are chained one by one:
    each pops its latent from the bits the ones before it pushed, and the decoder knows x
    only after popping it, so q(z | x) is computed per image on both sides whatever
    `batch_size` (accepted for the codecs' common interface)."""
    check_positive_int(batch_size, "batch_size")
    _check_model(model)
    images = np.asarray(model.check_images(images))
    model.check_labels(labels, len(images))
    passes = _Passes(model)
    coder = constriction.stream.stack.AnsCoder(initial_words(model))
    previous = None
    for image in images:
        points = passes.posterior(image).pop(coder)  # the bits back, the previous image's pixels first
        if previous is not None:
            passes.prior.push(coder, previous)
        coder.encode_reverse(image.reshape(-1).astype(np.int32), CATEGORICAL, passes.pixel_probs(points))
        previous = points
    passes.prior.push(coder, previous)
    return _without_unread_words(model, coder.get_compressed())


def _without_unread_words(model, words):
    """The payload: the number of initial words kept, then the stack's words less the
    bottom initial ones that no pop read (the stack still starts with them)."""
    initial = initial_words(model)
    size = min(len(words), len(initial))
    unread = int(np.argmin(np.append(words[:size] == initial[:size], False)))
    return container.varint(len(initial) - unread) + words[unread:].astype("<u4").tobytes()


def _with_unread_words(model, payload):
    """`_without_unread_words` undone: the stack's uint32 words."""
    initial = initial_words(model)
    kept, at = container.read_varint(payload)
    if kept > len(initial) or (len(payload) - at) % 4:
        raise ValueError(f"Corrupted bits-back payload: expected at most {len(initial)} kept initial words and "
                         f"whole 32-bit words after them, got {kept} and {len(payload) - at} bytes.")
    words = np.frombuffer(payload[at:], "<u4").astype(np.uint32)
    return np.concatenate([initial[:len(initial) - kept], words])


def decode(model, payload, count, labels=None, batch_size=1):
    """`encode`'s bytes -> uint8 images `[count, H, W, C]`. A stream that does not decode
    back to the initial words (corrupted, or coded with other weights) is a ValueError."""
    check_positive_int(batch_size, "batch_size")
    check_positive_int(count, "count")
    _check_model(model)
    model.check_labels(labels, int(count))
    if not isinstance(payload, (bytes, bytearray)):
        raise ValueError(f"Expected a bits-back payload's bytes, got {type(payload).__name__}.")
    words = _with_unread_words(model, bytes(payload))
    try:
        coder = constriction.stream.stack.AnsCoder(words)
    except ValueError as error:
        raise ValueError(f"Corrupted bits-back payload: {error}") from None
    try:  # a stream that is not the encoder's pushes a latent out of its window, or ends in other words
        images = _unwind(model, coder, int(count))
        matches = np.array_equal(coder.get_compressed(), initial_words(model))
    except ValueError:
        matches = False
    if not matches:
        raise ValueError("The bits-back stream does not decode back to its initial words: it is corrupted, holds "
                         "another count of images, or was coded with other weights or on a machine that computes "
                         "other probabilities.")
    return images


def _unwind(model, coder, count):
    """`encode`'s steps undone, images last to first: uint8 `[count, H, W, C]`."""
    passes = _Passes(model)
    images = np.empty((count, *model.image_shape), np.uint8)
    points = passes.prior.pop(coder)
    for i in reversed(range(count)):
        images[i] = coder.decode(CATEGORICAL, passes.pixel_probs(points)).reshape(model.image_shape)
        previous = passes.prior.pop(coder) if i else None
        passes.posterior(images[i]).push(coder, points)  # the bits back, returned
        points = previous
    return images


def ideal_bits(model, images, labels=None, chunk=256):
    """The expected -ELBO(x) in bits per image, float64 `[n]`, the code length bits-back
    coding attains before discretization and the one-off initial words: the model's own
    `elbo` averaged over ELBO_DRAWS posterior draws (the stream codes one draw per image,
    whose -ELBO scatters by several bits around it; one draw as the reference would add
    that scatter to the overhead measured)."""
    _check_model(model)
    images = np.asarray(model.check_images(images))
    model.check_labels(labels, len(images))
    nats = [model.elbo(images[i:i + chunk], num_samples=ELBO_DRAWS).numpy() for i in range(0, len(images), chunk)]
    return -np.concatenate(nats).astype(np.float64) / np.log(2.0)
