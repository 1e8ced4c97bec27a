"""Chapter 7, ensembles: mutual information, entropy of the mean, AUROC over member
subsets."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import metrics, scores
from ._base import (
    ScoreFn,
    _call,
    _fail,
    _mean_entropy,
    _ok,
    _scalar,
    _test_inputs,
    check_score_function,
)

#: The two ensemble scores of chapter 7: the reference, whether it is 0 where all
#: members agree, and the common wrong answers.
_ENSEMBLE_SCORES = {
    "the mutual information": (
        scores.mutual_information,
        True,
        {
            "the entropy of the mean prediction (total uncertainty); subtract the "
            "members' mean entropy": scores.entropy_of_mean,
            "the members' mean entropy; the score is the entropy of the mean minus "
            "this": _mean_entropy,
        },
    ),
    "the entropy of the mean": (
        scores.entropy_of_mean,
        False,
        {
            "the mean of the members' entropies; average the probabilities first, "
            "then take the entropy": _mean_entropy
        },
    ),
}


def _check_ensemble_score(fn: ScoreFn, name: str, n_members: int) -> bool:
    reference, zero_when_equal, hints = _ENSEMBLE_SCORES[name]
    return check_score_function(
        fn, reference, name, n_members, True, zero_when_equal, hints
    )


def check_mutual_information(fn: ScoreFn, n_members: int = 4) -> bool:
    """Check ``fn: (N, B, C) -> (B,)`` = entropy of the mean minus the mean entropy."""
    return _check_ensemble_score(fn, "the mutual information", n_members)


def check_entropy_of_mean(fn: ScoreFn, n_members: int = 4) -> bool:
    """Check ``fn: (N, B, C) -> (B,)`` = entropy of the ensemble's mean prediction."""
    return _check_ensemble_score(fn, "the entropy of the mean", n_members)


def check_subset_auroc(fn: Callable[..., float]) -> bool:
    """Check ``fn(lp_in (M, B_in, C), lp_out (M, B_out, C), members, score_fn) ->
    float`` (chapter 7): the AUROC of ``score_fn`` computed from the chosen members
    only, on fresh ensembles."""
    lp_in, lp_out = _test_inputs(6, 80, seed=21), _test_inputs(6, 60, seed=22)
    lp_out = torch.log_softmax(3 * lp_out, -1)  # the OOD members disagree more
    for members in [(0, 3, 5), (4, 1), (2, 3, 4, 5)]:
        for score_fn in (scores.mutual_information, scores.entropy_of_mean):
            idx = list(members)
            want = metrics.auroc(score_fn(lp_in[idx]), score_fn(lp_out[idx]))
            got = _scalar(
                _call(
                    fn,
                    lp_in.clone(),
                    lp_out.clone(),
                    members,
                    score_fn,
                    what="your function",
                ),
                "your AUROC",
            )
            if abs(got - want) < 1e-6:
                continue
            first = list(range(len(members)))
            if abs(got - metrics.auroc(score_fn(lp_in), score_fn(lp_out))) < 1e-6:
                _fail(
                    f"members {members}: you scored all {len(lp_in)} members; keep "
                    "only the chosen ones, lp[list(members)]"
                )
            if (
                abs(
                    got - metrics.auroc(score_fn(lp_in[first]), score_fn(lp_out[first]))
                )
                < 1e-6
            ):
                _fail(
                    f"members {members}: you took the first {len(members)} members, "
                    "not the chosen ones"
                )
            _fail(
                f"members {members}, {score_fn.__name__}: AUROC {got:.4f}, expected "
                f"{want:.4f}"
            )
    return _ok(
        "your subset AUROC matches on 3 unseen subsets of 6 members, with two scores"
    )
