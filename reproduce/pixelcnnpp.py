"""PixelCNN++ (Salimans, Karpathy, Chen and Kingma 2017, "PixelCNN++: Improving the
PixelCNN with Discretized Logistic Mixture Likelihood and Other Modifications", ICLR)."""

MODEL = "PixelCNNPlusPlus"
DATASET = "mnist"

PRESETS = {
    # Seconds: what the tests run (weight norm off: its first-batch initialization doubles
    # the time to trace the training step; the model tests cover it).
    "smoke": {
        "dataset": "digits",
        "model": {"nr_resnet": 1, "nr_filters": 8, "nr_logistic_mix": 2, "num_scales": 2, "dropout": 0.0,
                  "weight_norm": False},
        "train": {"epochs": 1, "batch_size": 64, "jit_compile": False,
                  "optimizer": {"name": "adam", "learning_rate": 1e-3}},
    },
    # Two shared CPU cores. The paper's structure (two streams, gated ResNet blocks,
    # strided down- and transposed upsampling with shortcuts, weight norm, Polyak
    # averaging) at a CPU's size; per-step decay as the paper's, faster for a short run.
    # XLA off, as for the PixelCNNs (slower convs on CPU); a bfloat16 network (the mixture
    # and likelihood stay float32): 0.53 s a step against 0.71 in float32 at batch 32
    # (AMX cores). 8-bit MNIST: training stops at the epoch end before one more epoch
    # would pass 80 minutes (`max_minutes`), leaving the test evaluation inside 90.
    # Measured: 1.0391 test bits/dim in 72.2 min, 6 epochs of 1687 steps at 0.375 s a
    # step on idle cores (validation 1.618, 1.119, 1.086, 1.059, 1.069, 1.046).
    "cpu": {
        "model": {"nr_resnet": 2, "nr_filters": 32, "nr_logistic_mix": 5, "num_scales": 3, "dropout": 0.0,
                  "mixed_precision": "bfloat16"},
        "train": {"epochs": 8, "max_minutes": 80, "batch_size": 32, "jit_compile": False,
                  "optimizer": {"name": "adam", "learning_rate": 2e-3, "decay": 0.9998, "ema": 0.999}},
        "per_dataset": {
            # 1000 training images of 8x8 with 17 levels: dropout (the paper's regularizer,
            # section 2.6), one resolution (no downsampling of 8x8 images), and what won the
            # PixelCNN's digits runs: batch 16, constant lr 1e-3, decoupled weight decay 0.5,
            # Polyak averaging 0.995, early stopping with patience 60. Validation bits/dim
            # (best), at two resolutions (8, 4) and nr_resnet 2: batch 64, lr 2e-3 x
            # 0.9995^step, no weight decay 1.8980 (test 81.37 nats); that with weight decay
            # 0.5 1.9024; batch 16 without weight decay 1.8827; this recipe 1.8568 (epoch 41;
            # test 80.13 nats, 15.9 min); 64 filters and 10 components 1.8738 (epoch 22):
            # more capacity overfits sooner. One resolution with nr_resnet 4 (8 blocks, 9
            # before): measured (the shipped pixelcnnpp-digits, `--intra-op-threads 1
            # --inter-op-threads 2`): validation best 1.7977 at epoch 224, patience stopped
            # the run at epoch 284; test 77.66 nats (1.7506 bits/dim), 22.0 min. nr_resnet 6
            # overfits sooner: validation best 1.7998 at epoch 68, test 77.94 nats. Per-step
            # lr decay overfits sooner (0.99985: 1.8147 at epoch 91; 0.9997: 1.8228 at 74);
            # longer Polyak averaging drifts (0.999: 1.8554 at 102, still falling; 0.9995:
            # 2.0468 at 44, then rising).
            # Distribution augmentation (Jun et al. 2020) regularizes enough for more filters.
            # Validation of the identity, trials run two at a time: four transforms (identity,
            # rot180, flip_lr, flip_ud) and dropout 0.25: 48 filters 1.7898 (epoch 119), 64
            # filters 1.7836 (epoch 74; 80 filters ahead of 64 at epoch 31, 1.8049 against
            # 1.8159, but too slow for the budget); all eight symmetries learn too slowly for
            # the budget (48 filters: 1.8345 at epoch 129 with dropout 0.5, 1.8329 at 58 with
            # 0.25, 1.8208 at 59 with 0.1; 32 filters and dropout 0.5: 1.8570 at 112). On
            # the 64-filter trial's best weights the four orderings scored (validation nats)
            # 79.12, 78.67, 79.04, 78.64 and their mixture 77.38 (1.7442 bits/dim; test 75.27
            # nats against 76.91 for the identity): the preset evaluates, selects and samples
            # the mixture (`augmentation_mixture`). Measured (the shipped pixelcnnpp-digits,
            # `--intra-op-threads 1 --inter-op-threads 2`, alone on the cores): validation of
            # the mixture best 1.7378 at epoch 150, patience stopped the run at epoch 210;
            # test 75.04 nats (1.6916 bits/dim), 31.8 min. Its orderings alone (test nats):
            # identity 76.76, rot180 76.12, flip_lr 76.88, flip_ud 76.00.
            "digits": {
                "model": {"nr_resnet": 4, "nr_filters": 64, "nr_logistic_mix": 5, "num_scales": 1,
                          "dropout": 0.25, "mixed_precision": None,
                          "augmentations": ["identity", "rot180", "flip_lr", "flip_ud"],
                          "augmentation_mixture": True},
                "train": {"epochs": 600, "max_minutes": 40, "batch_size": 16, "patience": 60,
                          "jit_compile": False,
                          "optimizer": {"name": "adam", "learning_rate": 1e-3, "ema": 0.995,
                                        "weight_decay": 0.5}},
            },
        },
    },
    # CIFAR-10 as published. Every value is openai/pixel-cnn's `train.py` default (HEAD,
    # commit bbc1568, the code the paper links in its abstract): nr_resnet 5 (`-q`),
    # nr_filters 160 (`-n`; the paper's section 3.1 text says 192 maps, the released code
    # and reproductions of 2.92 use 160), nr_logistic_mix 10 (`-m`), concat_elu, dropout
    # 0.5 (`-p`; section 2.6), Adam lr 1e-3 (`-l`) times 0.999995 every step (`-e`), batch
    # 16 per GPU (`-b`) on 8 GPUs (`-g`): global 128, Polyak averaging 0.9995
    # (`--polyak_decay`) for evaluation, weight norm with data-dependent initialization
    # (`nn.py`), log-scales bounded below by -7 (`nn.py`), three resolutions 32/16/8
    # (`model.py`; Figure 2). Its Adam uses beta_1 0.95, beta_2 0.9995 (`adam_updates`
    # call in `train.py`). It trained for about 5 days on 8 GPUs (its README).
    "paper": {
        "dataset": "cifar10",
        "model": {"nr_resnet": 5, "nr_filters": 160, "nr_logistic_mix": 10, "num_scales": 3, "dropout": 0.5},
        "train": {"epochs": 5000, "batch_size": 128,
                  "optimizer": {"name": "adam", "learning_rate": 1e-3, "decay": 0.999995, "ema": 0.9995,
                                "beta_1": 0.95, "beta_2": 0.9995}},
    },
}

PUBLISHED = {
    "cifar10": {"bits_per_dim": 2.92, "split": "test",
                "source": "Salimans et al. 2017 (PixelCNN++), Table 1"},
}
