"""Class-conditional models end to end: (image, label) batches through the training
stream, `fit` on two replicas via the driver, and both samplers given labels. (SavedModels
with labels: `test_export.py` serves them, `test_bad_input.py` checks their refusals.)"""

import copy
import json

import numpy as np
import pytest
import tensorflow as tf

from distributed import isolated_mirrored
from zoo import training
from zoo.models import GatedPixelCNN


def test_pairs_stream_keeps_each_label_with_its_image_in_the_images_only_order():
    values = np.arange(23)
    images = tf.data.Dataset.from_tensor_slices(np.broadcast_to(values[:, None, None, None], (23, 2, 2, 1)))
    pairs = tf.data.Dataset.zip(images, tf.data.Dataset.from_tensor_slices(values))
    alone = [b.numpy()[:, 0, 0, 0] for b in training.epoch_batches(images, 5, seed=3, first_epoch=1).take(6)]
    together = list(training.epoch_batches(pairs, 5, seed=3, first_epoch=1).take(6))
    for a, (x, y) in zip(alone, together):
        np.testing.assert_array_equal(x.numpy()[:, 0, 0, 0], a)
        np.testing.assert_array_equal(y.numpy(), a)


def test_model_inputs_wrap_pairs_as_one_input_and_leave_images_alone():
    images = tf.data.Dataset.from_tensor_slices(np.zeros((4, 2, 2, 1), np.uint8)).batch(2)
    pairs = tf.data.Dataset.zip(images, tf.data.Dataset.from_tensor_slices(np.zeros(4, np.int64)).batch(2))
    assert training.model_inputs(images).element_spec == images.element_spec
    (x,) = next(iter(training.model_inputs(pairs)))
    assert isinstance(x, tuple) and len(x) == 2


def test_conditional_driver_run_on_two_replicas_trains_evaluates_and_samples_by_class(
        tmp_path, monkeypatch, two_cpus):
    from reproduce import pixelcnn
    from reproduce.__main__ import main

    presets = copy.deepcopy(pixelcnn.PRESETS)
    presets["smoke"]["model"]["num_classes"] = 10
    monkeypatch.setitem(pixelcnn.PRESETS, "smoke", presets["smoke"])
    # Collective keys of its own: the last gated layer's unused label embedding has no
    # gradient, so this model's all-reduce shapes differ from other tests' (see
    # `isolated_mirrored`).
    monkeypatch.setattr(training, "get_strategy", lambda: isolated_mirrored(two_cpus))
    record = main(["pixelcnn", "--preset", "smoke", "--out", str(tmp_path), "--epochs", "1"])
    saved = json.loads((tmp_path / "runs" / "pixelcnn" / "smoke-digits.json").read_text())
    assert saved["config"]["num_classes"] == record["config"]["num_classes"] == 10
    assert saved["test_images"] == 447 and np.isfinite(saved["test_nats"])
    assert (tmp_path / "figures" / "pixelcnn-smoke-digits.png").read_bytes()[:4] == b"\x89PNG"


def test_conditional_sample_takes_the_method_and_both_samplers_agree():
    model = GatedPixelCNN((3, 3, 1), 3, filters=4, num_layers=2, first_kernel_size=3, head_filters=4,
                          num_classes=4).build_for_images()
    for v in model.trainable_variables:
        v.assign(tf.random.stateless_normal(v.shape, [len(v.name), 2]) * 0.5)
    for labels in ([0, 3, 1], None):
        cached = model.sample(3, seed=7, labels=labels, method="cached")
        np.testing.assert_array_equal(model.sample(3, seed=7, labels=labels, method="naive"), cached)
    with pytest.raises(ValueError, match="method must be 'cached' or 'naive'"):
        model.sample(2, labels=[0, 1], method="fast")
