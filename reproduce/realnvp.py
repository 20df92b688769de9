"""RealNVP (Dinh, Sohl-Dickstein and Bengio, "Density estimation using Real NVP",
ICLR 2017): presets and published numbers."""

from reproduce.runs import Paper, by_dataset

PRESETS = {
    # Seconds: what the tests run.
    "smoke": {
        "dataset": "digits",
        "model": {"num_scales": 1, "num_blocks": 0, "filters": 8, "norm": "none",
                  "flow_batch_norm": False, "eval_draws": 2},
        "train": {"epochs": 2, "batch_size": 64, "optimizer": {"name": "adam", "learning_rate": 1e-3}},
    },
    # Two shared CPU cores, about 90 minutes on 8-bit MNIST: the paper's multi-scale
    # architecture at CPU width (2 blocks of 32 filters instead of 8 of 64). The paper's batch
    # norm between couplings stays (without it training starts far slower); the batch norms
    # inside s and t are off (they nearly double a CPU step). bfloat16 convolutions (the
    # flow's math stays float32). Adam 1e-3 as the paper (appendix), decayed per step; its L2
    # 5e-5 omitted. Training stops at the epoch end before 80 minutes would pass.
    "cpu": {
        "model": {"num_scales": 3, "num_blocks": 2, "filters": 32, "norm": "none",
                  "flow_batch_norm": True, "mixed_precision": "bfloat16", "eval_draws": 2},
        "train": {"epochs": 30, "max_minutes": 80, "batch_size": 64,
                  "optimizer": {"name": "adam", "learning_rate": 1e-3, "decay": 0.99993}},
        "per_dataset": {
            # 8x8 digits: two scales (8 -> 4), float32, 64 filters; 1000 training images
            # (15 steps an epoch), so many short epochs and early stopping on validation.
            "digits": {"model": {"num_scales": 2, "num_blocks": 2, "filters": 64,
                                 "mixed_precision": None, "eval_draws": 4},
                       "train": {"epochs": 60, "patience": 15, "batch_size": 64,
                                 "optimizer": {"name": "adam", "learning_rate": 1e-3}}},
        },
    },
    # The paper's settings (section 4.1), for CIFAR-10 (Table 1: 3.49): Adam with default
    # hyper-parameters (lr 1e-3), batch 64, alpha = 0.05 in the logit, ResNet s and t with batch
    # norm, batch norm between couplings, an isotropic unit Gaussian prior. Per dataset:
    # CIFAR-10 8 residual blocks of 64 feature maps, downscaled once (2 scales); ImageNet 32x32
    # 4 blocks of 32 maps; 64x64 datasets 2 blocks of 32 maps, more scales (scale counts for
    # ImageNet and CelebA are our reading of the text: check them before a paper run).
    # Not built: weight normalization in s and t; not applied: the L2 5e-5 on the scales.
    "paper": {
        "dataset": "cifar10",
        "model": {"num_scales": 2, "num_blocks": 8, "filters": 64, "norm": "batch",
                  "flow_batch_norm": True, "alpha": 0.05},
        "train": {"epochs": 200, "batch_size": 64, "patience": 20,
                  "optimizer": {"name": "adam", "learning_rate": 1e-3}},
        "per_dataset": {
            "downsampled_imagenet/32x32": {"model": {"num_scales": 4, "num_blocks": 4,
                                                     "filters": 32}},
            "downsampled_imagenet/64x64": {"model": {"num_scales": 5, "num_blocks": 2,
                                                     "filters": 32}},
            "celeb_a": {"model": {"num_scales": 5, "num_blocks": 2, "filters": 32}},
        },
    },
}

# The autoregressive prior (the lecture's p(z_1) p(z_2 | z_1) ...): the `cpu` preset with a
# MADE MoG (5 Gaussians per dimension, 2 x 512 units) over the whole latent in place of the
# standard normal, same budget: an A/B against `cpu` (results/runs/realnvp/cpu_ar-mnist.md).
PRESETS["cpu_ar"] = {**PRESETS["cpu"], "name": "realnvp_ar",
                     "model": {**PRESETS["cpu"]["model"], "prior": "autoregressive",
                               "prior_hidden_units": [512, 512], "prior_components": 5}}

PUBLISHED = {
    "cifar10": {"bits_per_dim": 3.49, "source": "Dinh et al. 2017, Table 1"},
    "downsampled_imagenet/32x32": {"bits_per_dim": 4.28, "source": "Dinh et al. 2017, Table 1"},
    "downsampled_imagenet/64x64": {"bits_per_dim": 3.98, "source": "Dinh et al. 2017, Table 1"},
    "celeb_a": {"bits_per_dim": 3.02, "source": "Dinh et al. 2017, Table 1"},
    "mnist": {"bits_per_dim": 1.06, "source": "FFJORD, Grathwohl et al. 2019, Table 2 (RealNVP)"},
    "digits": {"bits_per_dim": 3.80, "source": "jmtomczak/intro_dgm (lecture companion code), "
                                               "RealNVP with MLP couplings, about 3.80"},
}

# The driver writes a figure with one row of samples per temperature (section 4 of the
# paper shows samples at T = 1; lower temperatures trade diversity for quality).
PAPER = Paper("realnvp", model="RealNVP", dataset="mnist", presets=PRESETS,
              published=by_dataset(PUBLISHED), temperatures=(0.5, 0.7, 1.0))
