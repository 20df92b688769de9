"""Datasets by name, as `tf.data` of uint8 images `[H, W, C]` (and labels).

Every dataset comes through TFDS: the stock builders for MNIST, CIFAR-10,
downsampled ImageNet and CelebA, and a small builder (`SklearnDigits`) that
serves scikit-learn's bundled 8x8 digits. Nothing here downloads unless asked:
`load(..., download=False)` on data that is not prepared is a `DatasetNotPrepared`
(a `FileNotFoundError`) that says where it looked and how to prepare it.

Digits writes nothing unless told where: without a `data_dir` (argument or
`TFDS_DATA_DIR`) its examples are served from memory, exactly those the builder
would write; with one, the builder prepares them there, quietly.
"""

import contextlib
import dataclasses
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

BINARIZE_TEST_SEED = 20160125  # fixed draw for binarized MNIST's evaluation splits


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What a model needs to know about a dataset before it sees any image."""

    name: str
    tfds_name: str
    image_shape: tuple  # (H, W, C)
    num_levels: int
    num_classes: int
    splits: dict  # our split name -> TFDS split string
    crop: tuple = None  # (offset_h, offset_w, size) central square crop before resizing


def _held_out(train="train", test="test", fraction=10):
    """Splits with a validation set cut from the end of TFDS's train split."""
    return {
        "train": f"{train}[:{100 - fraction}%]",
        "validation": f"{train}[{100 - fraction}%:]",
        "test": test,
    }


SPECS = {
    s.name: s
    for s in [
        DatasetSpec("digits", "sklearn_digits", (8, 8, 1), 17, 10,
                    {"train": "train", "validation": "validation", "test": "test"}),
        DatasetSpec("binarized_mnist", "mnist", (28, 28, 1), 2, 10, _held_out()),
        DatasetSpec("mnist", "mnist", (28, 28, 1), 256, 10, _held_out()),
        DatasetSpec("fashion_mnist", "fashion_mnist", (28, 28, 1), 256, 10, _held_out()),
        DatasetSpec("cifar10", "cifar10", (32, 32, 3), 256, 10, _held_out()),
        # Downsampled ImageNet has no test split: the papers report its validation split.
        DatasetSpec("downsampled_imagenet/32x32", "downsampled_imagenet/32x32", (32, 32, 3),
                    256, 0, _held_out(test="validation", fraction=1)),
        DatasetSpec("downsampled_imagenet/64x64", "downsampled_imagenet/64x64", (64, 64, 3),
                    256, 0, _held_out(test="validation", fraction=1)),
        DatasetSpec("celeb_a", "celeb_a", (64, 64, 3), 256, 0,
                    {"train": "train", "validation": "validation", "test": "test"},
                    crop=(35, 15, 148)),  # RealNVP, appendix: central 148x148 crop, resized to 64
    ]
}


def spec(name):
    """The `DatasetSpec` of a dataset name; a `ValueError` lists the known names."""
    if name not in SPECS:
        raise ValueError(f"Unknown dataset {name!r}; expected one of {sorted(SPECS)}.")
    return SPECS[name]


class SklearnDigits(tfds.core.GeneratorBasedBuilder):
    """scikit-learn's 1797 bundled 8x8 digits, 17 grey levels (0..16).

    Split by index as the lecture's companion code (jmtomczak/intro_dgm):
    train [0, 1000), validation [1000, 1350), test [1350, 1797).
    """

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "Index split 1000 / 350 / 447.",
                     "1.1.0": "Examples kept in index order within each split."}
    BOUNDS = {"train": (0, 1000), "validation": (1000, 1350), "test": (1350, 1797)}

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 1), dtype=np.uint8),
                "label": tfds.features.ClassLabel(num_classes=10),
            }),
            supervised_keys=("image", "label"),
            disable_shuffling=True,  # keep index order within each split
            homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # bundled with scikit-learn: nothing to download
        return {split: self._generate_examples(*b) for split, b in self.BOUNDS.items()}

    def _generate_examples(self, start, stop):
        images, labels = digits_arrays(start, stop)
        for i, (image, label) in enumerate(zip(images, labels), start):
            yield i, {"image": image, "label": int(label)}

    # TFDS announces a download of "Unknown size" and where it went; nothing downloads here.
    def _log_download_bytes(self):
        pass

    def _log_download_done(self):
        pass


def digits_arrays(start=0, stop=1797):
    """scikit-learn's digits `[start, stop)`: uint8 images `[n, 8, 8, 1]`, int64 labels `[n]`."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images[start:stop].astype(np.uint8)[..., None],
            digits.target[start:stop].astype(np.int64))


class DatasetNotPrepared(FileNotFoundError):
    """A dataset's TFDS files are not under the data directory (and `download=False`).

    Attributes `name`, `tfds_name` and `data_dir` (where it looked) let a caller word
    its own advice, as the command line does for `--data-dir`.
    """

    def __init__(self, message, name, tfds_name, data_dir):
        super().__init__(message)
        self.name, self.tfds_name, self.data_dir = name, tfds_name, data_dir


def _given_data_dir(data_dir):
    """The data directory the caller named (argument, else `TFDS_DATA_DIR`), or None."""
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR")
    return os.path.expanduser(data_dir) if data_dir else None


def _data_dir(data_dir):
    return _given_data_dir(data_dir) or os.path.expanduser(tfds.core.constants.DATA_DIR)


@contextlib.contextmanager
def _quiet_tfds():
    """TFDS' progress bars off inside the block (they are on by default)."""
    from tensorflow_datasets.core.utils import tqdm_utils

    before = getattr(tqdm_utils, "_active", True)
    tfds.display_progress_bar(False)
    try:
        yield
    finally:
        tfds.display_progress_bar(before)


def _builder(s, data_dir, download):
    if data_dir is not None and not os.path.isdir(os.path.expanduser(data_dir)) and not download:
        raise FileNotFoundError(f"Data directory {data_dir!r} does not exist (looking for {s.name!r}).")
    builder = tfds.builder(s.tfds_name, data_dir=_data_dir(data_dir))
    if s.tfds_name == "sklearn_digits" or download:
        # digits is bundled with scikit-learn: preparing it reads no network.
        try:
            with _quiet_tfds() if s.tfds_name == "sklearn_digits" else contextlib.nullcontext():
                builder.download_and_prepare()
        except FileExistsError:  # another process prepared it at the same moment
            builder = tfds.builder(s.tfds_name, data_dir=_data_dir(data_dir))
    return builder


def _not_prepared(s, builder, data_dir):
    data_dir = _data_dir(data_dir)
    return DatasetNotPrepared(
        f"Dataset {s.name!r} (TFDS {s.tfds_name!r}) is not prepared under {data_dir!r} "
        f"(looked for {builder.data_dir!r}). Prepare it on a machine with network: "
        f"`tfds build {s.tfds_name} --data_dir {data_dir}`, or call "
        f"zoo.data.load({s.name!r}, ..., download=True); then pass data_dir=... "
        f"(or set TFDS_DATA_DIR).", s.name, s.tfds_name, data_dir)


def _in_memory(s, data_dir):
    """Digits with no data directory named: served from memory, nothing written."""
    return s.tfds_name == "sklearn_digits" and _given_data_dir(data_dir) is None


def _as_dataset(s, split, data_dir, download):
    if _in_memory(s, data_dir):
        images, labels = digits_arrays(*SklearnDigits.BOUNDS[s.splits[split]])
        return None, tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
    builder = _builder(s, data_dir, download)
    try:
        return builder, builder.as_dataset(split=s.splits[split], shuffle_files=False)
    except AssertionError as e:  # TFDS's way of saying "no data here"
        if "could not find data" not in str(e):
            raise
        raise _not_prepared(s, builder, data_dir) from None


def _binarize(image, index, training):
    """Dynamic binarization: each pixel is Bernoulli(intensity / 255).

    Training draws afresh every pass; evaluation splits use a fixed seed per image.
    """
    p = tf.cast(image, tf.float32) / 255.0
    if training:
        u = tf.random.uniform(tf.shape(p))
    else:
        u = tf.random.stateless_uniform(tf.shape(p), seed=tf.stack([BINARIZE_TEST_SEED, index]))
    return tf.cast(u < p, tf.uint8)


def load(name, split, data_dir=None, with_labels=False, download=False):
    """`tf.data.Dataset` of uint8 images `[H, W, C]` (or `(image, label)` pairs).

    Args:
      name: a key of `SPECS` (e.g. "digits", "binarized_mnist", "cifar10").
      split: "train", "validation" or "test".
      data_dir: TFDS data directory; falls back to `TFDS_DATA_DIR`, then TFDS's default
        (digits: then memory, writing nothing).
      with_labels: also yield the class label (int64).
      download: let TFDS download and prepare missing data.
    """
    s = spec(name)
    if split not in s.splits:
        raise ValueError(f"Unknown split {split!r} for {name!r}; expected one of {sorted(s.splits)}.")
    _, ds = _as_dataset(s, split, data_dir, download)

    def convert(index, example):
        image = example["image"]
        if s.crop is not None:
            top, left, size = s.crop
            image = tf.image.crop_to_bounding_box(image, top, left, size, size)
            image = tf.image.resize(image, s.image_shape[:2], antialias=True)
            image = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)
        if name == "binarized_mnist":
            image = _binarize(image, index, training=split == "train")
        label = example.get("label", tf.constant(-1, tf.int64))
        return (image, tf.cast(label, tf.int64)) if with_labels else image

    return ds.enumerate().map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def num_examples(name, split, data_dir=None):
    """How many images a split holds, from TFDS's metadata (no pass over the data)."""
    s = spec(name)
    if split not in s.splits:
        raise ValueError(f"Unknown split {split!r} for {name!r}; expected one of {sorted(s.splits)}.")
    if _in_memory(s, data_dir):
        start, stop = SklearnDigits.BOUNDS[s.splits[split]]
        return stop - start
    builder, _ = _as_dataset(s, split, data_dir, download=False)
    return builder.info.splits[s.splits[split]].num_examples
