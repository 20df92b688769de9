"""MAF (Papamakarios, Pavlakou and Murray, "Masked Autoregressive Flow for Density
Estimation", NeurIPS 2017): presets and published numbers."""

from reproduce.runs import Paper, by_dataset

PRESETS = {
    # Seconds: what the tests run (the cpu preset's MoG base, tiny).
    "smoke": {
        "dataset": "digits",
        "model": {"num_layers": 2, "hidden_units": [32, 32], "batch_norm": False, "base": "mog",
                  "num_components": 2, "eval_draws": 2},
        "train": {"epochs": 2, "batch_size": 64, "optimizer": {"name": "adam", "learning_rate": 1e-3}},
    },
    # Two CPU cores, 60 minutes of training on 8-bit MNIST: MAF MoG (5), the paper's
    # model with its MADE mixture-of-Gaussians base, at half the paper's width (far cheaper
    # steps for about the same progress per step) and 3 components (so the base's output
    # kernel, 512 x 7056 floats, fits the hub's 16 MB a file). No batch norm between layers
    # (its running averages lag the batch statistics the training sees; the zero-initialized,
    # tanh-bounded layers train stably without it); Adam 1e-3 (the paper's 1e-4 is slow
    # for an hour). Notes: results/runs/maf/cpu-mnist.md.
    "cpu": {
        "model": {"num_layers": 5, "hidden_units": [512, 512], "batch_norm": False, "base": "mog",
                  "num_components": 3, "alpha": 1e-6, "eval_draws": 2},
        "train": {"epochs": 100, "max_minutes": 60, "batch_size": 100,
                  "optimizer": {"name": "adam", "learning_rate": 1e-3}},
        "per_dataset": {
            # 1000 training images: 256 units and dropout 0.3 against overfitting, batch 32,
            # early stopping.
            "digits": {"model": {"num_layers": 5, "hidden_units": [256, 256], "dropout": 0.3,
                                 "batch_norm": False, "base": "mog", "num_components": 5,
                                 "alpha": 1e-6, "eval_draws": 4},
                       "train": {"epochs": 2000, "max_minutes": 13, "patience": 100, "batch_size": 32,
                                 "optimizer": {"name": "adam", "learning_rate": 1e-3}}},
        },
    },
    # The paper's MNIST setup: MAF (5) of MADEs with two hidden layers of 1024 ReLUs,
    # orders reversed between layers, batch norm between layers, a standard normal base;
    # logit preprocessing with lambda = 1e-6 (as its code); Adam with learning rate 1e-4,
    # minibatch 100, L2 weight decay 1e-6 (here Keras' decoupled decay); early stopping
    # after 30 epochs without a better validation score. MAF (10): num_layers 10; MAF MoG
    # (5): base "mog" with 10 components.
    "paper": {
        "dataset": "mnist",
        "model": {"num_layers": 5, "hidden_units": [1024, 1024], "activation": "relu",
                  "batch_norm": True, "base": "normal", "alpha": 1e-6},
        "train": {"epochs": 1000, "batch_size": 100, "patience": 30,
                  "optimizer": {"name": "adam", "learning_rate": 1e-4, "weight_decay": 1e-6}},
    },
}

PUBLISHED = {
    "mnist": {"bits_per_dim": 1.89, "source": "FFJORD, Grathwohl et al. 2019, Table 2 (MAF)"},
}

# One row of samples per temperature (std of the base scaled by it).
PAPER = Paper("maf", model="MAF", dataset="mnist", presets=PRESETS,
              published=by_dataset(PUBLISHED), temperatures=(0.5, 0.75, 1.0))
