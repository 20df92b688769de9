"""SavedModel export: serving signatures that need only TensorFlow.

Signatures, all with a dynamic batch and computed in float32: `log_prob(images)`
and `bits_per_dim(images)` on uint8 `[batch, H, W, C]`; `sample(n, temperature,
seed)` -> uint8 `[n, H, W, C]`; by the model's `capabilities`, for a latent model
(flows, the VAE) also `encode(images)` -> float32 `z [batch, *latent_shape]` and
`decode(z)` -> uint8 images, and for a model with an ELBO (the VAE) `elbo(images)`.
A class-conditional model (`num_classes` set) takes int32 `labels [batch]` beside
the images, and its `sample(labels, temperature, seed)` draws one image per label.
Built with Keras' own `ExportArchive` from the model's public methods; it saves the
variables the endpoints read.
"""

import keras
import tensorflow as tf


def _sample(model, n, temperature, seed, labels=None):
    checks = [tf.debugging.assert_positive(n, message="n must be > 0"),
              tf.debugging.assert_non_negative(temperature, message="temperature must be >= 0")]
    with tf.control_dependencies(checks):
        if labels is not None:
            labels = model.check_labels(labels, None)
        images = model.generate(n, temperature, tf.stack([seed, tf.zeros_like(seed)]), labels)
        return {"images": tf.cast(images, tf.uint8)}


def export(model, path):
    """Writes `model` as a SavedModel at `path`; returns `path`."""
    model.build_for_images()
    images = tf.TensorSpec([None, *model.image_shape], tf.uint8, name="images")
    temperature = tf.TensorSpec([], tf.float32, name="temperature")
    seed = tf.TensorSpec([], tf.int64, name="seed")
    # A class-conditional model's endpoints take `labels` last (sample: instead of n).
    labels = [tf.TensorSpec([None], tf.int32, name="labels")] if model.num_classes else []
    archive = keras.export.ExportArchive()

    def add(name, fn, *specs):
        archive.add_endpoint(name, fn, input_signature=[*specs, *labels])

    add("log_prob", lambda images, *y: {"log_prob": model.log_prob(images, *y)}, images)
    add("bits_per_dim", lambda images, *y: {"bits_per_dim": model.bits_per_dim(images, *y)}, images)
    if model.num_classes:
        archive.add_endpoint(
            "sample", lambda labels, temperature, seed: _sample(model, tf.size(labels), temperature, seed, labels),
            input_signature=[*labels, temperature, seed])
    else:
        add("sample", lambda n, temperature, seed: _sample(model, n, temperature, seed),
            tf.TensorSpec([], tf.int32, name="n"), temperature, seed)
    if "latent" in model.capabilities:
        z = tf.TensorSpec([None, *model.latent_shape], tf.float32, name="z")
        add("encode", lambda images, *y: {"z": model.encode(images, *y)}, images)
        add("decode", lambda z, *y: {"images": model.decode(z, *y)}, z)
    if "elbo" in model.capabilities:
        add("elbo", lambda images, *y: {"elbo": model.elbo(images, *y)}, images)
    archive.write_out(str(path), verbose=False)
    return path
