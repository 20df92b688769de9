"""Every `paper` preset (and ARM's `lecture`, its paper's settings) is runnable as written.

`python -m reproduce NAME --preset PRESET` with no `--dataset` trains on the dataset the
preset names. Each such preset's model (and each `per_dataset` variant) is built here at
that dataset's image size and levels, as the driver builds it, and `zoo.training.train`
runs one step at batch 2 on random images with the preset's own training settings, so a
preset that cannot build, or whose first step is not finite, fails here rather than
hours into a run on an accelerator.

On two CPU cores the first step of most paper-sized models takes minutes (tracing the
step, not running it; Glow's paper sizes also take over 20 GB of memory): those carry the
`slow` mark, which plain `pytest` skips (setup.cfg); `pytest -m slow
tests/test_paper_presets.py` runs them, on a machine with the memory.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from reproduce.runs import PAPERS, Run, get_paper
from zoo import data, training

PAPER_PRESETS = [(name, preset) for name in PAPERS for preset in get_paper(name).presets
                 if "paper" in preset or (name, preset) == ("arm", "lecture")]

# (paper, preset, dataset) whose one step takes seconds on 2 CPU cores; the rest are slow.
FAST = {("arm", "lecture", "digits"), ("pixelcnn", "paper", "cifar10"),
        ("pixelcnn", "paper", "binarized_mnist"), ("maf", "paper", "mnist")}


def runs():
    """(paper, preset, dataset): the preset's own dataset first, then its overrides."""
    out = []
    for name, preset in PAPER_PRESETS:
        p = get_paper(name).presets[preset]
        for dataset in [p["dataset"], *sorted(set(p.get("per_dataset", {})) - {p["dataset"]})]:
            marks = [] if (name, preset, dataset) in FAST else [pytest.mark.slow]
            out.append(pytest.param(name, preset, dataset, marks=marks,
                                    id=f"{name}-{preset}-{dataset.replace('/', '-')}"))
    return out


def build(name, preset, dataset):
    """The model builder and `train` kwargs the driver would use (the preset's precision)."""
    run = Run(name, preset, dataset, mixed_precision="preset")
    return run.build_model, run.train_config


@pytest.mark.parametrize("name, preset", PAPER_PRESETS)
def test_each_paper_preset_names_a_dataset_its_model_fits(name, preset):
    p = get_paper(name).presets[preset]
    assert "dataset" in p, f"{name} {preset}: name the paper's dataset, as `--dataset` is optional"
    for dataset in {p["dataset"], *p.get("per_dataset", {})}:
        make_model, train = build(name, preset, dataset)
        assert make_model().num_dims == int(np.prod(data.spec(dataset).image_shape))
        assert {"epochs", "batch_size", "optimizer"} <= set(train)
        training.make_optimizer(**train["optimizer"])


def test_glow_paper_preset_follows_openai_glow():
    """train.py's README commands: warm-up over 10 epochs of 50000 images at 512 a step,
    adamax lr 1e-3 with beta2 1 - 1/98, width 512; model.py: plain 1x1 conv W, actnorm
    in the coupling networks."""
    for preset in ("paper", "paper_additive"):
        run = Run("glow", preset, "cifar10")
        assert run.model_config["permutation"] == "conv" and run.model_config["net_actnorm"]
        assert run.model_config["filters"] == 512 and run.train_config["batch_size"] == 512
        optimizer = training.make_optimizer(**run.train_config["optimizer"])
        assert isinstance(optimizer, keras.optimizers.Adamax)
        assert optimizer.beta_2 == pytest.approx(1 - 1 / 98)
        for step, lr in [(0, 1e-3 / 977), (488, 489e-3 / 977), (976, 1e-3), (50000, 1e-3)]:
            optimizer.iterations.assign(step)
            assert float(optimizer.learning_rate) == pytest.approx(lr, rel=1e-5)
    assert Run("glow", "paper", "downsampled_imagenet/64x64").train_config["batch_size"] == 128


@pytest.mark.parametrize("name, preset, dataset", runs())
def test_one_step(name, preset, dataset, tmp_path):
    make_model, train = build(name, preset, dataset)
    # XLA off: compiling for a CPU would only add minutes here (the paper runs keep theirs).
    train = {**{k: v for k, v in train.items() if k not in ("epochs", "batch_size")}, "jit_compile": False}
    spec = data.spec(dataset)
    images = np.random.default_rng(0).integers(0, spec.num_levels, (2, *spec.image_shape), dtype=np.uint8)
    images = tf.data.Dataset.from_tensor_slices(images)
    model, history = training.train(make_model, images, images, num_train=2, run_dir=str(tmp_path),
                                    epochs=1, batch_size=2, verbose=0, **train)
    assert len(history) == 1 and model.optimizer.iterations.numpy() == 1
    assert np.isfinite(history[0]["loss"]) and np.isfinite(history[0]["val_loss"])
