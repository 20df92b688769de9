"""Causal-conv ARM (the lecture's autoregressive model; Tomczak, "Deep Generative
Modeling", ch. 2, and its companion code jmtomczak/intro_dgm)."""

from reproduce.runs import Paper, by_dataset

PRESETS = {
    # Seconds: what the tests run.
    "smoke": {
        "model": {"filters": 16, "kernel_size": 3, "dilations": [1, 2], "residual": True},
        "train": {"epochs": 2, "batch_size": 64, "optimizer": {"name": "adam", "learning_rate": 1e-3}},
    },
    # The intro_dgm reference: 4 layers, kernel 7, 256 channels, LeakyReLU, first layer
    # type A; Adamax 1e-3, batch 64, early stopping on validation with patience 20.
    "lecture": {
        "dataset": "digits",
        "model": {"filters": 256, "kernel_size": 7, "dilations": [1, 1, 1, 1]},
        "train": {"epochs": 1000, "batch_size": 64, "patience": 20,
                  "optimizer": {"name": "adamax", "learning_rate": 1e-3}},
    },
    # Two CPU cores, under 30 minutes: dilations reach the whole 8x8 image, residual
    # connections, heavy dropout against the 1000-image training set, and a learned
    # per-position embedding (a flat sequence cannot otherwise tell where a row ends).
    "cpu": {
        "model": {"filters": 128, "kernel_size": 5, "dilations": [1, 2, 4, 8, 1, 2],
                  "residual": True, "dropout": 0.5, "position_embedding": True},
        "train": {"epochs": 500, "batch_size": 64, "patience": 60,
                  "optimizer": {"name": "adamax", "learning_rate": 2e-3}},
    },
}

PUBLISHED = {
    "digits": {"nats": 88.7, "split": "validation",
               "source": "jmtomczak/intro_dgm (lecture companion code), causal-conv ARM"},
}

PAPER = Paper("arm", model="ARM", dataset="digits", presets=PRESETS,
              published=by_dataset(PUBLISHED))
