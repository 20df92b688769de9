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
    # K = 8 steps per level, 128 hidden channels with openai/glow's actnorm after each
    # hidden convolution, bfloat16 convolutions (the flow's math stays float32). RealNVP's
    # logit preprocessing instead of `v / L - 1/2`. Adam 2e-3 with a 200-step linear
    # warm-up (the paper's warm-up, shorter) and a per-step decay, batch 64; training
    # stops at the epoch end before 80 minutes would pass. Measured on 8-bit MNIST
    # (validation bits/dim by epoch / test): the paper's pixel scaling, no net actnorm,
    # Adam 5e-4: 2.93, 2.29, 2.13, 2.04, 2.03 / 2.022 after 5 epochs (19.9 min); + net
    # actnorm, warm-up, lr 1e-3 x 0.99995^step: 3.263, 2.073, 1.944 / 1.937 after 3; the
    # same with openai/glow's actnorm log-scale factor 3: 2.687, 2.240, 2.006 / 2.000;
    # with the logit (this preset): 2.556, 1.966 / 1.959 after 2. RealNVP's cpu preset is
    # at 1.57 after 2 epochs. Short A/Bs (1200 steps, validation on 2000 images every 300
    # steps; the last of the four): the logit preset at lr 1e-3, warm-up 400: 1.797; with
    # float32 convolutions 1.802; additive coupling 2.186; lr 3e-3, warm-up 200: 1.767
    # (its training loss rose in the third block); lr 2e-3, warm-up 200 (this preset):
    # 1.683 (2.323, 1.868, 1.749, 1.683); K = 16 with 64 channels at 2e-3: 2.348, 1.926
    # after 600 steps against 2.323, 1.868. The 80-minute run (this preset, alone on 2
    # idle cores, 0.27 s a step): validation 1.899, 1.608, 1.537, 1.735, 1.523, 1.442,
    # 1.412, 1.404, 2.359, 1.432, 1.618, 1.415, 1.389, 1.361, 1.348, 1.332, 1.337; test
    # 1.3229 after 17 epochs, 76.5 min in all. The jumps (epochs 4, 9, 11) say 2e-3 is
    # too high late in training: a faster decay or clipping is the next A/B. Fashion-MNIST
    # (this preset, 0.32 s a step, the first ~20 minutes on cores shared with a PixelCNN
    # training): validation 3.992, 3.543, 3.449, 3.358, 3.345, 3.286, 3.251, 3.220, 3.230,
    # 3.204, 3.176, 3.178, 3.159, 3.156; test 3.1723 after 14 epochs, 78.2 min in all.
    # Against the jumps: Polyak averaging (EMA 0.999, about one epoch; validation and the
    # kept weights use the average) and clipping the global gradient norm at 50 (the
    # earlier glow-mnist's norm is 20-24 on training batches, 8-10 at initialization).
    # With the coupling nets' actnorms folded into their convolutions (0.19-0.26 s a step
    # in `fit`, was 0.27), this preset on 8-bit MNIST, alone on 2 cores: validation (EMA
    # weights) 3.977, 2.843, 2.067, 1.755, 1.571, 1.470, 1.440, 1.400, 1.340, 1.307,
    # 1.308, 1.301, 1.281, 1.301, 1.376, 1.301, 1.266, 1.252, 1.244, 1.237, 1.233, 1.234,
    # 1.226, 1.222, 1.224, 1.218; test 1.2091 after 26 epochs (21918 steps), 79.5 min in
    # all (the shipped glow-mnist). One batch late in epoch 14 still had a loss of about
    # 18000 bits/dim (the epoch's training mean 23.3); clipping bounded its update and
    # the average kept validation at 1.301, back to the trend within three epochs.
    "cpu": {
        "model": {"num_scales": 2, "depth": 8, "hidden_channels": 128, "coupling": "affine",
                  "permutation": "lu", "net_actnorm": True, "preprocess": "logit",
                  "mixed_precision": "bfloat16", "eval_draws": 2},
        "train": {"epochs": 40, "max_minutes": 80, "batch_size": 64,
                  "optimizer": {"name": "adam", "learning_rate": 2e-3, "warmup": 200,
                                "decay": 0.99995, "ema": 0.999, "global_clipnorm": 50.0}},
        "per_dataset": {
            # 8x8 digits, 1000 training images (15 steps an epoch): 2 levels (4x4, 2x2),
            # K = 8, 64 channels, float32, early stopping on validation; about 10
            # minutes (0.15 s a step; tracing the two train functions takes 4 of them).
            # (The shipped glow-digits: the paper's pixel scaling, no net actnorm.)
            "digits": {"model": {"num_scales": 2, "depth": 8, "hidden_channels": 64,
                                 "net_actnorm": False, "preprocess": "scale",
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
