"""PNG figures: sample grids, learning curves and score histograms (matplotlib, Agg backend)."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from zoo.files import atomic_write  # noqa: E402


def save_png(fig, path):
    """Writes the PNG atomically (no half-written file) and closes the figure."""
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
    finally:
        plt.close(fig)


def image_grid(images, num_levels, columns=None):
    """uint8 `[n, H, W, C]` in [0, num_levels) -> one float `[rows*H, cols*W, C]` in [0, 1]."""
    images = np.asarray(images, np.float32) / (num_levels - 1)
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.ones((rows * (h + 1) - 1, columns * (w + 1) - 1, c), np.float32)
    for i, image in enumerate(images):
        r, k = divmod(i, columns)
        grid[r * (h + 1):r * (h + 1) + h, k * (w + 1):k * (w + 1) + w] = image
    return grid


def sample_grid(images, num_levels, path, title=None):
    """Saves a grid of sampled images as a PNG at `path`."""
    grid = image_grid(images, num_levels)
    fig, ax = plt.subplots(figsize=(5, 5 * grid.shape[0] / grid.shape[1]))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return save_png(fig, path)


def learning_curve(history, path, title=None):
    """Train and validation bits/dim per epoch, from `zoo.training.read_history` rows."""
    epochs = [int(r["epoch"]) + 1 for r in history]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(epochs, [r["loss"] for r in history], label="train")
    if history and "val_loss" in history[0]:
        ax.plot(epochs, [r["val_loss"] for r in history], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("bits/dim")
    ax.legend()
    if title:
        ax.set_title(title, fontsize=9)
    return save_png(fig, path)


def temperature_sweep(rows, num_levels, path, title=None):
    """One row of samples per temperature: `rows` maps temperature -> uint8
    `[n, H, W, C]` images (the same n for every row); rows labelled `T = ...`."""
    temps = list(rows)
    grids = [image_grid(rows[t], num_levels, columns=len(rows[t])) for t in temps]
    height, width = grids[0].shape[:2]
    fig, axes = plt.subplots(len(temps), 1, figsize=(6, 6 * len(temps) * height / width + 0.4),
                             squeeze=False)
    for ax, t, grid in zip(axes[:, 0], temps, grids):
        ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(f"T = {t:g}", fontsize=9)
    if title:
        axes[0, 0].set_title(title, fontsize=9)
    return save_png(fig, path)


def interpolation(images, num_levels, path, title=None):
    """One row: uint8 `[n, H, W, C]` images along a latent path between two images
    (the first and last are the endpoints' reconstructions), labelled by fraction."""
    images = np.asarray(images)
    grid = image_grid(images, num_levels, columns=len(images))
    fig, ax = plt.subplots(figsize=(1.0 * len(images), 1.3))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    width = images.shape[2] + 1
    ax.set_xticks([width * i + images.shape[2] / 2 - 0.5 for i in range(len(images))])
    ax.set_xticklabels([f"{t:.2g}" for t in np.linspace(0, 1, len(images))], fontsize=7)
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return save_png(fig, path)


def score_histograms(panels, path, xlabel="bits/dim", title=None):
    """Side-by-side panels of overlaid histograms (Nalisnick et al. 2019's Figure 1): `panels`
    maps a panel title (a model) -> {image set name: its scores `[n]`}; each panel's sets
    share bins and are drawn as densities."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (name, sets) in zip(axes[0], panels.items()):
        values = [np.asarray(v, np.float64) for v in sets.values()]
        bins = np.linspace(min(v.min() for v in values), max(v.max() for v in values), 60)
        for label, v in zip(sets, values):
            ax.hist(v, bins=bins, density=True, alpha=0.5, label=f"{label} ({v.mean():.3f})")
        ax.set_xlabel(xlabel)
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7, title="mean", title_fontsize=7)
    axes[0, 0].set_ylabel("density")
    if title:
        fig.suptitle(title, fontsize=9)
    return save_png(fig, path)
