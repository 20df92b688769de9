"""PixelCNN (van den Oord, Kalchbrenner, Kavukcuoglu 2016a, "Pixel Recurrent Neural
Networks", ICML) and Gated PixelCNN (van den Oord, Kalchbrenner, Vinyals, Espeholt,
Graves, Kavukcuoglu 2016b, "Conditional Image Generation with PixelCNN Decoders",
NeurIPS). A preset's "model" may name its "class" (default: PixelCNN)."""

from reproduce.runs import Paper, by_dataset

PRESETS = {
    # Seconds: what the tests run.
    "smoke": {
        "dataset": "digits",
        "model": {"class": "GatedPixelCNN", "filters": 8, "num_layers": 2, "first_kernel_size": 3,
                  "head_filters": 8},
        "train": {"epochs": 1, "batch_size": 64, "jit_compile": False,
                  "optimizer": {"name": "adam", "learning_rate": 1e-3}},
    },
    # Two CPU cores, about 90 minutes. A Gated PixelCNN (no blind spot) with 8 layers of 32
    # maps in bfloat16 (logits and likelihood stay float32); Adam with a per-step exponential
    # decay, batch 32 for more updates in few epochs. XLA off: on CPU it slows these
    # convolutions. Training stops at the epoch end before 80 minutes would pass (`max_minutes`).
    "cpu": {
        "model": {"class": "GatedPixelCNN", "filters": 32, "num_layers": 8, "kernel_size": 3,
                  "first_kernel_size": 7, "head_filters": 64, "mixed_precision": "bfloat16"},
        "train": {"epochs": 5, "max_minutes": 80, "batch_size": 32, "jit_compile": False,
                  "optimizer": {"name": "adam", "learning_rate": 1e-3, "decay": 0.9998}},
        "per_dataset": {
            # 1000 training images of 8x8 with 17 levels: strong dropout (on both stacks),
            # decoupled weight decay, Polyak averaging (the optimizer's EMA, ~200 steps: 3
            # epochs), batch 16, early stopping on validation bits/dim; the trials that chose
            # each are in results/runs/pixelcnn/cpu-digits.md.
            "digits": {
                "model": {"class": "GatedPixelCNN", "filters": 64, "num_layers": 5, "kernel_size": 3,
                          "first_kernel_size": 5, "head_filters": 128, "dropout": 0.5,
                          "vertical_dropout": True, "mixed_precision": None},
                "train": {"epochs": 600, "batch_size": 16, "patience": 60, "jit_compile": False,
                          "optimizer": {"name": "adam", "learning_rate": 1e-3, "ema": 0.995,
                                        "weight_decay": 0.5}},
            },
        },
    },
    # The papers' configurations (the papers' h is our `filters`). "paper" is PixelCNN
    # (2016a); "gated_paper" is Gated PixelCNN (2016b). 2016a, Table 1 and Figure 5: a
    # 7x7 mask-A conv, residual blocks of 3x3 mask-B convs, two ReLU-1x1 mask-B convs, a
    # softmax per colour (a sigmoid on MNIST; our 2-level softmax is the same family);
    # RMSProp (2016a section 5.1). Layer counts and batch sizes of 2016a are our reading
    # of its sections 4-5 (check them against the paper before a paper run); values
    # marked "ours" are not stated in the papers.
    "paper": {
        "dataset": "cifar10",
        "model": {"class": "PixelCNN", "filters": 128, "num_blocks": 15, "kernel_size": 3,
                  "first_kernel_size": 7, "head_filters": 1024},  # CIFAR-10 (3.14): 15 layers, h = 128
        "train": {"epochs": 100, "batch_size": 16, "patience": 10,  # batch 16; epochs, patience ours
                  "optimizer": {"name": "rmsprop", "learning_rate": 1e-4}},  # RMSProp; lr ours
        "per_dataset": {
            # Table 4: PixelCNN 81.30 nats; a smaller stack for 28x28 binary (ours: 7 blocks, h = 32).
            "binarized_mnist": {"model": {"filters": 32, "num_blocks": 7, "head_filters": 64}},
        },
    },
    # 2016b section 3.1 (Table 1, CIFAR-10 3.03 bits/dim): 20 gated layers of 384 maps with
    # 5x5 filters, 200K synchronous updates over 32 GPUs with a total batch of 128; the same
    # stack for ImageNet 32x32 / 64x64 (Table 2: 3.83 / 3.57). Optimizer and lr: ours.
    "gated_paper": {
        "dataset": "cifar10",
        "model": {"class": "GatedPixelCNN", "filters": 384, "num_layers": 20, "kernel_size": 5,
                  "first_kernel_size": 7, "head_filters": 1024},
        "train": {"epochs": 570, "batch_size": 128,  # 200K steps x 128 / 45K training images
                  "optimizer": {"name": "rmsprop", "learning_rate": 1e-4}},
        "per_dataset": {
            "downsampled_imagenet/32x32": {"train": {"epochs": 20}},  # ours: 1.27M images per epoch
            "downsampled_imagenet/64x64": {"train": {"epochs": 20}},
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

PAPER = Paper("pixelcnn", model="PixelCNN", dataset="binarized_mnist", presets=PRESETS,
              published=by_dataset(PUBLISHED))
