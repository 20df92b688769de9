"""PixelCNN (van den Oord, Kalchbrenner, Kavukcuoglu 2016a, "Pixel Recurrent Neural
Networks", ICML) and Gated PixelCNN (van den Oord, Kalchbrenner, Vinyals, Espeholt,
Graves, Kavukcuoglu 2016b, "Conditional Image Generation with PixelCNN Decoders",
NeurIPS). A preset's "model" may name its "class" (default `MODEL`)."""

MODEL = "PixelCNN"
DATASET = "binarized_mnist"

PRESETS = {
    # Seconds: what the tests run.
    "smoke": {
        "dataset": "digits",
        "model": {"class": "GatedPixelCNN", "filters": 8, "num_layers": 2, "first_kernel_size": 3,
                  "head_filters": 8},
        "train": {"epochs": 1, "batch_size": 64, "jit_compile": False,
                  "optimizer": {"name": "adam", "learning_rate": 1e-3}},
    },
    # Two shared CPU cores, about an hour. A Gated PixelCNN (no blind spot) with 8 layers
    # of 32 maps; Adam with a per-step exponential decay (x0.36 over the run), batch 32
    # for more updates in few epochs. XLA is off: on CPU it made these convs 2-3x slower.
    "cpu": {
        "model": {"class": "GatedPixelCNN", "filters": 32, "num_layers": 8, "kernel_size": 3,
                  "first_kernel_size": 7, "head_filters": 64},
        "train": {"epochs": 3, "batch_size": 32, "jit_compile": False,
                  "optimizer": {"name": "adam", "learning_rate": 1e-3, "decay": 0.9998}},
        "per_dataset": {
            # 1000 training images of 8x8 with 17 levels: dropout, early stopping.
            "digits": {
                "model": {"class": "GatedPixelCNN", "filters": 32, "num_layers": 4, "kernel_size": 3,
                          "first_kernel_size": 5, "head_filters": 64, "dropout": 0.3},
                "train": {"epochs": 400, "batch_size": 64, "patience": 40, "jit_compile": False,
                          "optimizer": {"name": "adam", "learning_rate": 1e-3}},
            },
        },
    },
}

PUBLISHED = {
    "binarized_mnist": {"nats": 81.30, "split": "test",
                        "source": "van den Oord et al. 2016a (PixelRNN), Table 4: PixelCNN"},
    "cifar10": {"bits_per_dim": 3.03, "split": "test",
                "source": "van den Oord et al. 2016b, Table 1: Gated PixelCNN (PixelCNN: 3.14, 2016a Table 5)"},
    "downsampled_imagenet/32x32": {"bits_per_dim": 3.83, "split": "validation",
                                   "source": "van den Oord et al. 2016b, Table 2: Gated PixelCNN"},
    "downsampled_imagenet/64x64": {"bits_per_dim": 3.57, "split": "validation",
                                   "source": "van den Oord et al. 2016b, Table 2: Gated PixelCNN"},
}
