"""Nalisnick et al. 2019b's typicality test ("Detecting Out-of-Distribution Inputs to
Deep Generative Models Using Typicality", their eq. 5): a batch of M inputs is out of
distribution when its mean negative log-likelihood is far from the model's entropy,

    score(x_1..x_M) = | -1/M sum_m log2 p(x_m) / D  -  H |          bits/dim

so a batch that is *more* likely than typical (MNIST under a Fashion-MNIST model) is
flagged as well as a less likely one. H is estimated as the mean -log2 p(x) / D over
in-distribution images the model was not trained on (`entropy_estimate`; the paper
averages over training images, where the model's NLL is optimistically low).
"""

import numpy as np

from zoo.ood.likelihood import BATCH_SIZE, negative_log_likelihood


def entropy_estimate(model, images, batch_size=BATCH_SIZE):
    """The model's entropy in bits/dim, estimated as the mean -log2 p(x) / D over held-out
    in-distribution `images`: a float."""
    return float(np.mean(negative_log_likelihood(model, images, batch_size)))


def typicality_statistic(bits_per_dim, entropy, m):
    """`|mean of each group of m consecutive scores - entropy|`: float64 `[n // m]` (a
    final partial group is dropped). `bits_per_dim`: per-image -log2 p(x) / D."""
    bits_per_dim = np.asarray(bits_per_dim, np.float64).reshape(-1)
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 1 <= m <= len(bits_per_dim):
        raise ValueError(f"The typicality test's batch size M must be an integer in [1, {len(bits_per_dim)}] "
                         f"(the number of images), got {m!r}.")
    groups = bits_per_dim[:len(bits_per_dim) // m * m].reshape(-1, m)
    return np.abs(groups.mean(axis=1) - float(entropy))


def typicality(model, images, entropy, m, batch_size=BATCH_SIZE):
    """The test's score for each batch of `m` consecutive images (n // m batches): float64
    bits/dim; `entropy` from `entropy_estimate`."""
    return typicality_statistic(negative_log_likelihood(model, images, batch_size), entropy, m)
