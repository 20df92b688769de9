"""Glow (Kingma and Dhariwal, "Glow: Generative Flow with Invertible 1x1
Convolutions", NeurIPS 2018): presets and published numbers.

Sources of the `paper` values: the paper (section 5, Table 2, appendix) and the
commands in openai/glow's README ("CIFAR-10 / ImageNet 32x32 / ImageNet 64x64
Quantitative result") with `train.py`'s defaults for what they leave out, checked
against its `train.py`, `model.py`, `optim.py` and `tfops.py`.
"""

from reproduce.runs import Paper, by_dataset

# openai/glow's CIFAR-10 command (see the `paper` preset).
_PAPER_MODEL = {"num_scales": 3, "depth": 32, "filters": 512, "coupling": "affine",
                "permutation": "conv", "net_actnorm": True, "learn_top": True}
_PAPER_TRAIN = {"epochs": 1000, "batch_size": 512, "patience": 50,
                "optimizer": {"name": "adamax", "learning_rate": 1e-3, "warmup": 977,
                              "beta_2": 1 - 1 / 98}}

PRESETS = {
    # Seconds: what the tests run.
    "smoke": {
        "dataset": "digits",
        "model": {"num_scales": 1, "depth": 1, "filters": 8, "eval_draws": 2},
        "train": {"epochs": 2, "batch_size": 64, "optimizer": {"name": "adam", "learning_rate": 1e-3}},
    },
    # Two shared CPU cores, about 90 minutes on 8-bit MNIST (28x28 -> 2 scales, 14x14 and
    # 7x7): the paper's step (actnorm, LU 1x1 conv, affine coupling) at CPU size, K = 8 steps
    # per scale, 128 hidden channels with openai/glow's actnorm after each hidden convolution,
    # bfloat16 convolutions (the flow's math stays float32), RealNVP's logit preprocessing
    # instead of `v / L - 1/2` (it trained faster). Adam 2e-3 with a 200-step linear warm-up
    # and a per-step decay, batch 64; Polyak averaging and global-norm clipping against the
    # loss spikes of late epochs; training stops at the epoch end before 80 minutes would
    # pass. Two training chains a batch (the same loss and gradients): a faster step with one
    # thread per op. Trials: results/runs/glow/cpu-mnist.md.
    "cpu": {
        "model": {"num_scales": 2, "depth": 8, "filters": 128, "coupling": "affine",
                  "permutation": "lu", "net_actnorm": True, "preprocess": "logit",
                  "mixed_precision": "bfloat16", "eval_draws": 2, "training_chains": 2},
        "train": {"epochs": 40, "max_minutes": 80, "batch_size": 64,
                  "optimizer": {"name": "adam", "learning_rate": 2e-3, "warmup": 200,
                                "decay": 0.99995, "ema": 0.999, "global_clipnorm": 50.0}},
        "per_dataset": {
            # 8x8 digits, 1000 training images (15 steps an epoch): 2 scales (4x4, 2x2),
            # K = 8, 64 channels, the paper's pixel scaling, no net actnorm, float32, one
            # chain, early stopping on validation.
            "digits": {"model": {"num_scales": 2, "depth": 8, "filters": 64,
                                 "net_actnorm": False, "preprocess": "scale",
                                 "mixed_precision": None, "eval_draws": 4, "training_chains": 1},
                       "train": {"epochs": 100, "patience": 20, "batch_size": 64,
                                 "optimizer": {"name": "adam", "learning_rate": 1e-3}}},
        },
    },
    # The paper's quantitative runs (Table 2) as openai/glow's README commands run them, on 8
    # MPI processes: --n_level 3 --depth 32 (CIFAR-10), 3 / 48 (ImageNet 32x32), 4 / 48
    # (ImageNet 64x64); all --flow_permutation 2 --flow_coupling 1 (affine) --learntop --lr
    # 0.001 --n_bits_x 8. train.py's defaults: --width 512, adamax, --n_batch_train 64 a
    # process (global 512; scaled by (32 / size)^2, so 128 at 64x64); --epochs_warmup 10 over
    # its fixed epoch of --n_train 50000 images, counted as 512 a step at every size: 977
    # steps. Adamax's beta2 is 1 - 1/98 (optim.py: 98 steps an epoch). As the code runs, not
    # the paper's LU section: model.py's plain 1x1 conv W (the LU form sits in a dead `else`);
    # actnorm after the coupling nets' hidden convs (tfops.conv2d's default); no Polyak
    # weights at evaluation (train.py's polyak_swap calls are commented out).
    # Departs from the code: a per-channel top prior and zero padding (openai/glow pads with
    # an extra edge-indicator channel, which also makes its learned top prior vary at borders).
    # The paper trained to convergence; `epochs` is a ceiling with early stopping.
    "paper": {
        "dataset": "cifar10",
        "model": _PAPER_MODEL,
        "train": _PAPER_TRAIN,
        "per_dataset": {
            "downsampled_imagenet/32x32": {"model": {"depth": 48}},
            "downsampled_imagenet/64x64": {"model": {"num_scales": 4, "depth": 48},
                                           "train": {"batch_size": 128}},
        },
    },
    # The paper's ablation (section 5.1, Figure 3) with additive coupling
    # (--flow_coupling 0), otherwise the CIFAR-10 settings above.
    "paper_additive": {
        "dataset": "cifar10",
        "model": {**_PAPER_MODEL, "coupling": "additive"},
        "train": _PAPER_TRAIN,
    },
}

# The autoregressive prior: the `cpu` preset with a MADE MoG (5 Gaussians per dimension,
# 2 x 512 units) over eps, the latent its learned split and top priors standardize, in
# place of the standard normal; same budget: an A/B against `cpu`
# (results/runs/glow/cpu_ar-mnist.md).
PRESETS["cpu_ar"] = {**PRESETS["cpu"], "name": "glow_ar",
                     "model": {**PRESETS["cpu"]["model"], "prior": "autoregressive",
                               "prior_hidden_units": [512, 512], "prior_components": 5}}

PUBLISHED = {
    "cifar10": {"bits_per_dim": 3.35, "source": "Kingma and Dhariwal 2018, Table 2"},
    "downsampled_imagenet/32x32": {"bits_per_dim": 4.09, "source": "Kingma and Dhariwal 2018, Table 2"},
    "downsampled_imagenet/64x64": {"bits_per_dim": 3.81, "source": "Kingma and Dhariwal 2018, Table 2"},
    "mnist": {"bits_per_dim": 1.05, "source": "FFJORD, Grathwohl et al. 2019, Table 2 (Glow)"},
}

# The driver writes one row of samples per temperature (the paper's Figure 8 sweeps
# T; T = 0 decodes the prior means) and, for models that interpolate, a latent
# interpolation between two test images.
PAPER = Paper("glow", model="Glow", dataset="mnist", presets=PRESETS,
              published=by_dataset(PUBLISHED), temperatures=(0.0, 0.5, 0.7, 1.0))
