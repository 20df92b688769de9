"""MAF (Papamakarios, Pavlakou and Murray, "Masked Autoregressive Flow for Density
Estimation", NeurIPS 2017, sections 3-4): the image as one vector of D = H*W*C
values through K affine autoregressive layers, each a MADE:

    v = x + u  ->  logit preprocessing  ->  [MAF layer k, batch norm k] for k < K  ->  z
    MAF layer (data -> noise):  u_d = (y_d - m_d(y_<d)) * exp(-s_d(y_<d))

The MADEs alternate natural and reversed orders (the paper reverses the order
between layers); a batch norm follows every layer (section 3.3, its appendix).
Base: a standard normal, or (`base="mog"`, MAF MoG) a MADE whose conditionals
p(z_d | z_<d) are mixtures of `num_components` Gaussians (section 4 "MADE MoG").
Class-conditional (`num_classes`, the conditional MAF of section 4): the labels'
one-hots are the context of every layer's MADE; the MoG base stays unconditional.

Density is one MADE pass a layer; sampling D sequential passes a layer
(`MADE.sequential`, or TFP's loop with `method="naive"`). The logit's log-det is
counted, so bits/dim are on the pixel scale (see `FlowModel`).
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from zoo import bijectors as zb
from zoo.layers import MADE, MovingMoments
from zoo.layers.made import alternating_order, maf_mades
from zoo.models.flow import FlowModel

tfb = tfp.bijectors

BASES = ("normal", "mog")


@keras.saving.register_keras_serializable(package="zoo")
class MAF(FlowModel):
    """Integer images `[batch, H, W, C]` <-> latents `[batch, H, W, C]` (raster order).

    Args:
      image_shape, num_levels: see `DensityModel`.
      num_layers: K, MAF layers (0 with base "mog": the paper's MADE MoG; with
        "normal": its Gaussian baseline).
      hidden_units: hidden widths of every MADE (the paper: 1024, 1024 on MNIST).
      activation: of the MADEs' hidden layers; dropout: on their hidden units while training.
      batch_norm: a batch-norm bijector after every layer; momentum: of its averages.
      base: "normal" or "mog" (a MADE mixture of Gaussians per dimension).
      num_components: mixture components of the "mog" base.
      num_classes: None, or classes of a class-conditional MAF (`labels [batch]`).
      alpha: logit preprocessing constant (the paper's lambda, 1e-6 on MNIST).
      eval_draws, seed: see `FlowModel`; mixed_precision (the MADEs' hidden layers), n_bits:
        see `DensityModel`, `FlowModel`.
    """

    def __init__(self, image_shape, num_levels, num_layers=5, hidden_units=(1024, 1024),
                 activation="relu", dropout=0.0, batch_norm=True, momentum=0.95, base="normal",
                 num_components=10, num_classes=None, alpha=1e-6, eval_draws=4, seed=None,
                 **kwargs):
        if kwargs.get("prior", "normal") != "normal":
            raise ValueError(f"MAF's prior is its `base`: base='mog' is the autoregressive one; got "
                             f"prior={kwargs['prior']!r}.")
        super().__init__(image_shape, num_levels, eval_draws=eval_draws, seed=seed, **kwargs)
        self.num_layers = int(num_layers)
        if self.num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}.")
        self.hidden_units = [int(u) for u in hidden_units]
        self.activation, self.dropout = activation, float(dropout)
        self.batch_norm, self.momentum = bool(batch_norm), float(momentum)
        if self.batch_norm:
            self.refuse_training_chains("batch_norm normalizes by the whole batch's moments")
        if base not in BASES:
            raise ValueError(f"base must be one of {BASES}, got {base!r}.")
        self.base, self.num_components = base, int(num_components)
        if self.num_components < 1:
            raise ValueError(f"num_components must be >= 1, got {num_components}.")
        if num_classes is not None and int(num_classes) < 1:
            raise ValueError(f"num_classes must be None or >= 1, got {num_classes}.")
        self.num_classes = None if num_classes is None else int(num_classes)
        self.alpha = zb.check_alpha(alpha)
        self._tfp_loop = False  # trace-time: sample with TFP's loop (`method="naive"`)

        self.mades = maf_mades(self.num_layers, self.hidden_units, seed=self.seed, name="made",
                               activation=activation, dropout=self.dropout, context_size=self.num_classes,
                               dtype=self.net_dtype)
        self.bns = ([MovingMoments(self.momentum, name=f"bn{k}") for k in range(self.num_layers)]
                    if self.batch_norm else [])
        # The base MADE continues the alternation; random output weights tell its
        # components apart.
        k = self.num_layers
        self.base_made = (MADE(3 * self.num_components, self.hidden_units, input_order=alternating_order(k),
                               activation=activation, dropout=self.dropout, seed=self.seed + k,
                               name=f"made{k}", dtype=self.net_dtype)
                          if base == "mog" else None)

    order = staticmethod(alternating_order)  # the input order of layer k's MADE

    def build(self, input_shape=None):
        # Per layer and dimension, the learned bound of the log-scale (`scale * tanh(r)`).
        self.log_scale_bounds = [self.add_weight(name=f"layer{k}_log_scale_bound",
                                                 shape=(self.num_dims,), initializer="ones")
                                 for k in range(self.num_layers)]
        super().build(input_shape)

    # ---- the flow -------------------------------------------------------------

    def _context(self, labels):
        return None if labels is None else tf.one_hot(labels, self.num_classes)

    def _batch_norm(self, layer, training):
        if training or not layer.built:
            return zb.BatchNorm(lambda x: layer(x, training=training))
        return zb.BatchNorm(layer.moving())

    def bijector(self, training=False, labels=None):
        """`v = x + u -> z`: logit, flatten to `[1, 1, D]`, the K layers (each MAF layer
        the inverse of TFP's `MaskedAutoregressiveFlow`, then its batch norm), unflatten."""
        layers = zb.maf_steps(self.mades, [bound.value for bound in self.log_scale_bounds],
                              self._context(labels), event_ndims=3, tfp_loop=self._tfp_loop, training=training)
        steps = [zb.logit_preprocess(self.model_levels, self.alpha), zb.Flatten(self.image_shape)]
        for k, layer in enumerate(layers):
            steps.append(tfb.Invert(layer))
            if self.batch_norm:
                steps.append(self._batch_norm(self.bns[k], training))
        steps.append(tfb.Invert(zb.Flatten(self.image_shape)))
        return tfb.Chain(steps[::-1])  # Chain applies its last bijector first

    def base_mixture(self):
        """The "mog" base's MADE (the flows' MADE MoG prior), or None: a standard normal."""
        return self.base_made

    # ---- sampling ---------------------------------------------------------------

    def _sample_naive(self, n, temperature, seed, labels=None):
        """TFP's loop: D whole MADE passes a layer (the base's MoG loop is the same)."""
        self._tfp_loop = True
        try:
            return self._sample(n, temperature, seed, labels)
        finally:
            self._tfp_loop = False

    def get_config(self):
        return {**super().get_config(), "num_layers": self.num_layers,
                "hidden_units": list(self.hidden_units), "activation": self.activation,
                "dropout": self.dropout,
                "batch_norm": self.batch_norm, "momentum": self.momentum, "base": self.base,
                "num_components": self.num_components, "num_classes": self.num_classes,
                "alpha": self.alpha}
