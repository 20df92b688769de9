"""Likelihood scores (higher = more anomalous) for batches of integer images.

    negative_log_likelihood(model, x) = -log2 p(x) / D                    bits/dim
    likelihood_ratio(model, bg, x)    = -(log2 p(x) - log2 p_bg(x)) / D     bits/dim

The second is Ren et al. 2019's likelihood ratio (their eq. 5, LLR = log p_theta(x) -
log p_theta0(x), negated so that higher means more anomalous), with `bg` the background
model trained on perturbed inputs (`zoo.training.pipeline.perturb`).
"""

import math

import numpy as np

from zoo.ood.images import check_background, check_images

BATCH_SIZE = 256  # images per log_prob call: one traced graph, float32 network


def log2_likelihood(model, images, batch_size=BATCH_SIZE, what="images"):
    """`log2 p(x)` per image, float64 `[n]` bits, scored `batch_size` images at a time
    (`model.log_prob`: float32 network, one `tf.function` for every batch size)."""
    images = check_images(images, model, what)
    nats = [np.asarray(model.log_prob(images[i:i + batch_size]), np.float64)
            for i in range(0, len(images), batch_size)]
    bits = np.concatenate(nats) / math.log(2.0)
    if not np.all(np.isfinite(bits)):
        raise FloatingPointError(f"{int(np.sum(~np.isfinite(bits)))} {what} have a non-finite log-likelihood.")
    return bits


def negative_log_likelihood(model, images, batch_size=BATCH_SIZE):
    """`-log2 p(x) / D` per image: float64 `[n]` bits/dim (D = H W C)."""
    return -log2_likelihood(model, images, batch_size) / model.num_dims


def likelihood_ratio(model, background, images, batch_size=BATCH_SIZE):
    """Ren et al.'s score `-(log2 p(x) - log2 p_bg(x)) / D` per image: float64 `[n]`
    bits/dim, the model's bits/dim less the background model's."""
    check_background(model, background)
    return ratio(negative_log_likelihood(model, images, batch_size),
                 negative_log_likelihood(background, images, batch_size))


def ratio(model_bits_per_dim, background_bits_per_dim):
    """The likelihood ratio's score from both models' per-image bits/dim: float64 `[n]`."""
    return np.asarray(model_bits_per_dim, np.float64) - np.asarray(background_bits_per_dim, np.float64)
