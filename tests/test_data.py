import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from zoo import data


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def as_array(ds):
    return np.stack(list(ds.as_numpy_iterator()))


def test_digits_splits_by_index_with_17_levels(digits_dir):
    from sklearn.datasets import load_digits

    reference = load_digits().images.astype(np.uint8)
    sizes = {}
    for split, (start, stop) in {"train": (0, 1000), "validation": (1000, 1350),
                                 "test": (1350, 1797)}.items():
        images = as_array(data.load("digits", split, data_dir=digits_dir))
        assert images.dtype == np.uint8 and images.shape[1:] == (8, 8, 1)
        np.testing.assert_array_equal(images[..., 0], reference[start:stop])
        assert images.max() < data.spec("digits").num_levels == 17
        sizes[split] = len(images)
        assert data.num_examples("digits", split, data_dir=digits_dir) == len(images)
    assert sizes == {"train": 1000, "validation": 350, "test": 447}


def test_labels_come_along_when_asked(digits_dir):
    image, label = next(iter(data.load("digits", "test", data_dir=digits_dir, with_labels=True)))
    assert image.dtype == tf.uint8 and label.dtype == tf.int64 and 0 <= int(label) < 10


def test_binarized_mnist_is_binary_and_its_test_split_fixed():
    with tfds.testing.mock_data(num_examples=12):
        first = as_array(data.load("binarized_mnist", "test"))
        second = as_array(data.load("binarized_mnist", "test"))
        train = as_array(data.load("binarized_mnist", "train"))
    assert first.shape == (12, 28, 28, 1) and first.dtype == np.uint8
    assert set(np.unique(first)) <= {0, 1} and set(np.unique(train)) <= {0, 1}
    np.testing.assert_array_equal(first, second)


def test_unknown_names_and_splits_are_clear_errors(digits_dir):
    with pytest.raises(ValueError, match="Unknown dataset 'mnst'.*binarized_mnist"):
        data.load("mnst", "train")
    with pytest.raises(ValueError, match="Unknown split 'valid'.*validation"):
        data.load("digits", "valid", data_dir=digits_dir)


def test_missing_data_offline_fails_fast_and_says_where_and_how(tmp_path):
    start = time.time()
    with pytest.raises(FileNotFoundError, match=f"not prepared under '{tmp_path}'.*tfds build cifar10"):
        data.load("cifar10", "test", data_dir=str(tmp_path))
    assert time.time() - start < 10
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load("mnist", "test", data_dir=str(tmp_path / "nowhere"))


def test_digits_without_a_data_dir_is_served_from_memory_and_writes_nothing(digits_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    default = tmp_path / "tfds_default"
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(default))
    for split in ["train", "validation", "test"]:
        pairs = data.load("digits", split, with_labels=True)
        images, labels = (np.stack(a) for a in zip(*pairs.as_numpy_iterator()))
        prepared = data.load("digits", split, data_dir=digits_dir, with_labels=True)
        want_images, want_labels = (np.stack(a) for a in zip(*prepared.as_numpy_iterator()))
        np.testing.assert_array_equal(images, want_images)
        np.testing.assert_array_equal(labels, want_labels)
        assert pairs.element_spec == prepared.element_spec
        assert data.num_examples("digits", split) == len(images)
    assert not default.exists(), "digits wrote into TFDS's default data directory"


def test_preparing_digits_in_a_data_dir_announces_no_download(tmp_path, capfd):
    images = as_array(data.load("digits", "test", data_dir=str(tmp_path)))
    assert len(images) == 447
    out, err = capfd.readouterr()
    assert "Downloading" not in out + err and "Generating" not in out + err
    assert (tmp_path / "sklearn_digits").is_dir()


def test_a_dataset_not_prepared_is_a_typed_error_naming_where_it_looked(tmp_path):
    with pytest.raises(data.DatasetNotPrepared) as caught:
        data.num_examples("mnist", "train", data_dir=str(tmp_path))
    assert caught.value.data_dir == str(tmp_path) and caught.value.tfds_name == "mnist"
    assert isinstance(caught.value, FileNotFoundError)
