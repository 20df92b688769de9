"""Glow with a class-conditional top prior (openai/glow's `ycond`): the flow given a
label is still a bijection with the right log-det, labels act per image, sampling and
encode/decode take labels, and the driver trains it on (image, label) pairs (its
SavedModel: `test_export.py`)."""

import copy
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from jacobians import brute_force_log_det
from tiny_models import random_images, tiny
from zoo.models import Glow

SHAPE = (4, 4, 2)
LABELS = np.array([0, 2, 1], np.int32)


def images(n=5, seed=0):
    return random_images(n, 17, SHAPE, seed)


@pytest.fixture(scope="module")
def model():
    return tiny("Glow", SHAPE, 17, depth=1, num_classes=3)


def test_flow_given_labels_has_the_brute_force_log_det_and_inverts(model):
    v = images(3).astype(np.float32) + np.random.default_rng(1).uniform(size=(3, *SHAPE)).astype(np.float32)
    flow = model.bijector(labels=tf.constant(LABELS))
    expected = brute_force_log_det(lambda: model.bijector(labels=tf.constant(LABELS)), v)
    np.testing.assert_allclose(flow.forward_log_det_jacobian(v, event_ndims=3), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(flow.inverse(flow.forward(v)), v, rtol=1e-4, atol=1e-4)


def test_labels_act_per_image_and_change_log_prob(model):
    x = images(3)
    together = model.log_prob(x, LABELS).numpy()
    alone = [model.log_prob(x[i:i + 1], LABELS[i:i + 1]).numpy()[0] for i in range(3)]
    np.testing.assert_allclose(together, alone, rtol=1e-5)
    assert not np.allclose(together, model.log_prob(x, (LABELS + 1) % 3))


def test_decode_of_encode_with_labels_is_the_identity(model):
    x = images(3)
    np.testing.assert_array_equal(model.decode(model.encode(x, LABELS), LABELS), x)


def test_sampling_honours_labels_and_temperature_zero_decodes_each_class_mean(model):
    modes = model.sample(3, temperature=0.0, seed=1, labels=LABELS).numpy()
    np.testing.assert_array_equal(modes, model.decode(np.zeros((3, *SHAPE), np.float32), LABELS))
    assert not np.array_equal(modes[0], modes[1])
    np.testing.assert_array_equal(model.sample(3, seed=4, labels=LABELS), model.sample(3, seed=4, labels=LABELS))
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        model.sample(2, labels=[0, 3])
    with pytest.raises(ValueError, match="class-conditional: pass labels"):
        model.encode(images(2))


def test_num_classes_needs_a_learned_top_prior():
    with pytest.raises(ValueError, match="learn_top=True"):
        Glow(SHAPE, 17, num_scales=1, depth=1, filters=8, num_classes=3, learn_top=False)


def test_keras_file_round_trip_keeps_the_class_embedding(model, tmp_path):
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded.log_prob(images(3), LABELS), model.log_prob(images(3), LABELS))


def test_driver_trains_a_conditional_glow_on_image_label_pairs(tmp_path, monkeypatch):
    from reproduce import glow
    from reproduce.__main__ import main

    presets = copy.deepcopy(glow.PRESETS)
    presets["smoke"]["model"]["num_classes"] = 10
    monkeypatch.setitem(glow.PRESETS, "smoke", presets["smoke"])
    record = main(["glow", "--preset", "smoke", "--out", str(tmp_path), "--epochs", "1"])
    saved = json.loads((tmp_path / "runs" / "glow" / "smoke-digits.json").read_text())
    assert saved["config"]["num_classes"] == record["config"]["num_classes"] == 10
    assert saved["test_images"] == 447 and np.isfinite(saved["test_bits_per_dim"])
    assert (tmp_path / "figures" / "glow-smoke-digits-interpolation.png").exists()
