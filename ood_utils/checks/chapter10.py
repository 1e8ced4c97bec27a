"""Chapter 10, a weights-only method: cosine similarity, and calibration on random
draws."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._base import _as_tensor, _call, _fail, _matches, _ok, _with_shape


def _draws(
    fn: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    s_in: torch.Tensor,
    s_out: torch.Tensor,
    n_cal: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The answer's ``(alarms, caught)`` for 300 draws of ``n_cal`` calibration scores
    and a 5% budget, each ``(300,)``, checked for its form."""
    res = _call(
        fn,
        s_in.clone(),
        s_out.clone(),
        n_cal,
        0.05,
        300,
        torch.Generator().manual_seed(0),
        what="your function",
    )
    if not (isinstance(res, tuple) and len(res) == 2):
        _fail(f"return two tensors (false alarms, caught), got {type(res).__name__}")
    alarms, caught = (_as_tensor(r, "your function").double() for r in res)
    if alarms.shape != (300,) or caught.shape != (300,):
        _fail(
            "expected two tensors of shape (300,) for draws = 300, got "
            f"{tuple(alarms.shape)} and {tuple(caught.shape)}"
        )
    return alarms, caught


def check_calibration_draws(
    fn: Callable[..., tuple[torch.Tensor, torch.Tensor]],
) -> bool:
    """Check ``fn(scores_id (B,), scores_ood (B_out,), n_cal, budget, draws, generator)
    -> (alarms, caught)`` (chapter 10): for each of ``draws`` random calibration sets of
    ``n_cal`` in-distribution scores, the threshold for ``budget``
    (:func:`ood_utils.scores.budget_threshold`), then the share of the *other*
    in-distribution scores above it (false alarms) and of the OOD scores above it
    (caught); both ``(draws,)``."""
    g = torch.Generator().manual_seed(16)
    s_in = torch.rand(2000, generator=g, dtype=torch.float64)
    s_out = 0.6 + torch.rand(500, generator=g, dtype=torch.float64)
    out = {n: _draws(fn, s_in, s_out, n) for n in (20, 500)}
    a20, a500 = out[20][0], out[500][0]
    if float(a500.std()) < 1e-9 or float(a20.std()) < 1e-9:
        _fail(
            "every calibration gives the same false-alarm share: draw a new random "
            "calibration set for each draw, and measure the false alarms on the "
            "in-distribution scores it did not use"
        )
    if float(a500.median()) < 0.035 or float(a500.median()) > 0.065:
        _fail(
            "with 500 calibration scores the median false-alarm share is "
            f"{float(a500.median()):.1%}, far from the 5% budget: set each threshold "
            "with scores.budget_threshold(calibration, budget) and count the held-out "
            "scores strictly above it"
        )
    if float(a20.std()) < 1.5 * float(a500.std()):
        _fail(
            "the false alarms vary as much with 20 calibration scores as with 500: "
            "calibrate on n_cal scores only, and evaluate on the rest"
        )
    c = out[500][1]
    # a 5% threshold on U(0, 1) scores is near 0.95, and 65% of U(0.6, 1.6) lies
    # above it
    expected = 0.65
    if abs(float(c.median()) - expected) > 0.05:
        _fail(
            f"the share of OOD scores caught has median {float(c.median()):.1%}, where "
            f"about {expected:.0%} lie above a 5% threshold here: count the OOD scores "
            "strictly above each threshold"
        )
    return _ok(
        f"median false alarms {float(a500.median()):.1%} for a 5% budget; 20 "
        f"calibration scores spread them {float(a20.std() / a500.std()):.1f}x as much "
        "as 500 (300 unseen draws each)"
    )


def check_cosine_similarity(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> bool:
    """Check ``fn(a, b): (B, ...) x (B, ...) -> (B,)``, the cosine similarity of
    flattened rows."""
    g = torch.Generator().manual_seed(5)
    a = torch.randn(16, 4, 3, 3, generator=g, dtype=torch.float64)
    b = a + 0.5 * torch.randn(16, 4, 3, 3, generator=g, dtype=torch.float64)
    b[0] = 3 * a[0]  # same direction, other length
    want = torch.nn.functional.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)
    got = _as_tensor(
        _call(fn, a.clone(), b.clone(), what="the cosine similarity"),
        "the cosine similarity",
    )
    got = _with_shape(
        got,
        want,
        f"expected one similarity per input, shape {tuple(want.shape)}, for inputs of "
        f"shape {tuple(a.shape)}, with all but the batch axis flattened first",
    )
    if _matches(
        got, want, "cosine similarity matches torch's on 16 activation maps", rtol=1e-5
    ):
        return True
    if abs(float(got[0]) - 1) > 1e-6:
        _fail(
            "two activations pointing the same way (one 3x the other) must have "
            f"similarity 1, got {float(got[0]):.4g}: divide by both norms"
        )
    _fail(
        "differs from the cosine similarity by up to "
        f"{float((got - want).abs().max()):.3g}"
    )
