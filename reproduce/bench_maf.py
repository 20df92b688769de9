"""`python -m reproduce bench --suite maf`: MAF and IAF against TFP's
`tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=tfb.AutoregressiveNetwork(...))`.

At the `maf` `cpu` preset's sizes on 8-bit MNIST (D = 784; K = 5 layers of MADEs with
two hidden layers of 512 ReLUs; batch 100; float32), both sides over a standard normal
base and without batch norm (the preset's MoG base has no TFP counterpart):

- MAF training step: our `MAF(..., base="normal", batch_norm=False)`'s step on
  `model(x, training=True)` bits/dim (as `bench.ours_step`) against a
  `tfd.TransformedDistribution` of a standard normal through a `tfb.Chain` of K
  `tfb.MaskedAutoregressiveFlow`s with the order reversed between layers (`tfb.Permute`),
  on the same dequantized pixels through the same `zoo.bijectors.logit_preprocess`
  (its log-det counted on both sides). Adam 1e-3: Keras 3's for ours, tf_keras' for TFP's.
- IAF training step: K IAF layers in the sampling direction on eps `[batch, D]`, one
  MADE pass a layer, loss mean(log N(eps) - log|det| - log N(z)) (a one-sample KL to the
  standard normal): `zoo.bijectors.inverse_autoregressive_flow` of `zoo.layers.MADE`s
  against `tfb.Invert(tfb.MaskedAutoregressiveFlow(AutoregressiveNetwork(...)))`.
- MAF sampling: `model.sample(n)` (the MADEs' cached loop, `MADE.sequential`),
  `method="naive"` (TFP's loop through our bijector) and TFP's `dist.sample(n)`.

Our MAF bounds each layer's log-scale as `scale * tanh(r)` with one learned scale a
dimension (K * D more parameters than TFP's, an elementwise tanh more work); its
networks have TFP's parameter count exactly. Our IAF here leaves the log-scale
unbounded, as TFP's.
"""

import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from reproduce import bench
from reproduce import maf as maf_paper
from zoo import bijectors as zb
from zoo.layers import MADE
from zoo.models import MAF

tfb, tfd = tfp.bijectors, tfp.distributions

LOG_2PI = math.log(2.0 * math.pi)


def full_config():
    """The `maf` `cpu` preset's MADEs (layers, widths, activation, alpha) on 8-bit MNIST,
    with a standard normal base and no batch norm on both sides."""
    preset = maf_paper.PRESETS["cpu"]
    model = {k: preset["model"][k] for k in ("num_layers", "hidden_units", "alpha")}
    model["activation"] = preset["model"].get("activation", "relu")
    return {
        "warmup": 3, "repetitions": 15,
        "maf": {"model": model, "num_levels": 256, "image_shape": [28, 28, 1],
                "batch": preset["train"]["batch_size"],
                # TFP's loop runs every MADE whole, D times a layer: a sampler's timed
                # calls stop once they took `sample_budget_s` (one at least).
                "sample_images": 16, "sample_repetitions": 3, "sample_budget_s": 60},
    }


def quick_config():
    """Tiny shapes, one repetition (tests/test_bench.py): seconds, most of it tracing."""
    return {
        "warmup": 1, "repetitions": 1,
        "maf": {"model": {"num_layers": 2, "hidden_units": [8, 8], "alpha": 1e-6, "activation": "relu"},
                "num_levels": 256, "image_shape": [4, 4, 1], "batch": 2,
                "sample_images": 2, "sample_repetitions": 1, "sample_budget_s": 60},
    }


def standard_normal_log_prob(x):
    """`[batch, D]` -> `[batch]`."""
    return -0.5 * tf.reduce_sum(tf.square(x) + LOG_2PI, axis=-1)


def tfp_networks(model, num_dims):
    return [tfb.AutoregressiveNetwork(params=2, hidden_units=list(model["hidden_units"]),
                                      event_shape=[num_dims], activation=model["activation"])
            for _ in range(model["num_layers"])]


def reversal(num_dims):
    return tfb.Permute(list(range(num_dims - 1, -1, -1)))


def tfp_maf(model, num_levels, num_dims):
    """TFP's MAF over pixels `v [batch, D]` in [0, num_levels): `(dist, networks)`. Data to
    noise (`inverse`): logit, MAF layer 0, reversal, MAF layer 1, ... (one network pass a
    layer); noise to data (`forward`, sampling) D passes a layer."""
    nets = tfp_networks(model, num_dims)
    layers = []
    for k, net in enumerate(nets):
        if k:
            layers.append(reversal(num_dims))
        layers.append(tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=net, name=f"tfp_maf{k}"))
    # Chain applies its last bijector first: forward z -> layer K-1 ... layer 0 -> sigmoid.
    bijector = tfb.Chain([tfb.Invert(zb.logit_preprocess(num_levels, model["alpha"])), *layers])
    base = tfd.Sample(tfd.Normal(0.0, 1.0), [num_dims])
    return tfd.TransformedDistribution(base, bijector), nets


def iaf_loss(flow):
    """`eps [batch, D] -> mean(log N(eps) - log|det dz/deps| - log N(z))`, z = flow(eps)."""
    def loss(eps):
        z = flow.forward(eps)
        log_det = flow.forward_log_det_jacobian(eps, event_ndims=1)
        return tf.reduce_mean(standard_normal_log_prob(eps) - log_det - standard_normal_log_prob(z))
    return loss


def ours_iaf(model, num_dims):
    """K of our IAF layers, MADEs' orders alternating (natural, reversed, ...):
    `(flow, mades)`."""
    mades = [MADE(2, model["hidden_units"], input_order=MAF.order(k), activation=model["activation"],
                  seed=k, name=f"iaf_made{k}") for k in range(model["num_layers"])]
    for made in mades:
        made.build((None, num_dims))
    layers = [zb.inverse_autoregressive_flow(made, name=f"iaf{k}") for k, made in enumerate(mades)]
    return tfb.Chain(layers[::-1]), mades  # layer 0 first


def tfp_iaf(model, num_dims):
    """TFP's IAF layers, reversal between them: `(flow, networks)`."""
    nets = tfp_networks(model, num_dims)
    layers = []
    for k, net in enumerate(nets):
        if k:
            layers.append(reversal(num_dims))
        layers.append(tfb.Invert(tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=net, name=f"tfp_iaf{k}")))
    flow = tfb.Chain(layers[::-1])
    flow.forward(tf.zeros([1, num_dims]))  # builds the networks
    return flow, nets


def variables_of(layers):
    return [v for layer in layers for v in layer.trainable_variables]


def maf_train(cfg, warmup, repetitions):
    shape, levels, batch, model = cfg["image_shape"], cfg["num_levels"], cfg["batch"], cfg["model"]
    num_dims = math.prod(shape)
    ours = MAF(shape, levels, base="normal", batch_norm=False, seed=0, **model).build_for_images()
    dist, nets = tfp_maf(model, levels, num_dims)
    images = bench.random_images(shape, levels, batch)

    def tfp_log_prob(x):
        v = tf.reshape(tf.cast(x, tf.float32), [-1, num_dims])
        return dist.log_prob(v + tf.random.uniform(tf.shape(v)))

    tfp_log_prob(images[:1])  # builds TFP's networks
    tfp_vars = variables_of(nets)
    steps = {"ours": bench.ours_step(ours, False), "tfp": bench.tfp_step(tfp_log_prob, tfp_vars, num_dims, False)}
    m = bench.measure({k: {"run": (lambda s=s: s(images)), "images": batch} for k, s in steps.items()},
                      warmup, repetitions)
    bounds = bench.parameters([b for b in ours.log_scale_bounds])
    return {"image_shape": shape, "batch": batch, **m, "ours_vs_tfp": bench.ratio(m["ours"], m["tfp"]),
            "parameters": {"ours": bench.parameters(ours.trainable_variables),
                           "ours_networks": bench.parameters(variables_of(ours.mades)),
                           "ours_log_scale_bounds": bounds, "tfp": bench.parameters(tfp_vars)}}


def iaf_train(cfg, warmup, repetitions):
    shape, batch, model = cfg["image_shape"], cfg["batch"], cfg["model"]
    num_dims = math.prod(shape)
    ours, mades = ours_iaf(model, num_dims)
    theirs, nets = tfp_iaf(model, num_dims)
    ours_vars, tfp_vars = variables_of(mades), variables_of(nets)
    steps = {"ours": bench.train_step(iaf_loss(ours), ours_vars, keras.optimizers.Adam(1e-3), False),
             "tfp": bench.train_step(iaf_loss(theirs), tfp_vars, tf_keras.optimizers.Adam(1e-3), False)}
    eps = tf.constant(np.random.default_rng(0).standard_normal((batch, num_dims)), tf.float32)
    m = bench.measure({k: {"run": (lambda s=s: s(eps)), "images": batch} for k, s in steps.items()},
                      warmup, repetitions)
    return {"num_dims": num_dims, "batch": batch, **m, "ours_vs_tfp": bench.ratio(m["ours"], m["tfp"]),
            "parameters": {"ours": bench.parameters(ours_vars), "tfp": bench.parameters(tfp_vars)}}


def maf_sample(cfg):
    """n images: ours cached, ours naive (TFP's loop through our bijector) and TFP's
    `sample()`; each warmed up once on 1 image (n is a tensor: no retracing)."""
    shape, levels, n, model = cfg["image_shape"], cfg["num_levels"], cfg["sample_images"], cfg["model"]
    num_dims = math.prod(shape)
    ours = MAF(shape, levels, base="normal", batch_norm=False, seed=0, **model).build_for_images()
    dist, _ = tfp_maf(model, levels, num_dims)
    tfp_sample = tf.function(lambda k: dist.sample(k, seed=0), input_signature=[tf.TensorSpec([], tf.int32)])

    def ours_task(method):
        return {"run": lambda: ours.sample(n, seed=0, method=method),
                "warm": lambda: ours.sample(1, seed=0, method=method), "images": n,
                "budget_s": cfg["sample_budget_s"]}

    m = bench.measure({"ours_cached": ours_task("cached"), "ours_naive": ours_task("naive"),
                       "tfp": {"run": lambda: tfp_sample(n), "warm": lambda: tfp_sample(1), "images": n,
                               "budget_s": cfg["sample_budget_s"]}}, 1, cfg["sample_repetitions"])
    return {"image_shape": shape, "images": n, **m,
            "cached_vs_tfp": bench.ratio(m["ours_cached"], m["tfp"]),
            "naive_vs_tfp": bench.ratio(m["ours_naive"], m["tfp"]),
            "cached_vs_naive": bench.ratio(m["ours_cached"], m["ours_naive"])}


def sections(cfg):
    """The suite's sections in order: (name, thunk)."""
    warmup, reps = cfg["warmup"], cfg["repetitions"]
    return [("maf_train", lambda: maf_train(cfg["maf"], warmup, reps)),
            ("iaf_train", lambda: iaf_train(cfg["maf"], warmup, reps)),
            ("maf_sample", lambda: maf_sample(cfg["maf"]))]
