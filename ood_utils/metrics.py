"""Detection metrics, built on scikit-learn.

Convention: **out-of-distribution is the positive class** and a higher score
means "more out-of-distribution".

- AUROC: probability that a random OOD input scores above a random ID input (0.5 =
    chance).
- AUPR-OUT: average precision with OOD positive.
- AUPR-IN: average precision with ID positive (scores negated).
- FPR@95TPR: share of ID inputs flagged at the threshold that catches 95% of OOD inputs.
  (Some papers fix 95% TPR on the ID class instead; the two differ.)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from .scores import FlagRule
from .validate import check_scores

ArrayLike = np.ndarray | torch.Tensor | list[float]


def _labelled(
    scores_id: ArrayLike, scores_ood: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    s_in = check_scores(scores_id, "scores_id")
    s_out = check_scores(scores_ood, "scores_ood")
    y = np.concatenate([np.zeros(len(s_in)), np.ones(len(s_out))])
    return y, np.concatenate([s_in, s_out])


def auroc(scores_id: ArrayLike, scores_ood: ArrayLike) -> float:
    """Area under the ROC curve, OOD positive."""
    y, s = _labelled(scores_id, scores_ood)
    return float(roc_auc_score(y, s))


def aupr_out(scores_id: ArrayLike, scores_ood: ArrayLike) -> float:
    """Average precision with OOD as the positive class."""
    y, s = _labelled(scores_id, scores_ood)
    return float(average_precision_score(y, s))


def aupr_in(scores_id: ArrayLike, scores_ood: ArrayLike) -> float:
    """Average precision with in-distribution as the positive class (scores negated)."""
    y, s = _labelled(scores_id, scores_ood)
    return float(average_precision_score(1 - y, -s))


def fpr_at_tpr(scores_id: ArrayLike, scores_ood: ArrayLike, tpr: float = 0.95) -> float:
    """Smallest false-positive rate (ID flagged) among thresholds that flag >= ``tpr``
    of OOD."""
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must be in (0, 1], got {tpr}")
    y, s = _labelled(scores_id, scores_ood)
    fpr, tprs, _ = roc_curve(y, s, drop_intermediate=False)
    return float(fpr[np.searchsorted(tprs, tpr, side="left")])


def ood_metrics(scores_id: ArrayLike, scores_ood: ArrayLike) -> dict[str, float]:
    """All four metrics: ``{"AUROC", "AUPR-IN", "AUPR-OUT", "FPR@95TPR"}``."""
    return {
        "AUROC": auroc(scores_id, scores_ood),
        "AUPR-IN": aupr_in(scores_id, scores_ood),
        "AUPR-OUT": aupr_out(scores_id, scores_ood),
        "FPR@95TPR": fpr_at_tpr(scores_id, scores_ood),
    }


def detection_numbers(
    lp_in: torch.Tensor,
    lp_out: torch.Tensor,
    rule: FlagRule,
    ranking: str = "score / reference",
) -> dict[str, float]:
    """A twin detector's numbers for a pair of test sets under ``rule``: what the
    original printed, and the book's chapters too.

    Args:
        lp_in, lp_out: ``(N, B, C)`` log-probabilities on the in-distribution test set
            and the out-of-distribution one.
        ranking: ``"score / reference"`` (the original's: a negative reference mirrors
            the ranking) or ``"score"``; the same whenever the reference is positive.

    Returns:
        ``reference``, ``ID flagged``, ``OOD flagged`` (NaN where a reference of 0
        cannot calibrate), ``AUROC``, ``AUPR-IN``, ``AUPR-OUT``, ``FPR@95TPR`` (OOD
        positive) and ``non-zero ID scores`` (the share of in-distribution scores that
        are not exactly 0).
    """
    if ranking not in ("score / reference", "score"):
        raise ValueError(
            f"ranking must be 'score / reference' or 'score', got {ranking!r}"
        )
    s_in, s_out = rule.score(lp_in), rule.score(lp_out)
    ref = rule.reference_of(lp_in)
    try:
        flagged = [float(rule.flags(lp, ref).double().mean()) for lp in (lp_in, lp_out)]
    except ValueError:  # a reference of exactly 0: nothing can be calibrated
        flagged = [math.nan, math.nan]
    sign = -1.0 if ranking == "score / reference" and ref < 0 else 1.0
    return {
        "reference": ref,
        "ID flagged": flagged[0],
        "OOD flagged": flagged[1],
        **ood_metrics(sign * s_in.double(), sign * s_out.double()),
        "non-zero ID scores": float((s_in != 0).double().mean()),
    }
