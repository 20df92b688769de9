"""PixelCNN++ (Salimans, Karpathy, Chen and Kingma 2017, "PixelCNN++: Improving the
PixelCNN with Discretized Logistic Mixture Likelihood and Other Modifications", ICLR)."""

from reproduce.runs import Paper, by_dataset

PRESETS = {
    # Seconds: what the tests run (weight norm off: its first-batch initialization doubles
    # the time to trace the training step; the model tests cover it).
    "smoke": {
        "dataset": "digits",
        "model": {"nr_resnet": 1, "filters": 8, "nr_logistic_mix": 2, "num_scales": 2, "dropout": 0.0,
                  "weight_norm": False},
        "train": {"epochs": 1, "batch_size": 64, "jit_compile": False,
                  "optimizer": {"name": "adam", "learning_rate": 1e-3}},
    },
    # Two shared CPU cores. The paper's structure (two streams, gated ResNet blocks,
    # strided down- and transposed upsampling with shortcuts, weight norm, Polyak
    # averaging) at a CPU's size; per-step decay as the paper's, faster for a short run.
    # XLA off, as for the PixelCNNs; a bfloat16 network (the mixture and likelihood stay
    # float32). 8-bit MNIST: training stops at the epoch end before one more epoch would
    # pass 80 minutes (`max_minutes`), leaving the test evaluation inside 90.
    "cpu": {
        "model": {"nr_resnet": 2, "filters": 32, "nr_logistic_mix": 5, "num_scales": 3, "dropout": 0.0,
                  "mixed_precision": "bfloat16"},
        "train": {"epochs": 8, "max_minutes": 80, "batch_size": 32, "jit_compile": False,
                  "optimizer": {"name": "adam", "learning_rate": 2e-3, "decay": 0.9998, "ema": 0.999}},
        "per_dataset": {
            # 1000 training images of 8x8 with 17 levels: one resolution (no downsampling of
            # 8x8 images), dropout (the paper's regularizer, section 2.6), what won the
            # PixelCNN's digits runs (batch 16, constant lr 1e-3, decoupled weight decay 0.5,
            # Polyak averaging 0.995, patience 60), and distribution augmentation (Jun et al.
            # 2020) over four transforms, which regularizes enough for 64 filters; the model
            # is evaluated, selected and sampled as the mixture over the four pixel orderings
            # (`augmentation_mixture`). Trials: results/runs/pixelcnnpp/cpu-digits.md.
            "digits": {
                "model": {"nr_resnet": 4, "filters": 64, "nr_logistic_mix": 5, "num_scales": 1,
                          "dropout": 0.25, "mixed_precision": None,
                          "augmentations": ["identity", "rot180", "flip_lr", "flip_ud"],
                          "augmentation_mixture": True},
                "train": {"epochs": 600, "max_minutes": 50, "batch_size": 16, "patience": 60,
                          "jit_compile": False,
                          "optimizer": {"name": "adam", "learning_rate": 1e-3, "ema": 0.995,
                                        "weight_decay": 0.5}},
            },
        },
    },
    # CIFAR-10 as published. Every value is openai/pixel-cnn's `train.py` default (HEAD,
    # commit bbc1568, the code the paper links in its abstract): nr_resnet 5 (`-q`),
    # filters 160 (`-n`, nr_filters; the paper's section 3.1 text says 192 maps, the released code
    # and reproductions of 2.92 use 160), nr_logistic_mix 10 (`-m`), concat_elu, dropout
    # 0.5 (`-p`; section 2.6), Adam lr 1e-3 (`-l`) times 0.999995 every step (`-e`), batch
    # 16 per GPU (`-b`) on 8 GPUs (`-g`): global 128, Polyak averaging 0.9995
    # (`--polyak_decay`) for evaluation, weight norm with data-dependent initialization
    # (`nn.py`), log-scales bounded below by -7 (`nn.py`), three resolutions 32/16/8
    # (`model.py`; Figure 2). Its Adam uses beta_1 0.95, beta_2 0.9995 (`adam_updates`
    # call in `train.py`). It trained for about 5 days on 8 GPUs (its README).
    "paper": {
        "dataset": "cifar10",
        "model": {"nr_resnet": 5, "filters": 160, "nr_logistic_mix": 10, "num_scales": 3, "dropout": 0.5},
        "train": {"epochs": 5000, "batch_size": 128,
                  "optimizer": {"name": "adam", "learning_rate": 1e-3, "decay": 0.999995, "ema": 0.9995,
                                "beta_1": 0.95, "beta_2": 0.9995}},
    },
}

# Ren et al. 2019's background model for the likelihood-ratio OOD score: the cpu preset
# trained on images with a fraction mu of pixels replaced by uniform random levels, and
# weight decay (their L2, here Keras' decoupled decay), so that it learns the population's
# background statistics and little of the semantics: mu 0.2 and decay 1.0, the strong end
# of their grid (mu 0.1-0.3, L2 0-100); mu 0.1 with decay 0.1 left the background model
# as semantic as the one-epoch foreground (notes in results/runs/pixelcnnpp/background-fashion_mnist.md).
PRESETS["background"] = {
    **PRESETS["cpu"], "name": "pixelcnnpp_background", "dataset": "fashion_mnist",
    "train": {**PRESETS["cpu"]["train"], "perturbation": 0.2, "max_minutes": 50,
              "optimizer": {**PRESETS["cpu"]["train"]["optimizer"], "weight_decay": 1.0}},
}

# The cpu preset trained as long as Ren et al. 2019 train their Fashion-MNIST PixelCNN++
# (50,000 steps of 32 images, about 30 epochs; the cpu preset's 80 minutes give one):
# the foreground model of a likelihood ratio whose AUROC the one-epoch pair leaves at 0.89.
# Many sessions of one core: it resumes from its last epoch (`--resume`).
PRESETS["long"] = {
    **PRESETS["cpu"], "name": "pixelcnnpp_long", "dataset": "fashion_mnist",
    "train": {**PRESETS["cpu"]["train"], "epochs": 30, "max_minutes": None},
}

# The background model of that ratio, trained as long as its foreground, at mu 0.1 and
# decay 0.1: the settings that gave the long foreground's ratio its highest AUROC; decay 1.0
# degrades the background as it trains on (trials: results/runs/pixelcnnpp/background-fashion_mnist.md).
PRESETS["background_long"] = {
    **PRESETS["background"], "name": "pixelcnnpp_background_long",
    "train": {**PRESETS["background"]["train"], "perturbation": 0.1, "epochs": 30, "max_minutes": None,
              "optimizer": {**PRESETS["background"]["train"]["optimizer"], "weight_decay": 0.1}},
}

PUBLISHED = {
    "cifar10": {"bits_per_dim": 2.92, "split": "test",
                "source": "Salimans et al. 2017 (PixelCNN++), Table 1"},
}

PAPER = Paper("pixelcnnpp", model="PixelCNNPlusPlus", dataset="mnist", presets=PRESETS,
              published=by_dataset(PUBLISHED))
