"""Chapter 3, KL calibration: the symmetric KL, and the threshold of the flag rule."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .. import scores
from ._base import (
    ScoreFn,
    _call,
    _directed,
    _fail,
    _ok,
    _own_work,
    _scalar,
    check_score_function,
)


def check_symmetric_kl(fn: ScoreFn) -> bool:
    """Check ``fn: (2, B, C) -> (B,)`` = ``(KL(p1||p2) + KL(p2||p1)) / 2``."""
    return check_score_function(
        fn,
        scores.symmetric_kl,
        "the symmetric KL",
        symmetric=True,
        hints={
            "the sum KL(p1||p2) + KL(p2||p1); the exercise asks for their mean": (
                lambda lp: _directed(lp, 0, 1) + _directed(lp, 1, 0)
            ),
            "only KL(p1||p2); add the other direction": lambda lp: _directed(lp, 0, 1),
            "only KL(p2||p1); add the other direction": lambda lp: _directed(lp, 1, 0),
        },
    )


def _threshold_cases() -> list[tuple[torch.Tensor, float]]:
    """Fresh in-distribution scores and budgets: ``budget * n`` whole or not, ties, one
    tiny set."""
    g = torch.Generator().manual_seed(11)
    # heavy right tail
    smooth = torch.randn(1000, generator=g, dtype=torch.float64).exp()
    # five values
    ties = (4 * torch.rand(400, generator=g, dtype=torch.float64)).round() / 4
    return [
        (smooth, 0.01),
        (smooth[:999], 0.01),
        (smooth[:730], 0.05),
        (ties, 0.1),
        (smooth[:20], 0.0),
        (smooth[:37], 0.25),
    ]


def check_threshold(fn: Callable[[torch.Tensor, float], float]) -> bool:
    """Check ``fn(scores_id (B,), budget) -> float``: a threshold for a false-alarm
    budget.

    The rule is "flag ``score > threshold``". On fresh scores (ties included, budgets
    for which ``budget * B`` is not a whole number), the threshold must flag at most
    ``budget`` of them and be as sensitive as that allows, each within one sample: a
    quantile of the scores, e.g. ``torch.quantile(scores, 1 - budget)``, passes."""
    _own_work(fn, {"budget_threshold": scores.budget_threshold}, "choose the threshold")
    cases = _threshold_cases()
    for k, (s, budget) in enumerate(cases):
        t = _scalar(
            _call(fn, s.clone(), budget, what="your threshold function"),
            "the threshold",
        )
        if not math.isfinite(t):
            _fail(f"case {k}: the threshold should be finite, got {t}")
        n, flagged = s.numel(), int((s > t).sum())
        allowed = math.floor(round(budget * n, 9))
        best_t = scores.budget_threshold(s, budget)
        best = int((s > best_t).sum())  # the most the budget lets through
        ties = ", with ties" if k == 3 else ""
        where = f"case {k} ({n} scores, budget {budget:.0%}{ties})"
        if flagged > allowed + 1:
            _fail(
                f"{where}: your threshold {t:.4g} flags {flagged} in-distribution "
                f"scores, more than the {allowed} the budget allows: raise it. The "
                "rule flags score > threshold, so about (1 - budget) of the scores "
                "must lie at or below it"
            )
        if flagged < best - 1:
            _fail(
                f"{where}: within budget ({flagged} false alarms), but stricter than "
                f"needed: a threshold of {best_t:.4g} flags {best} and keeps within "
                "the budget. Lower it: as low as the budget allows"
            )
    return _ok(
        "your thresholds keep within the budget and are as sensitive as it allows "
        f"(within one sample) on {len(cases)} unseen sets of scores, ties included"
    )
