"""`python -m reproduce bench --suite maf`: MAF and IAF training steps and MAF sampling against TFP's
`MaskedAutoregressiveFlow`, at the `maf` `cpu` preset's MADEs over a standard normal base without batch norm on both
sides (the preset's MoG base has no TFP counterpart). What each side computes: `templates/maf.md`.
"""

import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from reproduce.bench.measure import compare_samplers, measure, ours_step, parameters, random_images, ratios, \
    step_tasks, tfp_step, train_step
from reproduce.bench.report import made_sizes, shape_name, target
from reproduce.runs import Run
from zoo import bijectors as zb
from zoo.layers import MADE
from zoo.models import MAF

tfb, tfd = tfp.bijectors, tfp.distributions


def config(quick):
    """The `maf` `cpu` preset's MADEs on 8-bit MNIST; quick: tiny, one repetition."""
    if quick:
        return {"warmup": 1, "repetitions": 1,
                "maf": {"model": {"num_layers": 2, "hidden_units": [8, 8], "alpha": 1e-6, "activation": "relu"},
                        "num_levels": 256, "image_shape": [4, 4, 1], "batch": 2,
                        "sample_images": 2, "sample_repetitions": 1, "sample_budget_s": 60}}
    run = Run("maf", "cpu", "mnist")
    model = {k: run.requested_config[k] for k in ("num_layers", "hidden_units", "alpha")}
    return {"warmup": 3, "repetitions": 15,
            "maf": {"model": {**model, "activation": run.requested_config.get("activation", "relu")},
                    "num_levels": 256, "image_shape": [28, 28, 1], "batch": run.train_config["batch_size"],
                    # TFP's loop runs every MADE whole, D times a layer: timed calls stop after the budget
                    "sample_images": 16, "sample_repetitions": 3, "sample_budget_s": 60}}


def _tfp_layers(model, num_dims, wrap=lambda b: b, name="tfp_maf"):
    """TFP's K MAF layers (each `wrap`ped), reversed between them: (layers in data-to-noise order, networks)."""
    nets = [tfb.AutoregressiveNetwork(params=2, hidden_units=list(model["hidden_units"]), event_shape=[num_dims],
                                      activation=model["activation"]) for _ in range(model["num_layers"])]
    layers = []
    for k, net in enumerate(nets):
        if k:
            layers.append(tfb.Permute(list(range(num_dims - 1, -1, -1))))
        layers.append(wrap(tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=net, name=f"{name}{k}")))
    return layers, nets


def ours_maf(shape, levels, model):
    """Our MAF like TFP's: a standard normal base, no batch norm."""
    return MAF(shape, levels, base="normal", batch_norm=False, seed=0, **model).build_for_images()


def tfp_maf(model, num_levels, num_dims):
    """TFP's MAF over pixels `[batch, D]` in [0, num_levels), through our logit preprocessing: (dist, networks)."""
    layers, nets = _tfp_layers(model, num_dims)
    # Chain applies its last bijector first: forward z -> layer K-1 ... layer 0 -> sigmoid.
    bijector = tfb.Chain([tfb.Invert(zb.logit_preprocess(num_levels, model["alpha"])), *layers])
    return tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0.0, 1.0), [num_dims]), bijector), nets


def iaf_loss(flow, num_dims):
    """`eps [batch, D] -> mean(log N(eps) - log|det dz/deps| - log N(z))`, z = flow(eps): a one-sample KL to N(0, I)."""
    normal = tfd.Sample(tfd.Normal(0.0, 1.0), [num_dims])

    def loss(eps):
        z = flow.forward(eps)
        log_det = flow.forward_log_det_jacobian(eps, event_ndims=1)
        return tf.reduce_mean(normal.log_prob(eps) - log_det - normal.log_prob(z))
    return loss


def variables_of(layers):
    """The trainable variables of `layers`, in order."""
    return [v for layer in layers for v in layer.trainable_variables]


def maf_train(cfg, timing):
    """Our MAF's step against TFP's on the same images: measurements, ratio, parameters."""
    shape, levels, batch, model = cfg["image_shape"], cfg["num_levels"], cfg["batch"], cfg["model"]
    num_dims = math.prod(shape)
    ours = ours_maf(shape, levels, model)
    dist, nets = tfp_maf(model, levels, num_dims)
    images = random_images(shape, levels, batch)

    def tfp_log_prob(x):
        v = tf.reshape(tf.cast(x, tf.float32), [-1, num_dims])
        return dist.log_prob(v + tf.random.uniform(tf.shape(v)))

    tfp_log_prob(images[:1])  # builds TFP's networks
    tfp_vars = variables_of(nets)
    m = measure(step_tasks({"ours": (ours_step(ours), images),
                            "tfp": (tfp_step(tfp_log_prob, tfp_vars, num_dims), images)}, batch), *timing)
    return {"image_shape": shape, "batch": batch, **m, **ratios(m, ours_vs_tfp=("ours", "tfp")),
            "parameters": {"ours": parameters(ours.trainable_variables),
                           "ours_networks": parameters(variables_of(ours.mades)),
                           "ours_log_scale_bounds": parameters(ours.log_scale_bounds), "tfp": parameters(tfp_vars)}}


def iaf_train(cfg, timing):
    """K IAF layers, one MADE pass a layer (ours: `zb.inverse_autoregressive_flow`, orders alternating) vs TFP's."""
    batch, model, num_dims = cfg["batch"], cfg["model"], math.prod(cfg["image_shape"])
    mades = [MADE(2, model["hidden_units"], input_order=MAF.order(k), activation=model["activation"], seed=k,
                  name=f"iaf_made{k}") for k in range(model["num_layers"])]
    for made in mades:
        made.build((None, num_dims))
    ours = tfb.Chain([zb.inverse_autoregressive_flow(made, name=f"iaf{k}") for k, made in enumerate(mades)][::-1])
    layers, nets = _tfp_layers(model, num_dims, tfb.Invert, "tfp_iaf")
    theirs = tfb.Chain(layers[::-1])
    theirs.forward(tf.zeros([1, num_dims]))  # builds the networks
    ours_vars, tfp_vars = variables_of(mades), variables_of(nets)
    eps = tf.constant(np.random.default_rng(0).standard_normal((batch, num_dims)), tf.float32)
    m = measure(step_tasks({
        "ours": (train_step(iaf_loss(ours, num_dims), ours_vars, keras.optimizers.Adam(1e-3)), eps),
        "tfp": (train_step(iaf_loss(theirs, num_dims), tfp_vars, tf_keras.optimizers.Adam(1e-3)), eps)}, batch),
        *timing)
    return {"num_dims": num_dims, "batch": batch, **m, **ratios(m, ours_vs_tfp=("ours", "tfp")),
            "parameters": {"ours": parameters(ours_vars), "tfp": parameters(tfp_vars)}}


def sections(cfg, data_dir=None):
    """The suite's sections in order: (name, thunk)."""
    timing, c = (cfg["warmup"], cfg["repetitions"]), cfg["maf"]
    shape, levels = c["image_shape"], c["num_levels"]
    return [("maf_train", lambda: maf_train(c, timing)), ("iaf_train", lambda: iaf_train(c, timing)),
            ("maf_sample", lambda: compare_samplers(ours_maf(shape, levels, c["model"]),
                                                    tfp_maf(c["model"], levels, math.prod(shape))[0], c, shape))]


def targets(r):
    """The MAF and IAF steps' targets: at least as fast as TFP's."""
    nets, both = made_sizes(r["config"]["maf"]["model"]), "XLA off both, float32 both"
    t, i = r["maf_train"], r["iaf_train"]
    return [target(f"MAF training step >= TFP's ({shape_name(t['image_shape'])}, batch {t['batch']}, {nets}, {both})",
                   t["ours_vs_tfp"], 1.0),
            target(f"IAF training step >= TFP's (D = {i['num_dims']}, batch {i['batch']}, {nets}, {both})",
                   i["ours_vs_tfp"], 1.0)]
