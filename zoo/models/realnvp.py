"""RealNVP (Dinh, Sohl-Dickstein and Bengio, "Density estimation using Real NVP",
ICLR 2017), multi-scale architecture of section 3.6:

    scale i < last:  3 checkerboard couplings, squeeze, 3 channel couplings,
                     factor out half the channels, the rest on to scale i + 1
    last scale:      4 checkerboard couplings

Couplings alternate their mask (section 3.5) and, optionally, are each followed by
a batch-normalization bijector (section 3.7). The flow maps dequantized pixels
through the logit preprocessing (section 4.1) to a latent of the image's shape with
a standard normal base (all scales), see `FlowModel`.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from zoo import bijectors as zb
from zoo.layers import CouplingResNet, MovingMoments
from zoo.models.flow import FlowModel

tfb = tfp.bijectors


@keras.saving.register_keras_serializable(package="zoo")
class RealNVP(FlowModel):
    """Integer images `[batch, H, W, C]` <-> latents `[batch, H, W, C]`.

    Args:
      image_shape, num_levels: see `DensityModel`.
      num_scales: scales; H and W must be divisible by 2^(num_scales - 1), and the
        last scale at least 2x2.
      num_blocks, filters, norm: each coupling's `CouplingResNet`.
      flow_batch_norm: a batch-norm bijector after every coupling.
      momentum: of the flow batch norms' running averages.
      alpha: logit preprocessing constant.
      mixed_precision: None, or "bfloat16" / "float16" for the coupling networks'
        convolutions (the bijectors and log-dets stay float32).
      eval_draws, seed: see `FlowModel`.
    """

    def __init__(self, image_shape, num_levels, num_scales=2, num_blocks=4, filters=64,
                 norm="batch", flow_batch_norm=True, momentum=0.95, alpha=0.05,
                 eval_draws=4, seed=None, **kwargs):
        super().__init__(image_shape, num_levels, eval_draws=eval_draws, seed=seed, **kwargs)
        h, w, c = self.image_shape
        self.num_scales = int(num_scales)
        f = 2 ** (self.num_scales - 1) if self.num_scales >= 1 else 0
        if not f or h % f or w % f or min(h, w) < 2 * f:
            raise ValueError(f"num_scales={num_scales} needs num_scales >= 1 and H and W divisible "
                             f"by 2^(num_scales - 1), the last scale at least 2x2; got image_shape "
                             f"{self.image_shape}.")
        self.num_blocks, self.filters, self.norm = int(num_blocks), int(filters), norm
        self.flow_batch_norm, self.momentum = bool(flow_batch_norm), float(momentum)
        self.alpha = zb.check_alpha(alpha)
        if self.flow_batch_norm or norm == "batch":
            self.refuse_training_chains("batch norm (norm='batch' or flow_batch_norm) normalizes by "
                                        "the whole batch's moments")
        net_dtype = self.net_dtype
        # Per scale i (channels c * 2^i): checkerboard nets, channel nets (on the squeezed
        # tensor, 4x the channels), and a MovingMoments per coupling for its batch norm.
        self.checker_nets, self.channel_nets, self.checker_bns, self.channel_bns = [], [], [], []
        for i in range(self.num_scales):
            last = i == self.num_scales - 1
            channels = c * 2 ** i

            def net(ch, name):
                return CouplingResNet(ch, self.num_blocks, self.filters, norm, name=name,
                                      dtype=net_dtype)
            self.checker_nets.append([net(channels, f"scale{i}_checkerboard{k}")
                                      for k in range(4 if last else 3)])
            self.channel_nets.append([net(4 * channels, f"scale{i}_channel{k}")
                                      for k in range(0 if last else 3)])
            self.checker_bns.append(self._moments(f"scale{i}_checkerboard",
                                                  len(self.checker_nets[i])))
            self.channel_bns.append(self._moments(f"scale{i}_channel", len(self.channel_nets[i])))

    def _moments(self, name, count):
        if not self.flow_batch_norm:
            return []
        return [MovingMoments(self.momentum, name=f"{name}{k}_bn") for k in range(count)]

    def _steps(self, nets, moments, masks, training):
        """Couplings with alternating `masks`, each followed by its batch norm if any,
        in data-to-latent order."""
        steps = []
        for k, net in enumerate(nets):
            mask = masks(k % 2)
            steps.append(zb.AffineCoupling(mask, self._conditioner(net, mask, training)))
            if moments:
                layer = moments[k]
                if training or not layer.built:
                    steps.append(zb.BatchNorm(lambda x, layer=layer: layer(x, training=training)))
                else:
                    steps.append(zb.BatchNorm(layer.moving()))
        return steps

    @staticmethod
    def _conditioner(net, mask, training):
        """`b * x -> (t, s)` from `net` on the kept half and the mask itself."""
        return lambda kept: net(tf.concat([kept, mask * tf.ones_like(kept)], -1), training=training)

    def bijector(self, training=False):
        """`v = x + u -> z`: the logit preprocessing, then the scales as nested factor-outs."""
        h, w, c = self.image_shape
        flow = None
        for i in reversed(range(self.num_scales)):
            hi, wi, ci = h // 2 ** i, w // 2 ** i, c * 2 ** i
            steps = self._steps(self.checker_nets[i], self.checker_bns[i],
                                lambda p: zb.checkerboard_mask(hi, wi, p), training)
            if flow is not None:
                steps += [zb.Squeeze(),
                          *self._steps(self.channel_nets[i], self.channel_bns[i],
                                       lambda half: zb.channel_mask(4 * ci, half), training),
                          zb.FactorOut(flow), tfb.Invert(zb.Squeeze())]
            flow = tfb.Chain(steps[::-1])  # Chain applies its last bijector first
        return tfb.Chain([flow, zb.logit_preprocess(self.model_levels, self.alpha)])

    def get_config(self):
        return {**super().get_config(), "num_scales": self.num_scales,
                "num_blocks": self.num_blocks, "filters": self.filters, "norm": self.norm,
                "flow_batch_norm": self.flow_batch_norm, "momentum": self.momentum,
                "alpha": self.alpha}
