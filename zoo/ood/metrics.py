"""Detection metrics with out-of-distribution as the positive class (as Ren et al. 2019,
whose code scores OOD inputs as label 1), from scores where higher = more anomalous:
scikit-learn's `roc_auc_score`, `average_precision_score` and `roc_curve`."""

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def _labelled(in_scores, out_scores):
    """Labels (0 in, 1 out) and scores, one array each; both sets non-empty and finite."""
    in_scores = np.asarray(in_scores, np.float64).reshape(-1)
    out_scores = np.asarray(out_scores, np.float64).reshape(-1)
    for what, s in (("in-distribution", in_scores), ("out-of-distribution", out_scores)):
        if s.size == 0:
            raise ValueError(f"Expected at least one {what} score, got none.")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"Expected finite {what} scores, got {int(np.sum(~np.isfinite(s)))} NaN or Inf.")
    labels = np.concatenate([np.zeros(in_scores.size), np.ones(out_scores.size)])
    return labels, np.concatenate([in_scores, out_scores])


def auroc(in_scores, out_scores):
    """Area under the ROC curve: the chance that a random OOD input outscores a random
    in-distribution one (ties count half)."""
    return float(roc_auc_score(*_labelled(in_scores, out_scores)))


def auprc(in_scores, out_scores):
    """Area under the precision-recall curve, OOD positive (average precision)."""
    return float(average_precision_score(*_labelled(in_scores, out_scores)))


def fpr_at_tpr(in_scores, out_scores, tpr=0.8):
    """The smallest false positive rate (in-distribution inputs flagged) at which at
    least `tpr` of the OOD inputs are flagged (Ren et al.'s FPR80 at 0.8)."""
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must be in (0, 1], got {tpr!r}.")
    # Every threshold kept: dropping collinear points could skip the first one at `tpr`.
    fprs, tprs, _ = roc_curve(*_labelled(in_scores, out_scores), drop_intermediate=False)
    return float(fprs[np.searchsorted(tprs, tpr, side="left")])


def detection_metrics(in_scores, out_scores):
    """`{"auroc", "auprc", "fpr80"}` of one score on one in/out pair."""
    return {"auroc": auroc(in_scores, out_scores), "auprc": auprc(in_scores, out_scores),
            "fpr80": fpr_at_tpr(in_scores, out_scores, 0.8)}
