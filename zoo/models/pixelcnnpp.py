"""PixelCNN++ (Salimans, Karpathy, Chen and Kingma 2017, "PixelCNN++: Improving the
PixelCNN with Discretized Logistic Mixture Likelihood and Other Modifications", ICLR).

    log p(x) = sum_i log DLM(x_i | theta_i(x_<i)),

one discretized logistic mixture (`zoo.distributions.DiscretizedLogisticMixture`) per
pixel, its colours linearly dependent within the pixel (eq. 3), so the network sees only
earlier pixels: no masks over colours. theta comes from two streams of shifted
convolutions (section 2.4, Figure 2): u sees the rows above, ul the rows above and the
pixels to the left. Over `num_scales` resolutions an up pass of gated ResNet blocks
downsamples by strided convolutions (2.3); a down pass upsamples by transposed ones, each
block taking the matching up-pass output as a shortcut (2.5). Dropout inside every block
(2.6); weight normalization with data-dependent initialization, as openai/pixel-cnn.
Optionally distribution augmentation (`zoo.models.distribution_augmentation`): trained on
transformed images conditioned on the transform, evaluated and sampled untransformed, or
as the mixture over the transforms (an ensemble over pixel orderings).
"""

import math

import keras
import tensorflow as tf

from zoo.distributions import mixture_from_params, mixture_num_params
from zoo.layers.gated_pixelcnn import shift_down
from zoo.layers.gated_resnet import GatedResNet
from zoo.layers.shifted_conv2d import (DownRightShiftedConv2D, DownRightShiftedConv2DTranspose,
                                       DownShiftedConv2D, DownShiftedConv2DTranspose, shift_right)
from zoo.models.base import DensityModel, centered_pixels
from zoo.models.conditional import check_indices
from zoo.models.distribution_augmentation import apply_transforms, check_augmentations, every_transform, inverses
from zoo.models.pixelcnnpp_sampling import CachedSampler


@keras.saving.register_keras_serializable(package="zoo")
class PixelCNNPlusPlus(DensityModel):
    """PixelCNN++ over integer images `[b, H, W, C]` (C = 1 or 3) in `[0, num_levels)`.

    Args:
      image_shape, num_levels: see `DensityModel`; H and W divisible by 2^(num_scales - 1).
      nr_resnet: gated ResNet blocks per resolution in the up pass (nr_resnet + 1 in the
        down pass after each upsampling, as openai/pixel-cnn).
      filters: feature maps of both streams.
      nr_logistic_mix: K, the mixture's components.
      num_scales: resolutions (3 in the paper: 32, 16, 8 on CIFAR-10).
      dropout: rate inside every block while training.
      weight_norm: weight-normalized convolutions, initialized from the first training batch.
      num_classes: classes of the condition (None: unconditional): `log_prob(images,
        labels)`, `sample(n, labels=...)`, `fit` on `(images, labels)`.
      min_log_scale: lower bound on the logistics' log-scales (-7 in openai/pixel-cnn).
      augmentations: None, or transform names starting with "identity" (e.g. all of
        `distribution_augmentation.TRANSFORMS`): while training each image is transformed
        by one drawn uniformly and the network is given its one-hot index with the label
        (Jun et al. 2020); log_prob and sampling use the identity.
      augmentation_mixture: log_prob and sampling use the uniform mixture over the
        transforms instead, p(x) = (1/T) sum_t p(t(x) | t), each term a density of x (t
        permutes pixel positions): an ensemble over T pixel orderings sharing the network
        (Uria et al. 2014); training keeps the augmented objective, by Jensen a lower bound
        on the mixture's log-likelihood.
      mixed_precision: None, "bfloat16" or "float16" for the network (variables, the
        mixture's parameters and the likelihood stay float32).
    """

    capabilities = frozenset({"autoregressive"})  # `cached_pass`

    def __init__(self, image_shape, num_levels, nr_resnet=5, filters=160, nr_logistic_mix=10,
                 num_scales=3, dropout=0.5, weight_norm=True, num_classes=None, min_log_scale=-7.0,
                 augmentations=None, augmentation_mixture=False, **kwargs):
        super().__init__(image_shape, num_levels, **kwargs)
        h, w, c = self.image_shape
        if c not in (1, 3):
            raise ValueError(f"PixelCNNPlusPlus models 1 (grey) or 3 (RGB) colours, got image_shape {self.image_shape}.")
        if int(nr_resnet) < 0 or int(filters) < 1 or int(nr_logistic_mix) < 1 or int(num_scales) < 1:
            raise ValueError(f"Expected nr_resnet >= 0, filters >= 1, nr_logistic_mix >= 1, num_scales >= 1; "
                             f"got {nr_resnet}, {filters}, {nr_logistic_mix}, {num_scales}.")
        if int(nr_resnet) == 0 and int(num_scales) == 1:  # u_in would be a variable without a gradient
            raise ValueError("nr_resnet=0 with num_scales=1 leaves the down stream (u) out of the output; "
                             "expected nr_resnet >= 1 or num_scales >= 2.")
        factor = 2 ** (int(num_scales) - 1)
        if h % factor or w % factor:
            raise ValueError(f"image height and width must be divisible by 2^(num_scales - 1) = {factor}, "
                             f"got {h} x {w} with num_scales={num_scales}.")
        if num_classes is not None and int(num_classes) < 1:
            raise ValueError(f"num_classes must be None or >= 1, got {num_classes}.")
        self.augmentations = check_augmentations(augmentations, self.image_shape)
        if self.augmentations:  # draws each training image's transform; seeded by Keras' global seed
            self.augmentation_seed = keras.random.SeedGenerator(name="augmentation_seed")
        if augmentation_mixture and not self.augmentations:
            raise ValueError("augmentation_mixture=True needs augmentations to mix over, got augmentations=None.")
        self.augmentation_mixture = bool(augmentation_mixture)
        dtype = self.net_dtype
        self.nr_resnet, self.filters = int(nr_resnet), int(filters)
        self.nr_logistic_mix, self.num_scales = int(nr_logistic_mix), int(num_scales)
        self.dropout, self.weight_norm = float(dropout), bool(weight_norm)
        self.num_classes = int(num_classes) if num_classes is not None else None
        self.min_log_scale = float(min_log_scale)
        f, wn = self.filters, self.weight_norm

        def block(direction, name):
            return GatedResNet(direction, self.dropout, wn, name=name, dtype=dtype)

        self.u_in = DownShiftedConv2D(f, (2, 3), weight_norm=wn, name="u_in", dtype=dtype)
        self.ul_in_above = DownShiftedConv2D(f, (1, 3), weight_norm=wn, name="ul_in_above", dtype=dtype)
        self.ul_in_left = DownRightShiftedConv2D(f, (2, 1), weight_norm=wn, name="ul_in_left", dtype=dtype)
        self.up, self.down, self.downsample, self.upsample = [], [], [], []
        for s in range(self.num_scales):
            if s:
                self.downsample.append((
                    DownShiftedConv2D(f, strides=2, weight_norm=wn, name=f"u_down_{s}", dtype=dtype),
                    DownRightShiftedConv2D(f, strides=2, weight_norm=wn, name=f"ul_down_{s}", dtype=dtype)))
                self.upsample.append((
                    DownShiftedConv2DTranspose(f, weight_norm=wn, name=f"u_up_{s}", dtype=dtype),
                    DownRightShiftedConv2DTranspose(f, weight_norm=wn, name=f"ul_up_{s}", dtype=dtype)))
            self.up.append([(block("down", f"up_{s}_{i}_u"), block("down_right", f"up_{s}_{i}_ul"))
                            for i in range(self.nr_resnet)])
            self.down.append([(block("down", f"down_{s}_{i}_u"), block("down_right", f"down_{s}_{i}_ul"))
                              for i in range(self.nr_resnet + (1 if s < self.num_scales - 1 else 0))])
        # The mixture's parameters come out of a float32 layer whatever the network's precision.
        self.head = DownRightShiftedConv2D(self.num_params, (1, 1), weight_norm=wn, name="head", dtype="float32")

    @property
    def num_params(self):
        """Per pixel: K logits, C K means, C K log-scales, C (C - 1) / 2 K coefficients."""
        return mixture_num_params(self.image_shape[-1], self.nr_logistic_mix)

    @property
    def net_dtype_name(self):
        """The dtype the network computes in (float32, or 16 bits under `mixed_precision`)."""
        return self.u_in.compute_dtype

    def scale(self, images):
        """int32 `[b, H, W, C]` -> float in [-1, 1], in the network's compute dtype."""
        return centered_pixels(images, self.num_levels, self.net_dtype_name)

    def features(self, x, cond, training):
        """The two streams (Figure 2): `[b, H, W, C]` -> `[b, H, W, filters]` (the ul stream)."""
        x = tf.concat([x, tf.ones_like(x[..., :1])], axis=-1)  # a channel of ones marks the image from padding
        u = shift_down(self.u_in(x, training=training))
        ul = (shift_down(self.ul_in_above(x, training=training))
              + shift_right(self.ul_in_left(x, training=training)))
        us, uls = [u], [ul]
        for s in range(self.num_scales):
            if s:
                down_u, down_ul = self.downsample[s - 1]
                us.append(down_u(us[-1], training=training))
                uls.append(down_ul(uls[-1], training=training))
            for block_u, block_ul in self.up[s]:
                us.append(block_u(us[-1], cond=cond, training=training))
                uls.append(block_ul(uls[-1], us[-1], cond=cond, training=training))
        u, ul = us.pop(), uls.pop()
        for s in reversed(range(self.num_scales)):
            if s < self.num_scales - 1:
                up_u, up_ul = self.upsample[s]
                u, ul = up_u(u, training=training), up_ul(ul, training=training)
            for block_u, block_ul in self.down[s]:
                u = block_u(u, us.pop(), cond=cond, training=training)
                ul = block_ul(ul, tf.concat([u, uls.pop()], axis=-1), cond=cond, training=training)
        return ul

    def condition(self, labels, augmentation, n, dtype):
        """The blocks' condition `[n, d]`: the one-hot label (conditional model) and the one-hot
        transform index (augmented model; None: the identity, 0); None when neither."""
        parts = [tf.one_hot(labels, self.num_classes, dtype=dtype)] if self.num_classes else []
        if self.augmentations:
            if augmentation is None:
                augmentation = tf.zeros([n], tf.int32)
            parts.append(tf.one_hot(augmentation, len(self.augmentations), dtype=dtype))
        return tf.concat(parts, axis=-1) if parts else None

    def params_from_inputs(self, x, labels=None, training=False, augmentation=None):
        """Scaled images `[b, H, W, C]` -> per-pixel mixture parameters `[b, H, W, num_params]`
        float32; `augmentation`: int `[b]` transform indices (None: identity). Differentiable
        in `x`: the causality tests take gradients through it."""
        cond = self.condition(labels, augmentation, tf.shape(x)[0], x.dtype)
        h = self.features(x, cond, training)
        return tf.cast(self.head(tf.nn.elu(h), training=training), tf.float32)

    def distribution(self, params):
        """`[..., num_params]` -> `DiscretizedLogisticMixture` with batch shape `[...]`, event `[C]`.
        Log-scales are bounded below by `min_log_scale`, coefficients by tanh (openai/pixel-cnn)."""
        return mixture_from_params(params, self.image_shape[-1], self.nr_logistic_mix, self.num_levels,
                                   self.min_log_scale)

    def initialize(self, images, labels=None):
        """Weight norm's data-dependent initialization: one training-mode pass over the
        batch sets every convolution's g and bias (a no-op once done)."""
        if self.weight_norm:
            self.log_prob(images, labels, training=True)

    def _log_prob(self, images, training, labels=None):
        if training and self.augmentations:
            ids = keras.random.randint(tf.shape(images)[:1], 0, len(self.augmentations),
                                       seed=self.augmentation_seed, dtype="int32")
            return self._log_prob_under(apply_transforms(images, ids, self.augmentations), ids, labels, training)
        if self.augmentation_mixture:
            return self._mixture_log_prob(images, labels, training)
        return self._log_prob_under(images, None, labels, training)

    def _log_prob_under(self, images, ids, labels, training=False):
        """log p(y | t) per image `[b]` for images y already transformed by t = `augmentations[ids]`
        (ids None: the identity, or a model without augmentations)."""
        params = self.params_from_inputs(self.scale(images), labels, training=training, augmentation=ids)
        return tf.reduce_sum(self.distribution(params).log_prob(images), axis=[1, 2])

    def _mixture_log_prob(self, images, labels, training):
        """log (1/T) sum_t p(t(x) | t), `[b]`: each image under every transform, then logsumexp."""
        count, n = len(self.augmentations), tf.shape(images)[0]
        every = tf.reshape(every_transform(images, self.augmentations),  # row i * T + t: image i under t
                           tf.concat([[n * count], tf.shape(images)[1:]], 0))
        labels = tf.repeat(labels, count) if labels is not None else None
        each = self._log_prob_under(every, tf.tile(tf.range(count), [n]), labels, training)
        return tf.reduce_logsumexp(tf.reshape(each, [n, count]), axis=1) - math.log(count)

    def augmented_log_prob(self, images, ids, labels=None):
        """log p(t(x) | t) per image, `[b]` nats, for t = `augmentations[ids[i]]` (the
        training objective of distribution augmentation, its draw of t fixed; ids 0 give
        `log_prob` unless `augmentation_mixture`). `ids`: integers `[b]` in [0, len(augmentations))."""
        if not self.augmentations:
            raise ValueError("This PixelCNNPlusPlus has no augmentations (augmentations=None).")
        self.build_for_images()
        images = self.check_images(images)
        labels = self.check_labels(labels, images.shape[0])
        ids = check_indices(ids, len(self.augmentations), images.shape[0], "transform ids")
        with self.float32_network():
            return self._log_prob_under(apply_transforms(images, ids, self.augmentations), ids, labels)

    def _sample(self, n, temperature, seed, labels=None):
        """Cached sampling (`zoo.models.pixelcnnpp_sampling`; Ramachandran et al. 2017): per
        pixel only the positions of the ul stream that depend on it, per row the u stream.
        Draws the very images `_sample_naive` draws for the same seed."""
        ids = self._sample_transforms(n, seed)
        cond = self.condition(labels, ids, n, self.net_dtype_name)

        def draw(d, mixture):  # pixel d with seed fold_in(seed, d), as `_sample_naive`
            return mixture.tempered_sample(temperature, tf.random.experimental.stateless_fold_in(seed, d))

        return self._untransform(CachedSampler(self, n, cond).run(draw), ids)

    def cached_pass(self, n, choose, labels=None, augmentation=None):
        """The cached sampler's incremental pass (`pixelcnnpp_sampling.CachedSampler.run`):
        value d = (r W + c) C + g of `n` images is `choose(d, log_p)` (int32 `[n]`) given
        its exact conditional's log-probabilities `log_p [n, L]` float32
        (`DiscretizedLogisticMixture.draw`), the coded value when coding. `labels`: int32
        `[n]` of a class-conditional model, else None; `augmentation`: int32 `[n]`
        transform ids t of an augmented model (None: the identity), for images t(x)
        under p(. | t) (under `augmentation_mixture`, one component of p(x)). Returns
        int32 `[n, H, W, C]`, as chosen (transformed)."""
        channels = self.image_shape[-1]
        cond = self.condition(labels, augmentation, n, self.net_dtype_name)

        def code(d, mixture):
            return mixture.draw(lambda g, log_p: choose(d * channels + g, log_p))

        return CachedSampler(self, n, cond).run(code)

    def _sample_naive(self, n, temperature, seed, labels=None):
        """H * W passes of the whole network, each drawing one pixel's colours from its
        mixture (`DiscretizedLogisticMixture.tempered_sample`)."""
        height, width, c = self.image_shape
        ids = self._sample_transforms(n, seed)

        def step(d, images):
            params = self.params_from_inputs(self.scale(images), labels, augmentation=ids)[:, d // width, d % width]
            value = self.distribution(params).tempered_sample(
                temperature, tf.random.experimental.stateless_fold_in(seed, d))
            where = tf.reshape(tf.one_hot(d, height * width, dtype=tf.int32), [1, height, width, 1])
            return d + 1, images + where * value[:, None, None, :]

        _, images = tf.while_loop(lambda d, _: d < height * width, step,
                                  (tf.constant(0), tf.zeros([n, height, width, c], tf.int32)))
        return self._untransform(images, ids)

    def _sample_transforms(self, n, seed):
        """The mixture's component of each image, drawn from `seed` (None: no mixture)."""
        if not self.augmentation_mixture:
            return None
        return tf.random.stateless_uniform([n], tf.random.experimental.stateless_fold_in(seed, -2),
                                           0, len(self.augmentations), dtype=tf.int32)

    def _untransform(self, images, ids):
        """Image i drawn from p(. | t_i) mapped back by t_i's inverse (ids None: as drawn)."""
        return images if ids is None else apply_transforms(images, ids, inverses(self.augmentations))

    def get_config(self):
        return {**super().get_config(), "nr_resnet": self.nr_resnet, "filters": self.filters,
                "nr_logistic_mix": self.nr_logistic_mix, "num_scales": self.num_scales,
                "dropout": self.dropout, "weight_norm": self.weight_norm,
                "num_classes": self.num_classes, "min_log_scale": self.min_log_scale,
                "augmentations": list(self.augmentations) if self.augmentations else None,
                "augmentation_mixture": self.augmentation_mixture}

