"""Out-of-distribution detection with the zoo's likelihoods.

Every score maps a batch of integer images `[n, H, W, C]` to float64 scores where
higher = more anomalous:

    negative_log_likelihood(model, x)               -log2 p(x) / D                 (Nalisnick et al. 2019a)
    likelihood_ratio(model, background, x)          -(log2 p - log2 p_bg) / D      (Ren et al. 2019)
    complexity_corrected(model, x, PNG)             -log2 p(x) - L(x)              (Serra et al. 2020)
    typicality(model, x, entropy_estimate(model, held_out), m)   per batch of m   (Nalisnick et al. 2019b)

and `detection_metrics(in_scores, out_scores)` gives AUROC, AUPRC and FPR at 80% TPR
with OOD as the positive class. The background model of a likelihood ratio trains on
inputs perturbed by `perturb` (the training setting `perturbation`).
"""

from zoo.ood.complexity import (COMPRESSORS, JPEG2000, PNG, ModelCodeLength, FileCompressor,  # noqa: F401
                                complexity_corrected, corrected)
from zoo.ood.images import check_background, check_images, check_same_shape  # noqa: F401
from zoo.ood.likelihood import likelihood_ratio, log2_likelihood, negative_log_likelihood, ratio  # noqa: F401
from zoo.ood.metrics import auprc, auroc, detection_metrics, fpr_at_tpr  # noqa: F401
from zoo.ood.typicality import entropy_estimate, typicality, typicality_statistic  # noqa: F401
from zoo.training.pipeline import perturb  # noqa: F401  (its one owner: the training pipeline)
