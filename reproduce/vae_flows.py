"""VAEs with normalizing flows (the lecture's last section): planar (Rezende and Mohamed
2015), IAF (Kingma et al. 2016), Householder (Tomczak and Welling 2016) and Sylvester
(van den Berg et al. 2018) posteriors, RealNVP / MAF priors (Chen et al. 2017;
Gatopoulos and Tomczak 2021): presets and published numbers.

`python -m reproduce vae_flows --preset cpu --dataset digits --posterior sylvester_o
--prior normal`: `--posterior` and `--prior` (`PAPER.flags`) replace the preset's; the
record, figures and pretrained name carry the variant (`vae-sylvester_o-digits`). The
record's test number is the -ELBO (what the model trains and validates on); beside it
`test_nll_nats`, the importance-weighted bound with the model's `importance_samples`.
"""

from reproduce.runs import Paper

# As zoo.models.vae's (a test checks): the driver reads this file before TensorFlow starts.
POSTERIORS = ("gaussian", "planar", "iaf", "householder", "sylvester_o", "sylvester_h", "sylvester_t")
PRIORS = ("normal", "realnvp", "maf")

# Extra flags of this paper's command line: --posterior, --prior (each sets the model's
# argument of that name). The run's variant is their values.
FLAGS = {
    "posterior": {"choices": list(POSTERIORS), "help": "the posterior's flow (default: the preset's; "
                                                       "a preset that names none: gaussian)"},
    "prior": {"choices": list(PRIORS), "help": "the prior over z (default: the preset's; a preset "
                                               "that names none: normal)"},
}


def run_name(model):
    """The pretrained / hub name of a variant (before "-DATASET"): vae-POSTERIOR, and the
    prior when it is a flow (vae-gaussian-realnvp)."""
    prior = model.get("prior", "normal")
    return f"vae-{model.get('posterior', 'gaussian')}" + ("" if prior == "normal" else f"-{prior}")


# Digits, the lecture's VAE: MLPs of 256 leaky-ReLU units each way, Adamax 1e-3, early
# stopping; latent 32 (the lecture: 16), KL warm-up over the first 50 epochs (1000 / 32 =
# 31 steps an epoch). The decoder is a discretized logistic mixture of 5 per pixel (the
# lecture: a 17-way categorical, which learns each level on its own and overfits the 1000
# images). The orthogonal Sylvester flow with M = D / 2 orthogonal vectors (M = D is slow
# enough to hit the time budget); the Householder flow with the Sylvester code's 8
# reflections a flow. Trials: results/runs/vae_flows/cpu-gaussian-normal-digits.md.
DIGITS = {
    "model": {"latent_dim": 32, "network": "mlp", "hidden_units": [256, 256], "posterior": "gaussian",
              "num_flows": 4, "posterior_options": {"sylvester_o": {"num_ortho_vecs": 16},
                                                    "householder": {"num_householder": 8}},
              "prior": "normal", "prior_flows": 3, "prior_hidden_units": [256, 256],
              "decoder": "logistic_mixture", "nr_logistic_mix": 5,
              "importance_samples": 5000, "chunk_size": 4096, "kl_warmup": 1550, "seed": 0},
    "train": {"epochs": 2000, "max_minutes": 14, "patience": 100, "batch_size": 32,
              "optimizer": {"name": "adamax", "learning_rate": 1e-3}},
}

# The Sylvester code's (riannevdberg/sylvester-flows) per-flow sizes where the zoo's
# defaults differ: M = 8 orthogonal vectors (the zoo: M = D). Its H-SNF's 8 reflections and
# IAF's 320-unit MADEs are the zoo's defaults.
SYLVESTER_CODE = {"sylvester_o": {"num_ortho_vecs": 8}}

PRESETS = {
    # Seconds: what the tests run (tiny MLPs, a few importance samples).
    "smoke": {
        "dataset": "digits",
        "model": {"latent_dim": 4, "network": "mlp", "hidden_units": [32, 32], "num_flows": 2,
                  "prior_flows": 2, "prior_hidden_units": [16], "importance_samples": 16, "seed": 0},
        "train": {"epochs": 2, "batch_size": 64, "optimizer": {"name": "adamax", "learning_rate": 1e-3}},
    },
    # Two CPU cores: digits (the default) <= 15 minutes; binarized MNIST <= 60 minutes with
    # the Sylvester paper's gated convolutions at half width, latent 64, 4 flows, batch 100,
    # 50 minutes of training, then 64 importance samples for the test NLL (5000 would take
    # hours on two cores). For the short budget: Adamax 2e-3 (Kingma et al. 2016's IAF rate;
    # the Sylvester code's 5e-4 is for 2000 epochs), KL warm-up over the first epoch (540
    # steps), a bfloat16 network where the CPU computes it natively, and the Sylvester code's
    # M = 8 orthogonal vectors (M = D makes a step several times slower). Trials:
    # results/runs/vae_flows/cpu-gaussian-normal-binarized_mnist.md.
    "cpu": {
        "dataset": "digits",
        **DIGITS,
        "per_dataset": {
            "binarized_mnist": {
                "model": {"latent_dim": 64, "network": "conv", "conv_filters": [16, 16, 32, 32, 32, 256],
                          "deconv_filters": [32, 32, 16, 16, 16, 16], "posterior": "gaussian",
                          "decoder": "auto",
                          "num_flows": 4, "posterior_options": SYLVESTER_CODE, "prior": "normal", "prior_flows": 3,
                          "prior_hidden_units": [256, 256], "importance_samples": 64,
                          "chunk_size": 1024, "kl_warmup": 540, "mixed_precision": "bfloat16", "seed": 0},
                "train": {"epochs": 100, "max_minutes": 50, "patience": 20, "batch_size": 100,
                          "optimizer": {"name": "adamax", "learning_rate": 2e-3}},
            },
        },
    },
    # The Sylvester code's (riannevdberg/sylvester-flows, main_experiment.py): gated
    # convolutions 32-32-64-64-64-256, latent 64, 4 flows, Adamax 5e-4, batch 100, up to
    # 2000 epochs, KL warm-up over 100 epochs (here 100 * 540 steps), early stopping after
    # 100 epochs without a better validation -ELBO; 5000 importance samples for the test NLL;
    # 8 orthogonal vectors (O-SNF) and 8 reflections (H-SNF) per flow, IAF MADEs of 320 units.
    "paper": {
        "dataset": "binarized_mnist",
        "model": {"latent_dim": 64, "network": "conv", "posterior": "gaussian", "num_flows": 4,
                  "posterior_options": SYLVESTER_CODE,
                  "prior": "normal", "importance_samples": 5000, "chunk_size": 1024,
                  "kl_warmup": 54000, "seed": 0},
        "train": {"epochs": 2000, "batch_size": 100, "patience": 100,
                  "optimizer": {"name": "adamax", "learning_rate": 5e-4}},
    },
}

_FFJORD = "van den Berg et al. 2018 (statically binarized MNIST), as FFJORD, Grathwohl et al. 2019, Table 3"
_IAF = "Kingma et al. 2016, Table 1 (dynamically binarized MNIST; NLL with 128 importance samples)"

# Test -ELBO in nats (and the NLL where the paper gives one), per dataset and posterior.
# The zoo's binarized_mnist is binarized dynamically (Kingma et al.'s protocol); the
# Sylvester paper's numbers are on the statically binarized set (its plain VAE: 86.55).
PUBLISHED_VARIANTS = {
    "binarized_mnist": {
        "gaussian": {"nats": 84.08, "nll_nats": 81.08, "source": _IAF},
        "iaf": {"nats": 82.02, "nll_nats": 79.77, "source": _IAF + ", IAF depth 2 width 320"},
        "planar": {"nats": 86.06, "source": _FFJORD},
        "sylvester_o": {"nats": 83.32, "source": _FFJORD + " (Sylvester)"},
    },
    "digits": {"gaussian": {"nats": 100.5, "split": "validation",
                            "source": "the lecture's VAE (jmtomczak/intro_dgm), its validation curve"}},
}
PUBLISHED = {dataset: variants["gaussian"] for dataset, variants in PUBLISHED_VARIANTS.items()}


def published(dataset, model):
    """The published -ELBO of this variant (its posterior) on `dataset`, or None."""
    return PUBLISHED_VARIANTS.get(dataset, {}).get(model.get("posterior", "gaussian"))


PAPER = Paper("vae_flows", model="VAE", dataset="digits", presets=PRESETS, published=published,
              flags=FLAGS, temperatures=(0.5, 0.75, 1.0), variant_name=run_name)
