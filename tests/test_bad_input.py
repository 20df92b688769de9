"""Bad input, collected: each refused with a clear error that names what was expected;
the model sweeps run over the registry of tiny models (`tiny_models`)."""

import numpy as np
import pytest
import tensorflow as tf

import zoo
from reproduce.__main__ import main
from tiny_models import CASES, is_flow
from zoo import data
from zoo.models import ARM

# The registry's sweep cases (every family, and the conditional variants), all over
# [batch, 4, 4, 1] images with 3 levels and 3 classes.
FLOWS = sorted(case for case, (name, _) in CASES.items() if is_flow(name))
CONDITIONAL = sorted(case for case, (_, classes) in CASES.items() if classes)


@pytest.fixture(scope="module", params=sorted(CASES))
def family(request, tiny_model):
    return tiny_model(request.param)


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model("ARM")


@pytest.mark.parametrize("images,match", [
    (np.zeros((2, 4, 4, 1), np.float32), "integer images"),
    (np.zeros((2, 4, 4, 1), bool), "integer images"),
    (np.full((2, 4, 4, 1), 3, np.uint8), r"\[0, 3\)"),
    (np.full((2, 4, 4, 1), -1, np.int32), r"\[0, 3\)"),
    (np.zeros((4, 4, 1), np.uint8), "rank 4"),
    (np.zeros((2, 5, 4, 1), np.uint8), r"shape \[batch, 4, 4, 1\]"),
    (np.zeros((2, 4, 4, 3), np.uint8), r"shape \[batch, 4, 4, 1\]"),
])
@pytest.mark.parametrize("method", ["log_prob", "bits_per_dim", "encode"])
def test_bad_images_are_refused(family, method, images, match):
    if method == "encode" and "latent" not in family.capabilities:
        pytest.skip(f"{type(family).__name__} has no latent to encode")
    with pytest.raises(ValueError, match=match):
        getattr(family, method)(images)


@pytest.mark.parametrize("latents,match", [
    (np.zeros((2, 4, 4, 1), np.int32), "float latents"),
    (np.zeros((2, 5, 4, 1), np.float32), r"shape \[batch, 4, 4, 1\]"),
    (np.zeros((4, 4, 1), np.float32), r"shape \[batch, 4, 4, 1\]"),
    (np.full((2, 4, 4, 1), np.nan, np.float32), "finite"),
])
@pytest.mark.parametrize("case", FLOWS)
def test_bad_latents_are_refused_by_decode(tiny_model, case, latents, match):
    with pytest.raises(ValueError, match=match):
        tiny_model(case).decode(latents)


@pytest.mark.parametrize("labels,match", [([0, 5], r"\[0, 3\)"), ([0, -1], r"\[0, 3\)"), ([0], r"shape \[2\]"),
                                          ([0.0, 1.0], "integer labels")])
@pytest.mark.parametrize("case", CONDITIONAL)
def test_bad_labels_are_refused(tiny_model, case, labels, match):
    model = tiny_model(case)
    with pytest.raises(ValueError, match=match):
        model.sample(2, labels=labels)
    with pytest.raises(ValueError, match=match):
        model.log_prob(np.zeros((2, 4, 4, 1), np.uint8), labels)


@pytest.mark.parametrize("kwargs,match", [
    ({"n": 0}, "positive integer"),
    ({"n": -3}, "positive integer"),
    ({"n": 2.5}, "positive integer"),
    ({"n": 2, "temperature": -0.1}, "temperature"),
    ({"n": 2, "temperature": float("nan")}, "temperature"),
    ({"n": 2, "seed": -1}, "seed"),
    ({"n": 2, "seed": 1.5}, "seed"),
])
def test_bad_sample_arguments_are_refused(family, kwargs, match):
    with pytest.raises(ValueError, match=match):
        family.sample(**kwargs)


@pytest.mark.parametrize("kwargs,match", [
    ({"image_shape": (4, 4), "num_levels": 3}, "image_shape"),
    ({"image_shape": (4, 4, 1), "num_levels": 1}, "num_levels"),
    ({"image_shape": (4, 4, 1), "num_levels": 3, "dilations": []}, "dilations"),
])
def test_bad_configs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ARM(**kwargs)


@pytest.mark.parametrize("argv,match", [
    (["nope"], "invalid choice: 'nope'"),
    (["arm", "--preset", "huge"], "unknown preset 'huge'"),
    (["arm", "--preset", "smoke", "--data-dir", "/no/such/dir"], "does not exist"),
])
def test_bad_command_lines_are_clear_errors(argv, match):
    with pytest.raises(SystemExit, match=match):
        main(argv)


def test_unknown_dataset_model_and_split_are_clear_errors(tmp_path):
    with pytest.raises(SystemExit, match="unknown dataset 'digitz'"):
        main(["arm", "--preset", "smoke", "--dataset", "digitz", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="Unknown pretrained model 'glow-mars'"):
        zoo.load("glow-mars")
    with pytest.raises(ValueError, match="Unknown split 'dev'"):
        data.load("digits", "dev")


@pytest.fixture(scope="module")
def served(exported):
    return tf.saved_model.load(str(exported("ARM")))


@pytest.mark.parametrize("signature", ["log_prob", "bits_per_dim"])
def test_saved_model_refuses_bad_images(served, signature):
    fn = served.signatures[signature]
    refused = (TypeError, ValueError, tf.errors.InvalidArgumentError)
    with pytest.raises(refused, match="uint8"):
        fn(images=tf.zeros((2, 4, 4, 1), tf.float32))  # wrong dtype
    with pytest.raises(refused, match=r"shape \[batch, 4, 4, 1\]"):
        fn(images=tf.zeros((2, 5, 4, 1), tf.uint8))  # wrong image size
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_levels=3"):
        fn(images=tf.fill((2, 4, 4, 1), tf.constant(3, tf.uint8)))  # value out of range


def test_saved_model_refuses_bad_sample_arguments(served):
    fn = served.signatures["sample"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="n must be > 0"):
        fn(n=tf.constant(0), temperature=tf.constant(1.0), seed=tf.constant(1, tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match="temperature must be >= 0"):
        fn(n=tf.constant(2), temperature=tf.constant(-1.0), seed=tf.constant(1, tf.int64))


def test_conditional_saved_model_refuses_labels_out_of_range(exported):
    served = tf.saved_model.load(str(exported("GatedPixelCNN-conditional")))
    images = tf.zeros((2, 4, 4, 1), tf.uint8)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels in \[0, 3\)"):
        served.signatures["log_prob"](images=images, labels=tf.constant([0, 3], tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels in \[0, 3\)"):
        served.signatures["sample"](labels=tf.constant([-1], tf.int32), temperature=tf.constant(1.0),
                                    seed=tf.constant(1, tf.int64))
