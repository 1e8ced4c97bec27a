"""Chapter 11, text: the twin score, and the shares of flagged lines."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import scores
from ._base import ScoreFn, _call, _directed, _fail, _ok, _scalar, check_score_function


def check_twin_score(fn: ScoreFn) -> bool:
    """Check ``fn: (2, B, C) -> (B,)`` = ``max(KL(p1||p2), KL(p2||p1))``, the twin
    score."""
    return check_score_function(
        fn,
        scores.twin_score,
        "the twin score",
        symmetric=True,
        hints={
            "only KL(p1||p2); take the larger of both directions": lambda lp: _directed(
                lp, 0, 1
            ),
            "only KL(p2||p1); take the larger of both directions": lambda lp: _directed(
                lp, 1, 0
            ),
            "the mean of both directions; the twin score is their maximum": (
                scores.symmetric_kl
            ),
            "the smaller of both directions; take the larger": lambda lp: torch.minimum(
                _directed(lp, 0, 1), _directed(lp, 1, 0)
            ),
        },
    )


def _explain_share(
    para: dict, label: str, kind: str, budget: float, share: float, want: float
) -> None:
    """Fail with the likely mistake behind a wrong share of ``label``: the other kind
    of score, a threshold calibrated on every text, or neither."""

    def above(scores_: torch.Tensor, calibration: torch.Tensor) -> float:
        threshold = scores.budget_threshold(calibration, budget)
        return float((scores_ > threshold).double().mean())

    other = "nll" if kind == "twin" else "twin"
    calib = para["English: held-out"]
    if abs(share - above(para[label][other], calib[other])) < 1e-9:
        _fail(f"kind = {kind!r}: you used the {other!r} scores; read para[label][kind]")
    pooled = torch.cat([v[kind] for v in para.values()])
    if abs(share - above(para[label][kind], pooled)) < 1e-9:
        _fail(
            "you calibrated on every text; calibrate on para[calib] only, the English "
            "you trust"
        )
    _fail(
        f"kind = {kind!r}, budget {budget:.0%}: {label} gets {share:.3f}, expected "
        f"{want:.3f}"
    )


def check_flag_shares(fn: Callable[[dict, str, float, str], dict]) -> bool:
    """Check ``fn(para, calib, budget, kind) -> {label: share}`` (chapter 11): the
    threshold for ``budget`` on ``para[calib][kind]``
    (:func:`ood_utils.scores.budget_threshold`), then for every text the share of its
    paragraph scores ``para[label][kind]`` strictly above it."""
    g = torch.Generator().manual_seed(17)
    para = {
        "English: held-out": {
            "twin": torch.rand(200, generator=g),
            "nll": torch.rand(200, generator=g),
        },
        "English: other": {
            "twin": 0.1 + torch.rand(80, generator=g),
            "nll": torch.rand(80, generator=g),
        },
        "German": {
            "twin": 0.9 + torch.rand(50, generator=g),
            "nll": 2 * torch.rand(50, generator=g),
        },
    }
    for kind, budget in (("twin", 0.05), ("nll", 0.1)):
        t = scores.budget_threshold(para["English: held-out"][kind], budget)
        want = {k: float((v[kind] > t).double().mean()) for k, v in para.items()}
        got = _call(
            fn,
            {k: dict(v) for k, v in para.items()},
            "English: held-out",
            budget,
            kind,
            what="your function",
        )
        if not isinstance(got, dict) or set(got) != set(para):
            _fail(
                f"return a dict with one share per text ({', '.join(para)}), got "
                f"{sorted(got) if isinstance(got, dict) else type(got).__name__}"
            )
        for label in para:
            share = _scalar(got[label], f"the share of {label}")
            if abs(share - want[label]) > 1e-9:
                _explain_share(para, label, kind, budget, share, want[label])
    return _ok(
        "your shares match on three unseen texts, for both kinds of score and two "
        "budgets"
    )
