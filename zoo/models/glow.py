"""Glow (Kingma and Dhariwal, "Glow: Generative Flow with Invertible 1x1
Convolutions", NeurIPS 2018), multi-scale architecture of section 3 / Figure 2:

    scale i < last:  squeeze, K steps, split (learned conditional Gaussian prior)
    last scale:      squeeze, K steps, learned top prior
    step (Table 1):  actnorm -> invertible 1x1 conv -> coupling (additive or affine)

Pixels are dequantized and scaled to [-1/2, 1/2) (`ScalePixels`, log-det -D log L,
openai/glow), or mapped through RealNVP's logit (`logit_preprocess`, `preprocess="logit"`).
The priors are standardizing bijectors (`gaussian_split` at each split, an actnorm
from `LearnedPrior` at the top), so the whole model is one bijector from pixels to
eps of the image's shape with a standard normal base (`FlowModel`): temperature T
scales eps, i.e. every prior's std, exactly as in the paper's section 5.

Actnorm's data-dependent initialization (section 3.1) is an explicit step,
`initialize(images)`: `zoo.training.train` runs it on the first batch before `fit`,
under the strategy (the statistics all-reduced across replicas, `ActNormParams`).
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from zoo import bijectors as zb
from zoo.layers import ActNormParams, GlowCouplingNet, Invertible1x1ConvWeight, LearnedPrior
from zoo.layers import ZeroConv2D
from zoo.models.flow import FlowModel

tfb = tfp.bijectors


@keras.saving.register_keras_serializable(package="zoo")
class Glow(FlowModel):
    """Integer images `[batch, H, W, C]` <-> latents eps `[batch, H, W, C]`.

    Args:
      image_shape, num_levels: see `DensityModel`.
      num_scales: scales of the multi-scale architecture (the paper's L, which it calls
        levels); H and W must be divisible by 2^num_scales.
      depth: K, steps of flow per scale.
      filters: width of the coupling networks (512 in the paper).
      net_actnorm: actnorm after the coupling networks' hidden convolutions, as
        openai/glow (False: biased convolutions, the layout of models saved before).
      coupling: "affine" (scale sigmoid(h + 2)) or "additive".
      permutation: "lu" (LU-decomposed 1x1 conv) or "conv" (plain, slogdet).
      learn_top: a learned top prior (else standard normal).
      num_classes: None, or classes of a class-conditional top prior (openai/glow's
        `ycond`: a learned embedding of the label added to the prior's mean and
        log-std); then `log_prob`, `sample`, `encode`, `decode` take `labels [batch]`.
      n_bits: None, or model the images reduced to 2^n_bits levels (e.g. 5-bit
        CelebA): `num_levels` must be a power of two >= 2^n_bits; log_prob is that of
        the reduced image, decode/sample return its levels on the input scale.
      mixed_precision: None, "bfloat16" or "float16" for the networks' convolutions.
      preprocess: "scale" (`v / L - 1/2`, openai/glow) or "logit" (RealNVP's
        `logit(alpha + (1 - 2 alpha) v / L)`, section 4.1 of Dinh et al. 2017).
      alpha: the logit's constant.
      eval_draws, seed: see `FlowModel`.
    """

    def __init__(self, image_shape, num_levels, num_scales=3, depth=32, filters=512,
                 coupling="affine", permutation="lu", learn_top=True, n_bits=None,
                 num_classes=None, net_actnorm=False, preprocess="scale",
                 alpha=0.05, eval_draws=4, seed=None, **kwargs):
        super().__init__(image_shape, num_levels, eval_draws=eval_draws, seed=seed, n_bits=n_bits,
                         **kwargs)
        h, w, c = self.image_shape
        self.num_scales, self.depth = int(num_scales), int(depth)
        f = 2 ** self.num_scales
        if self.num_scales < 1 or h % f or w % f:
            raise ValueError(f"num_scales={num_scales} needs num_scales >= 1 and H and W divisible "
                             f"by 2^num_scales; got image_shape {self.image_shape}.")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}.")
        if coupling not in ("affine", "additive"):
            raise ValueError(f"coupling must be 'affine' or 'additive', got {coupling!r}.")
        if permutation not in ("lu", "conv"):
            raise ValueError(f"permutation must be 'lu' or 'conv', got {permutation!r}.")
        if num_classes is not None and (int(num_classes) < 1 or not learn_top):
            raise ValueError(f"num_classes must be None or >= 1 with learn_top=True, got "
                             f"num_classes={num_classes}, learn_top={learn_top}.")
        if preprocess not in ("scale", "logit"):
            raise ValueError(f"preprocess must be 'scale' or 'logit', got {preprocess!r}.")
        self.preprocess, self.alpha = preprocess, zb.check_alpha(alpha)
        self.num_classes = int(num_classes) if num_classes is not None else None
        self.filters, self.net_actnorm = int(filters), bool(net_actnorm)
        self.coupling, self.permutation = coupling, permutation
        self.learn_top = bool(learn_top)
        net_dtype = self.net_dtype
        # Per scale i: channels after the squeeze ci = 4 * c * 2^i; K actnorms, 1x1 convs
        # and coupling nets; the split prior's net (all scales but the last); the top prior.
        # The layer names keep "level": saved weights are matched by them.
        self.actnorms, self.convs, self.nets, self.split_nets = [], [], [], []
        for i in range(self.num_scales):
            ci = 4 * c * 2 ** i
            half = ci // 2
            self.actnorms.append([ActNormParams(ci, name=f"level{i}_actnorm{k}")
                                  for k in range(self.depth)])
            self.convs.append([Invertible1x1ConvWeight(ci, lu=permutation == "lu",
                                                       name=f"level{i}_conv{k}")
                               for k in range(self.depth)])
            out = 2 * half if coupling == "affine" else half
            self.nets.append([GlowCouplingNet(out, self.filters, self.net_actnorm,
                                              name=f"level{i}_coupling{k}", dtype=net_dtype)
                              for k in range(self.depth)])
            if i < self.num_scales - 1:
                self.split_nets.append(ZeroConv2D(ci, name=f"level{i}_split_prior", dtype="float32"))
        self.top_prior = LearnedPrior(4 * c * 2 ** (self.num_scales - 1), self.num_classes,
                                      name="top_prior") if self.learn_top else None

    # ---- the flow -----------------------------------------------------------

    def _step(self, i, k):
        """Actnorm, 1x1 conv, coupling of scale i, step k, in data-to-latent order."""
        return [zb.ActNorm(self.actnorms[i][k].params()), self._conv(i, k),
                self._coupling(i, k, self.nets[i][k])]

    def _conv(self, i, k):
        return zb.Invertible1x1Conv(*self.convs[i][k].params())

    def _coupling(self, i, k, net):
        return zb.channel_coupling(net, self.convs[i][k].channels, affine=self.coupling == "affine")

    def _top(self, labels=None):
        if self.top_prior is None:
            return []
        mean, log_std = self.top_prior.params(labels)
        return [zb.ActNorm((-mean, -log_std))]  # eps = (z - mean) * exp(-log_std)

    def bijector(self, training=False, labels=None):
        """`v = x + u -> eps`: pixel scaling, then the scales as nested factor-outs;
        `labels [batch]` condition the top prior of a class-conditional model."""
        del training  # Glow has no batch statistics
        flow = None
        for i in reversed(range(self.num_scales)):
            steps = [zb.Squeeze()]
            for k in range(self.depth):
                steps += self._step(i, k)
            ci = 4 * self.image_shape[-1] * 2 ** i
            if flow is None:
                steps += self._top(labels)
            else:
                steps += [zb.gaussian_split(self.split_nets[i], ci), zb.FactorOut(flow)]
            steps.append(tfb.Invert(zb.Squeeze()))
            flow = tfb.Chain(steps[::-1])  # Chain applies its last bijector first
        return tfb.Chain([flow, self._pixels()])

    def _pixels(self):
        """The fixed map from dequantized pixels `v in [0, L)` into the flow."""
        if self.preprocess == "logit":
            return zb.logit_preprocess(self.model_levels, self.alpha)
        return zb.ScalePixels(self.model_levels)

    # ---- actnorm initialization -----------------------------------------------

    def actnorm_initialized(self):
        return bool(self.actnorms[0][0].initialized.numpy() > 0)

    def initialize(self, images, labels=None):
        """Data-dependent initialization of every actnorm from a batch of images: one
        pass through the scales in data-to-latent order (the dequantization's fixed
        draw), each actnorm set from the activations it receives, then applied; the
        coupling networks' actnorms likewise. A no-op for actnorms already initialized
        (a loaded or resumed model). `labels` are not needed (the pass stops before the
        top prior) and are accepted so any training batch can be passed."""
        del labels
        self.build_for_images()
        x = tf.cast(self.check_images(images) // self.bin_size, tf.float32)
        h = self._pixels().forward(x + self._noise(tf.shape(x)[0], training=False)[0])
        for i in range(self.num_scales):
            h = zb.Squeeze().forward(h)
            for k in range(self.depth):
                h = zb.ActNorm(self.actnorms[i][k].initialize(h)).forward(h)
                h = self._conv(i, k).forward(h)
                h = self._coupling(i, k, self.nets[i][k].initialize).forward(h)
            h = h[..., h.shape[-1] // 2:]  # the half that goes on (`FactorOut`)

    def get_config(self):
        return {**super().get_config(), "num_scales": self.num_scales, "depth": self.depth,
                "filters": self.filters, "coupling": self.coupling,
                "permutation": self.permutation, "learn_top": self.learn_top,
                "num_classes": self.num_classes, "net_actnorm": self.net_actnorm,
                "preprocess": self.preprocess, "alpha": self.alpha}
