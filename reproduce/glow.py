"""Glow (Kingma and Dhariwal, "Glow: Generative Flow with Invertible 1x1
Convolutions", NeurIPS 2018): presets and published numbers.

Sources of the `paper` values: the paper (section 5, Table 2, appendix) and the
commands in openai/glow's README ("CIFAR-10 / ImageNet 32x32 / ImageNet 64x64
Quantitative result") with `train.py`'s defaults for what they leave out.
"""

MODEL = "Glow"
DATASET = "mnist"

PRESETS = {
    # Seconds: what the tests run.
    "smoke": {
        "dataset": "digits",
        "model": {"num_scales": 1, "depth": 1, "hidden_channels": 8, "eval_draws": 2},
        "train": {"epochs": 2, "batch_size": 64, "optimizer": {"name": "adam", "learning_rate": 1e-3}},
    },
    # Two shared CPU cores, about 90 minutes on 8-bit MNIST (28x28 -> 2 levels, 14x14
    # and 7x7): the paper's step (actnorm, LU 1x1 conv, affine coupling) at CPU size,
    # K = 8 steps per level, 128 hidden channels, bfloat16 convolutions (the flow's
    # math stays float32). Adam 5e-4 (the paper's 1e-3 comes with a 10-epoch linear
    # warm-up we do not have), batch 64. Measured: 2.022 test bits/dim after 5 epochs in
    # 19.9 min (validation 2.93, 2.29, 2.13, 2.04, 2.03): far from the 1.25 target and
    # from RealNVP's cpu preset (1.56 after 2 epochs); not shipped to the hub. Tried for 3
    # epochs (validation by epoch / test; branches exp-g1, exp-g2): net actnorm + warm-up
    # 400 + lr 1e-3 x 0.99995^step 3.263, 2.073, 1.944 / 1.937; the same with openai/glow's
    # actnorm log-scale factor 3: 2.687, 2.240, 2.006 / 2.000.
    "cpu": {
        "model": {"num_scales": 2, "depth": 8, "hidden_channels": 128, "coupling": "affine",
                  "permutation": "lu", "mixed_precision": "bfloat16", "eval_draws": 2},
        "train": {"epochs": 5, "batch_size": 64,
                  "optimizer": {"name": "adam", "learning_rate": 5e-4}},
        "per_dataset": {
            # 8x8 digits, 1000 training images (15 steps an epoch): 2 levels (4x4, 2x2),
            # K = 8, 64 channels, float32, early stopping on validation; about 10
            # minutes (0.15 s a step; tracing the two train functions takes 4 of them).
            "digits": {"model": {"num_scales": 2, "depth": 8, "hidden_channels": 64,
                                 "mixed_precision": None, "eval_draws": 4},
                       "train": {"epochs": 100, "patience": 20, "batch_size": 64,
                                 "optimizer": {"name": "adam", "learning_rate": 1e-3}}},
        },
    },
    # The paper's quantitative runs (Table 2), as openai/glow's README commands:
    #   CIFAR-10:        --n_level 3 --depth 32 --flow_permutation 2 --flow_coupling 1
    #                    --learntop --lr 0.001 --n_bits_x 8
    #   ImageNet 32x32:  --n_level 3 --depth 48 (otherwise the same)
    #   ImageNet 64x64:  --n_level 4 --depth 48 (otherwise the same)
    # flow_permutation 2 = invertible 1x1 conv (LU-decomposed, the paper's section 3.2
    # "LU decomposition" used for the results); flow_coupling 1 = affine. train.py
    # defaults: --width 512 (hidden channels, as the paper's appendix), --optimizer
    # adamax, --n_batch_train 64 per MPI process (8 processes in the README commands:
    # global batch 512), --epochs_warmup 10 (linear learning-rate warm-up: not built
    # here), Polyak averaging of the weights with decay 1 - 1/(iterations per epoch)
    # (optim.py, --polyak_epochs 1; about 0.99 for CIFAR-10's 50000 images at batch
    # 512, used as `ema`; the same value is adamax's beta2 there, Keras' default 0.999
    # here). The paper trained to convergence; `epochs` is a ceiling with early stopping.
    "paper": {
        "model": {"num_scales": 3, "depth": 32, "hidden_channels": 512, "coupling": "affine",
                  "permutation": "lu", "learn_top": True},
        "train": {"epochs": 1000, "batch_size": 512, "patience": 50,
                  "optimizer": {"name": "adamax", "learning_rate": 1e-3, "ema": 0.99}},
        "per_dataset": {
            "downsampled_imagenet/32x32": {"model": {"num_scales": 3, "depth": 48}},
            "downsampled_imagenet/64x64": {"model": {"num_scales": 4, "depth": 48}},
        },
    },
    # The paper's ablation (section 5.1, Figure 3) with additive coupling
    # (--flow_coupling 0), otherwise the CIFAR-10 settings above.
    "paper_additive": {
        "dataset": "cifar10",
        "model": {"num_scales": 3, "depth": 32, "hidden_channels": 512, "coupling": "additive",
                  "permutation": "lu", "learn_top": True},
        "train": {"epochs": 1000, "batch_size": 512, "patience": 50,
                  "optimizer": {"name": "adamax", "learning_rate": 1e-3, "ema": 0.99}},
    },
}

PUBLISHED = {
    "cifar10": {"bits_per_dim": 3.35, "source": "Kingma and Dhariwal 2018, Table 2"},
    "downsampled_imagenet/32x32": {"bits_per_dim": 4.09, "source": "Kingma and Dhariwal 2018, Table 2"},
    "downsampled_imagenet/64x64": {"bits_per_dim": 3.81, "source": "Kingma and Dhariwal 2018, Table 2"},
    "mnist": {"bits_per_dim": 1.05, "source": "FFJORD, Grathwohl et al. 2019, Table 2 (Glow)"},
}

# The driver writes one row of samples per temperature (the paper's Figure 8 sweeps
# T; T = 0 decodes the prior means) and, for models that interpolate, a latent
# interpolation between two test images.
TEMPERATURES = [0.0, 0.5, 0.7, 1.0]
