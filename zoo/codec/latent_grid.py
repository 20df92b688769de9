"""Continuous latents made codable: values on a fine uniform grid, Gaussians over the grid
coded in two stages on an ANS stack.

A latent value is a multiple k * STEP of STEP = 2^-GRID_BITS; grid point k stands for the
interval [(k - 1/2) STEP, (k + 1/2) STEP). A Gaussian N(mean, std^2) gives point k the mass

    P(k) = Phi(((k + 1/2) STEP - mean) / std) - Phi(((k - 1/2) STEP - mean) / std),

about N(k STEP; mean, std^2) STEP when std spans many points, so a push costs
-log2 N(k STEP) - log2 STEP bits and the -log2 STEP of a pop (bits back) cancels it.

constriction's categoricals quantize to 2^-24 and give every symbol at least that mass
(`perfect=False`), so a categorical over n symbols loses about n 2^-24 of its mass. A
Gaussian is therefore coded in two stages, each a short categorical: the cell of
CELL = 2^CELL_BITS points that holds k, among the cells of a window around the mean, then
k's place inside the cell. P(cell) P(point | cell) = P(k), exactly.

The window: cells further than about 5 standard deviations out hold less than 2^-24 of the
mass, yet get that much, so a pop would land there far more often than the Gaussian does
(and a latent drawn 15 standard deviations out costs its image many bits). A Gaussian
that is popped from (q(z | x), local bits-back's noise) so spans WINDOW standard
deviations; one pushed with values drawn elsewhere (the prior, given the posterior's
draws) WIDE_WINDOW, wide enough to code any of them.

Masses are float64 numpy, each edge entering through its tail Phi(-|t|) (no difference of
two numbers near one), so the encoder and the decoder compute the same floats and a mass
far in a tail keeps its relative precision.
"""

import functools

import constriction
import numpy as np
from scipy import special

GRID_BITS = 16
STEP = 2.0**-GRID_BITS  # the latent grid's spacing
CELL_BITS = 8
CELL = 2**CELL_BITS  # grid points per cell
WINDOW = 6.0  # the cells of a Gaussian popped from: within this many standard deviations of its mean
WIDE_WINDOW = 16.0  # the cells of a Gaussian pushed with values drawn elsewhere

CATEGORICAL = constriction.stream.model.Categorical(perfect=False)  # probabilities per symbol


def gaussian_masses(edges, mean, std):
    """N(mean, std^2)'s mass between consecutive `edges` (ascending float64 `[n + 1]`):
    float64 `[n]`. A bucket above the mean has mass tail(lower) - tail(upper), one below
    it tail(upper) - tail(lower), the one holding the mean 1 - both tails, tail(t) =
    Phi(-|t|)."""
    if not std > 0:
        raise ValueError(f"Expected a standard deviation > 0, got {std}.")
    t = (np.asarray(edges, np.float64) - mean) / std
    tail = special.ndtr(-np.abs(t))
    lower, upper = t[:-1], t[1:]
    return np.where(lower > 0, tail[:-1] - tail[1:], np.where(upper <= 0, tail[1:] - tail[:-1],
                                                               1.0 - tail[:-1] - tail[1:]))


def _normalized(masses):
    total = masses.sum()
    return masses / total if total > 0 else np.full_like(masses, 1.0 / len(masses))


@functools.lru_cache(maxsize=4)
def _cells(mean, std, window):
    """The first cell of N(mean, std^2)'s window and P(cell) over it, float64."""
    first = int(np.floor((mean - window * std) / (STEP * CELL) + 0.5 / CELL))
    last = int(np.floor((mean + window * std) / (STEP * CELL) + 0.5 / CELL))
    last = max(last, first + 1)  # constriction's categoricals have two symbols or more
    edges = (np.arange(first, last + 2) * CELL - 0.5) * STEP
    return first, _normalized(gaussian_masses(edges, mean, std))


def _points(mean, std, cell):
    """P(point | cell) for the CELL points of `cell`, float64."""
    edges = (cell * CELL + np.arange(CELL + 1) - 0.5) * STEP
    return _normalized(gaussian_masses(edges, mean, std))


def pop(coder, mean, std, window=WINDOW):
    """Decodes grid point k ~ N(mean, std^2) from the ANS `coder`: an int."""
    mean, std = float(mean), float(std)
    first, cells = _cells(mean, std, window)
    cell = first + int(coder.decode(CATEGORICAL, cells[None])[0])
    return cell * CELL + int(coder.decode(CATEGORICAL, _points(mean, std, cell)[None])[0])


def push(coder, k, mean, std, window=WINDOW):
    """Encodes grid point `k` under N(mean, std^2) onto the ANS `coder` (`pop`'s inverse).
    A point outside the Gaussian's window is a ValueError."""
    mean, std = float(mean), float(std)
    first, cells = _cells(mean, std, window)
    cell, point = divmod(int(k), CELL)
    if not first <= cell < first + len(cells):
        raise ValueError(f"Cannot code latent {k * STEP:.6g}: it lies more than {window:g} standard deviations "
                         f"({std:.3g}) from the mean {mean:.6g}.")
    coder.encode_reverse(np.array([point], np.int32), CATEGORICAL, _points(mean, std, cell)[None])
    coder.encode_reverse(np.array([cell - first], np.int32), CATEGORICAL, cells[None])


class Diagonal:
    """N(mean, diag(std^2)) over D dimensions, float64 `[D]` each, its cells within `window`
    standard deviations; `pop` takes dimensions 0 .. D-1 and `push` returns them in
    reverse, so each undoes the other."""

    def __init__(self, mean, std, window=WINDOW):
        self.mean, self.std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        self.window = window

    def pop(self, coder):
        """int64 grid points `[D]`."""
        return np.array([pop(coder, m, s, self.window) for m, s in zip(self.mean, self.std)], np.int64)

    def push(self, coder, points):
        for i in reversed(range(len(self.mean))):
            push(coder, points[i], self.mean[i], self.std[i], self.window)


class Chain:
    """N(mean, L L^T) over D dimensions (`scale_tril` L lower-triangular), a dimension at a
    time: dimension i given the values v of dimensions < i is

        N(mean_i + L[i, :i] e[:i], L[i, i]^2),   e = L^-1 (v - mean) (forward substitution),

    the exact conditional of the Gaussian, its cells within WIDE_WINDOW standard
    deviations. `pop` takes dimensions 0 .. D-1, `push` gives them back in reverse with
    the same conditionals, so each undoes the other."""

    def __init__(self, mean, scale_tril):
        self.mean = np.asarray(mean, np.float64)
        self.scale = np.asarray(scale_tril, np.float64)
        if self.scale.shape != (len(self.mean), len(self.mean)):
            raise ValueError(f"Expected a scale [{len(self.mean)}, {len(self.mean)}], got {self.scale.shape}.")

    def _centre(self, i, noise):
        return self.mean[i] + self.scale[i, :i] @ noise[:i]

    def pop(self, coder):
        """int64 grid points `[D]`."""
        points, noise = np.empty(len(self.mean), np.int64), np.zeros(len(self.mean))
        for i in range(len(self.mean)):
            centre = self._centre(i, noise)
            points[i] = pop(coder, centre, self.scale[i, i], WIDE_WINDOW)
            noise[i] = (points[i] * STEP - centre) / self.scale[i, i]
        return points

    def conditionals(self, points):
        """Each dimension's conditional mean and std given `points` before it: float64 `[D]` each."""
        noise, centres = np.zeros(len(self.mean)), np.empty(len(self.mean))
        for i in range(len(self.mean)):
            centres[i] = self._centre(i, noise)
            noise[i] = (points[i] * STEP - centres[i]) / self.scale[i, i]
        return centres, np.diagonal(self.scale).copy()

    def push(self, coder, points):
        Diagonal(*self.conditionals(points), WIDE_WINDOW).push(coder, points)
