"""A paper and one run of it.

`Paper` is what a paper file (`reproduce/PAPER.py`) declares: its model class, default
dataset, presets, published numbers, variant flags and sample temperatures. `Run` is one
training run of a paper: a preset on a dataset with the variant flags given; it owns the
model's configuration and every name the run writes under (record, work folder, figures,
pretrained name). The command line, the benchmarks, `verify` and the tests build models
through it.

This module imports no TensorFlow at import time: `--help` and `--list` stay fast.
"""

import dataclasses
import functools
import importlib
from pathlib import Path
from typing import Callable

from reproduce.cli_errors import fail

PAPERS = ("arm", "pixelcnn", "realnvp", "pixelcnnpp", "glow", "maf", "vae_flows")


def by_dataset(numbers):
    """`Paper.published` for a paper whose published number depends on the dataset only:
    `numbers` maps a dataset to its number (`{"nats": ...}` or `{"bits_per_dim": ...}`,
    with `source` and optionally `split`)."""
    return lambda dataset, model: numbers.get(dataset)


@dataclasses.dataclass(frozen=True)
class Paper:
    """What a paper file declares.

    `name`: the command and record folder ("glow"). `model`: the model class a preset uses
    unless its "model" names a "class". `dataset`: the dataset of a preset that names none.
    `presets`: name -> {"model", "train", optionally "dataset", "name" (the pretrained
    prefix of a variant preset), "per_dataset" (dataset -> {"model", "train"} overrides)}.
    `published(dataset, model_config)`: the published number for that run, or None.
    `flags`: model arguments the command line sets (flag -> argparse keywords); the values
    given or set by the preset name the run's variant. `temperatures`: one row of samples
    each in the run's temperature figure (empty: none). `variant_name(model_config)`: the
    pretrained prefix of a flag variant (vae_flows: vae-POSTERIOR), else None.
    """

    name: str
    model: str
    dataset: str
    presets: dict
    published: Callable[[str, dict], dict | None]
    flags: dict = dataclasses.field(default_factory=dict)
    temperatures: tuple = ()
    variant_name: Callable[[dict], str] | None = None


def slug(dataset):
    """A dataset name as a file-name part: "downsampled_imagenet/32x32" -> "downsampled_imagenet-32x32"."""
    return dataset.replace("/", "-")


def run_name(preset, dataset, variant=None):
    """PRESET-DATASET, or PRESET-VARIANT-DATASET for a variant: a run's name within its
    paper, which its record, work folder and figures carry."""
    return "-".join(filter(None, [preset, variant, slug(dataset)]))


def record_path(out, paper, preset, dataset, variant=None):
    """OUT/runs/PAPER/PRESET[-VARIANT]-DATASET.json: where a run's record is written."""
    return Path(out) / "runs" / paper / f"{run_name(preset, dataset, variant)}.json"


def get_paper(name):
    """The `Paper` of `reproduce/NAME.py`; a `CommandLineError` for an unknown name."""
    if name not in PAPERS:
        fail(f"unknown paper {name!r}; expected one of {list(PAPERS)}.")
    return importlib.import_module(f"reproduce.{name}").PAPER


def preset_of(paper, name):
    """The preset `name` as `paper` (a `Paper`) writes it; a `ValueError` naming the
    paper's presets for an unknown name."""
    if name not in paper.presets:
        raise ValueError(f"unknown preset {name!r} for {paper.name}; expected one of {sorted(paper.presets)}.")
    return paper.presets[name]


def resolve_preset(paper, name, dataset):
    """A preset's `model` and `train` dicts, with its `per_dataset` overrides for `dataset`
    merged in (e.g. the paper's CIFAR-10 and ImageNet settings under one `paper` preset).
    `paper`: a `Paper` or its name."""
    paper = get_paper(paper) if isinstance(paper, str) else paper
    preset = preset_of(paper, name)
    override = preset.get("per_dataset", {}).get(dataset, {})
    return {part: {**preset.get(part, {}), **override.get(part, {})} for part in ("model", "train")}


@dataclasses.dataclass(frozen=True)
class Run:
    """One run: `paper` (a `Paper` or its name), `preset`, `dataset` (default: the
    preset's, else the paper's), `flags` (the paper's variant flags given, flag -> value;
    None values are not given) and `mixed_precision` (`zoo.training.choose_mixed_precision`'s
    choice: "auto", "preset", "none", "bfloat16" or "float16").

    An unknown preset or a flag the paper does not have is a `ValueError`."""

    paper: Paper
    preset: str
    dataset: str | None = None
    flags: dict = dataclasses.field(default_factory=dict)
    mixed_precision: str = "auto"

    def __post_init__(self):
        if isinstance(self.paper, str):
            object.__setattr__(self, "paper", get_paper(self.paper))
        preset = preset_of(self.paper, self.preset)
        unknown = sorted(set(self.flags) - set(self.paper.flags))
        if unknown:
            raise ValueError(f"{self.paper.name} has no flag {unknown[0]!r}; expected some of "
                             f"{sorted(self.paper.flags)}.")
        object.__setattr__(self, "flags", {k: v for k, v in self.flags.items() if v is not None})
        if self.dataset is None:
            object.__setattr__(self, "dataset", preset.get("dataset", self.paper.dataset))

    @functools.cached_property
    def _merged(self):
        merged = resolve_preset(self.paper, self.preset, self.dataset)
        merged["model"].update(self.flags)
        return merged

    @property
    def train_config(self):
        """The preset's training settings for this dataset (`zoo.training.train` keywords,
        with `epochs` and `batch_size`)."""
        return dict(self._merged["train"])

    @property
    def model_class(self):
        """The model's class name: the preset's "class", else the paper's model."""
        return self._merged["model"].get("class", self.paper.model)

    @property
    def requested_config(self):
        """The model's arguments as the preset (with its dataset's overrides) and the flags
        set them, before the precision choice; without "class"."""
        return {k: v for k, v in self._merged["model"].items() if k != "class"}

    @functools.cached_property
    def _precision(self):
        from zoo.training import choose_mixed_precision
        return choose_mixed_precision(self.requested_config.get("mixed_precision"), self.mixed_precision)

    @property
    def model_config(self):
        """The model's constructor arguments but the image shape and levels: the preset's,
        its dataset's overrides, the flags, and the 16-bit network kept or not."""
        return {**self.requested_config, "mixed_precision": self._precision[0]}

    @property
    def precision_note(self):
        """Why the network's precision differs from the preset's, or None."""
        return self._precision[1]

    @property
    def labelled(self):
        """Whether the model is class-conditional: it trains on (image, label) pairs."""
        return self.requested_config.get("num_classes") is not None

    def examples(self, split, data_dir=None):
        """The dataset's `split` as `zoo.data.load` serves it: images, or (image, label)
        pairs for a class-conditional model."""
        from zoo import data
        return data.load(self.dataset, split, data_dir, with_labels=self.labelled)

    def build_model(self):
        """A new, unbuilt model of this run (its dataset's image shape and levels)."""
        from zoo import data
        from zoo.models import MODELS

        spec = data.spec(self.dataset)
        return MODELS[self.model_class](image_shape=spec.image_shape, num_levels=spec.num_levels,
                                        **self.model_config)

    @property
    def variant(self):
        """The values of the paper's flags that were given or that the preset sets, joined
        by "-" ("sylvester_o-normal"), or None when there are none."""
        model = self._merged["model"]
        values = [str(model[flag]) for flag in self.paper.flags if flag in model]
        return "-".join(values) or None

    @property
    def name(self):
        """PRESET-DATASET, or PRESET-VARIANT-DATASET: the run's name within its paper (its
        record's and work folder's)."""
        return run_name(self.preset, self.dataset, self.variant)

    @property
    def stem(self):
        """PAPER-NAME: the file-name stem of the run's figures."""
        return f"{self.paper.name}-{self.name}"

    @property
    def pretrained_name(self):
        """The name `--publish` ships the weights under: PREFIX-DATASET, the prefix the
        paper's variant name, else the preset's "name", else the paper's."""
        if self.paper.variant_name is not None:
            prefix = self.paper.variant_name(self.requested_config)
        else:
            prefix = self.paper.presets[self.preset].get("name", self.paper.name)
        return f"{prefix}-{slug(self.dataset)}"

    @property
    def published(self):
        """The published number of this run's model on its dataset, or None."""
        return self.paper.published(self.dataset, self.requested_config)

    def record_path(self, out):
        """OUT/runs/PAPER/NAME.json."""
        return record_path(out, self.paper.name, self.preset, self.dataset, self.variant)

    def work_dir(self, out):
        """OUT/work/PAPER/NAME: the run's backups and history."""
        return Path(out) / "work" / self.paper.name / self.name

    def figure(self, out, suffix=""):
        """OUT/figures/STEM{suffix}.png."""
        return Path(out) / "figures" / f"{self.stem}{suffix}.png"
