"""SavedModel export: serving signatures that need only TensorFlow.

Signatures, all with a dynamic batch: `log_prob(images)` and
`bits_per_dim(images)` on uint8 `[batch, H, W, C]`; `sample(n, temperature, seed)`
-> uint8 `[n, H, W, C]`; for flows (models with `encode`/`decode`) also
`encode(images)` -> float32 `z [batch, H, W, C]` and `decode(z)` -> uint8 images.
A class-conditional model (`num_classes` set) takes int32 `labels [batch]` beside
the images, and its `sample(labels, temperature, seed)` draws one image per label.
Built with Keras' own `ExportArchive`, which saves the variables the endpoints
read (the model itself is not tracked: its `call` is not a serving function).
"""

import keras
import tensorflow as tf


def _sample_signature(model):
    def sample(n, temperature, seed, labels=None):
        checks = [tf.debugging.assert_positive(n, message="n must be > 0"),
                  tf.debugging.assert_non_negative(temperature, message="temperature must be >= 0")]
        with tf.control_dependencies(checks):
            seeds = tf.stack([seed, tf.zeros_like(seed)])
            extra = () if labels is None else (model.check_labels(labels, None),)
            return {"images": tf.cast(model._sample(n, temperature, seeds, *extra), tf.uint8)}
    return sample


def _conditional_endpoints(archive, model, images):
    labels = tf.TensorSpec([None], tf.int32, name="labels")
    archive.add_endpoint("log_prob", lambda images, labels: {"log_prob": model.log_prob(images, labels)},
                         input_signature=[images, labels])
    archive.add_endpoint("bits_per_dim",
                         lambda images, labels: {"bits_per_dim": model.bits_per_dim(images, labels)},
                         input_signature=[images, labels])
    sample = _sample_signature(model)
    archive.add_endpoint(
        "sample", lambda labels, temperature, seed: sample(tf.size(labels), temperature, seed, labels),
        input_signature=[labels, tf.TensorSpec([], tf.float32, name="temperature"),
                         tf.TensorSpec([], tf.int64, name="seed")])


def _unconditional_endpoints(archive, model, images):
    archive.add_endpoint("log_prob", lambda images: {"log_prob": model.log_prob(images)},
                         input_signature=[images])
    archive.add_endpoint("bits_per_dim", lambda images: {"bits_per_dim": model.bits_per_dim(images)},
                         input_signature=[images])
    archive.add_endpoint("sample", _sample_signature(model), input_signature=[
        tf.TensorSpec([], tf.int32, name="n"), tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int64, name="seed")])


def _flow_endpoints(archive, model, images):
    z = tf.TensorSpec([None, *model.image_shape], tf.float32, name="z")
    if getattr(model, "num_classes", None):
        labels = tf.TensorSpec([None], tf.int32, name="labels")
        archive.add_endpoint("encode", lambda images, labels: {"z": model.encode(images, labels)},
                             input_signature=[images, labels])
        archive.add_endpoint("decode", lambda z, labels: {"images": model.decode(z, labels)},
                             input_signature=[z, labels])
        return
    archive.add_endpoint("encode", lambda images: {"z": model.encode(images)}, input_signature=[images])
    archive.add_endpoint("decode", lambda z: {"images": model.decode(z)}, input_signature=[z])


def export(model, path):
    """Writes `model` as a SavedModel at `path`; returns `path`."""
    model.build_for_images()
    images = tf.TensorSpec([None, *model.image_shape], tf.uint8, name="images")
    archive = keras.export.ExportArchive()
    if getattr(model, "num_classes", None):
        _conditional_endpoints(archive, model, images)
    else:
        _unconditional_endpoints(archive, model, images)
    if hasattr(model, "encode") and hasattr(model, "decode"):
        _flow_endpoints(archive, model, images)
    archive.write_out(str(path), verbose=False)
    return path
