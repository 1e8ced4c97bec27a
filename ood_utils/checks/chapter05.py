"""Chapter 5, MNIST and FashionMNIST: AUROC, and the false-positive rate at a
true-positive rate."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .. import metrics
from ._base import _call, _fail, _ok, _own_work, _scalar


def _auroc_cases() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fresh score pairs: continuous, 0/1 (all ties), rounded (many ties), OOD scoring
    lower."""
    g = torch.Generator().manual_seed(12)
    r = lambda *shape: torch.rand(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    n = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    return [
        (n(300), n(200) + 1.0),
        ((r(500) < 0.05).double(), (r(400) < 0.6).double()),
        ((2 * n(250)).round(), (2 * n(150) + 1).round()),
        (n(120) + 0.5, n(90)),
    ]


def check_auroc(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> bool:
    """Check ``fn(scores_id (B_in,), scores_ood (B_out,)) -> float``: the AUROC by its
    definition.

    OOD is the positive class and higher scores mean more OOD: the AUROC is the
    probability that a random OOD score is above a random in-distribution one, ties
    counting 1/2. Tested on fresh scores with and without ties, against
    :func:`ood_utils.metrics.auroc`, to 1e-6."""
    _own_work(
        fn,
        {"auroc": metrics.auroc, "roc_auc_score": None, "roc_curve": None},
        "compute the AUROC",
    )
    for k, (s_in, s_out) in enumerate(_auroc_cases()):
        want = metrics.auroc(s_in, s_out)
        got = _scalar(
            _call(fn, s_in.clone(), s_out.clone(), what="your AUROC function"),
            "the AUROC",
        )
        if abs(got - want) < 1e-6:
            continue
        strict = float((s_out[None, :] > s_in[:, None]).double().mean())
        if abs(got - (1 - want)) < 1e-6:
            _fail(
                f"case {k}: you got 1 - AUROC ({got:.4f}): the positive class is "
                "out-of-distribution, and higher scores should mean more "
                "out-of-distribution"
            )
        if abs(got - strict) < 1e-6:
            _fail(
                f"case {k}: ties count 1/2, and you counted them as 0 ({got:.4f} "
                f"instead of {want:.4f})"
            )
        if not 0.0 <= got <= 1.0:
            _fail(f"case {k}: an AUROC is a probability in [0, 1], got {got}")
        _fail(
            f"case {k}: AUROC {got:.4f} is not {want:.4f}; the AUROC is the "
            "probability that a random OOD input scores higher than a random "
            "in-distribution one (ties count 1/2)"
        )
    return _ok(
        f"your AUROC agrees with the definition on {len(_auroc_cases())} unseen pairs "
        "of score sets, ties included"
    )


def check_fpr_at_tpr(fn: Callable[[np.ndarray, np.ndarray], float]) -> bool:
    """Check ``fn(scores_id, scores_ood) -> float``: the FPR at 95% TPR (OOD
    positive)."""
    rng = np.random.default_rng(7)
    # ties
    cases = [
        (rng.normal(0, 1, 500), rng.normal(2, 1, 300)),
        (rng.normal(0, 1, 200), rng.normal(0.5, 2, 1000)),
        (np.round(rng.normal(0, 1, 400), 1), np.round(rng.normal(1, 1, 400), 1)),
    ]
    for k, (s_in, s_out) in enumerate(cases):
        want = metrics.fpr_at_tpr(s_in, s_out, 0.95)
        got = _scalar(
            _call(fn, s_in.copy(), s_out.copy(), what="your FPR@95TPR function"),
            "the value your function returns",
        )
        if abs(got - want) > 1e-9:
            if abs(got - metrics.fpr_at_tpr(s_out, s_in, 0.95)) < 1e-9:
                _fail(
                    "you swapped the roles: OOD inputs are the positives (the 95% to "
                    "catch), in-distribution inputs give the false positives"
                )
            _fail(
                f"case {k}: expected FPR {want:.4f}, got {got:.4f}. Choose the highest "
                "threshold that still flags at least 95% of the OOD scores, then "
                "count the in-distribution "
                "scores flagged by it" + (" (this case has ties)" if k == 2 else "")
            )
    return _ok(
        f"FPR@95TPR agrees with the reference on {len(cases)} cases, ties included"
    )
