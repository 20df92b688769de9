"""A continuous latent made codable: buckets of equal mass under the standard normal
prior (the max-entropy discretization of BB-ANS, Townsend, Bird and Barber, ICLR 2019).

Each latent dimension is cut into N = 2^LATENT_BITS buckets at the prior's quantiles,

    edge_k = Phi^-1(k / N),  k = 0 .. N   (edge_0 = -inf, edge_N = +inf)

so every bucket has prior mass exactly 1 / N: pushing a bucket under the prior costs
LATENT_BITS bits. A bucket stands for its centre Phi^-1((k + 1/2) / N) (the prior's
median inside it), where the decoder is evaluated. A Gaussian posterior N(mean, std^2)
gives bucket k the mass

    Q(k) = Phi((edge_{k+1} - mean) / std) - Phi((edge_k - mean) / std),

the exact probability that a continuous draw falls in it. With buckets much narrower
than the posterior (about 6e-4 wide near 0 for N = 4096, against posterior scales of
0.05 and more in trained VAEs), -log Q(k) + log(1 / N) is log q(z) - log p(z) at the
bucket to first order, and bits-back coding costs the ELBO.

A Gaussian with a full covariance (a flow posterior linearized, `VAE.noise_posterior`)
is coded one dimension at a time (`GaussianChain`): dimension i given the buckets taken
for the dimensions before it is a one-dimensional Gaussian, cut into the same buckets.

Everything is float64 numpy: the encoder and the decoder compute the same masses.
"""

import numpy as np
from scipy import special

LATENT_BITS = 12
NUM_BUCKETS = 2**LATENT_BITS

EDGES = special.ndtri(np.arange(NUM_BUCKETS + 1) / NUM_BUCKETS)  # [N + 1], -inf .. +inf
CENTRES = special.ndtri((np.arange(NUM_BUCKETS) + 0.5) / NUM_BUCKETS)  # [N]


def posterior_masses(mean, std):
    """Q(bucket k | x) for every bucket: float64 `[..., NUM_BUCKETS]` from a Gaussian's
    `mean` and `std` `[...]` (std > 0), each row summing to one.

    Each edge's standardized distance t = (edge - mean) / std enters through its tail
    Phi(-|t|) only (one CDF evaluation per edge): a bucket above the mean has mass
    tail(lower) - tail(upper), one below it tail(upper) - tail(lower), the bucket that
    holds the mean 1 - tail(lower) - tail(upper). A bucket far out in either tail so
    keeps its relative precision, where Phi(b) - Phi(a) would subtract two numbers
    close to 1."""
    mean = np.asarray(mean, np.float64)[..., None]
    std = np.asarray(std, np.float64)[..., None]
    if not np.all(std > 0):
        raise ValueError(f"Expected posterior standard deviations > 0, got a minimum of {std.min()}.")
    t = (EDGES - mean) / std  # [..., N + 1]
    tail = special.ndtr(-np.abs(t))
    lower, upper = t[..., :-1], t[..., 1:]
    tail_lower, tail_upper = tail[..., :-1], tail[..., 1:]
    return np.where(lower > 0, tail_lower - tail_upper,
                    np.where(upper <= 0, tail_upper - tail_lower, 1.0 - tail_lower - tail_upper))


class GaussianChain:
    """N(mean, L L^T) over the latent's D dimensions, taken one at a time: given the
    centres c of the buckets taken for dimensions < i, dimension i is

        N(mean_i + L[i, :i] e[:i], L[i, i]^2),   e = L^-1 (c - mean) (forward substitution),

    the exact conditional of the Gaussian at those centres. `masses()` gives the next
    dimension's bucket masses `[NUM_BUCKETS]`, `take(bucket)` fixes it. A diagonal L gives
    each dimension its own Gaussian, as `posterior_masses(mean, diag(L))`. The encoder
    and the decoder run the same steps, so they compute the same floats."""

    def __init__(self, mean, scale_tril):
        self.mean = np.asarray(mean, np.float64)
        self.scale = np.asarray(scale_tril, np.float64)
        if self.scale.shape != (len(self.mean), len(self.mean)):
            raise ValueError(f"Expected a scale [{len(self.mean)}, {len(self.mean)}], got {self.scale.shape}.")
        self.noise = np.zeros(len(self.mean))
        self.taken = 0
        self._centre = None

    def masses(self):
        """Q(bucket | the buckets taken): float64 `[NUM_BUCKETS]` for the next dimension."""
        i = self.taken
        self._centre = self.mean[i] + self.scale[i, :i] @ self.noise[:i]
        return posterior_masses(self._centre, self.scale[i, i])

    def take(self, bucket):
        """Fixes the next dimension to `bucket` (after `masses()`)."""
        i = self.taken
        self.noise[i] = (CENTRES[bucket] - self._centre) / self.scale[i, i]
        self.taken += 1
