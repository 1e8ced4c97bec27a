"""Chapter 8, training schemes: rotations, and a bootstrapped AUROC."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import metrics
from ._base import _as_tensor, _call, _fail, _ok


def check_rotation(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> bool:
    """Check ``fn(images (B, 1, H, W), k) -> (B, 1, H, W)``: ``k`` quarter turns
    counter-clockwise (chapter 8), on fresh images that are not square, for k = 0, 1, 2,
    3, -1 and 5."""
    g = torch.Generator().manual_seed(13)
    x = torch.rand(5, 1, 6, 6, generator=g)
    for k in (1, 0, 2, 3, -1, 5):
        want = torch.rot90(x, k, dims=(-2, -1))
        got = _as_tensor(_call(fn, x.clone(), k, what="your rotation"), "your rotation")
        if got.shape != want.shape:
            _fail(
                f"k = {k}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}: "
                "turn the last two axes (height, width), not the batch or channel axis"
            )
        if torch.equal(got, want):
            continue
        if torch.equal(got, x):
            _fail(f"k = {k}: the images come back unturned")
        if torch.equal(got, torch.rot90(x, -k, dims=(-2, -1))):
            _fail(
                f"k = {k}: you turned clockwise; the exercise asks for "
                "counter-clockwise turns (torch.rot90 with a positive k, or flip then "
                "transpose)"
            )
        if torch.equal(got, x.transpose(-2, -1)):
            _fail(
                f"k = {k}: a transpose mirrors the image along its diagonal; a quarter "
                "turn also flips it"
            )
        _fail(f"k = {k}: not the image turned by {k} quarter turns counter-clockwise")
    return _ok(
        "your rotation matches torch.rot90 for k = 1, 0, 2, 3, -1, 5 on unseen images"
    )


def _reference_bootstrap(s_in: torch.Tensor, s_out: torch.Tensor) -> torch.Tensor:
    """``(2000,)`` AUROCs of a reference bootstrap: both sets resampled with
    replacement at their own size."""
    ref_g = torch.Generator().manual_seed(1)
    return torch.tensor(
        [
            metrics.auroc(
                s_in[torch.randint(len(s_in), (len(s_in),), generator=ref_g)],
                s_out[torch.randint(len(s_out), (len(s_out),), generator=ref_g)],
            )
            for _ in range(2000)
        ],
        dtype=torch.float64,
    )


def check_bootstrap_auroc(
    fn: Callable[[torch.Tensor, torch.Tensor, int, torch.Generator], torch.Tensor],
) -> bool:
    """Check ``fn(scores_id (B_in,), scores_ood (B_out,), n_boot, generator) ->
    (n_boot,)`` (chapter 8): AUROCs of resamples with replacement of both sets, each
    index drawn from ``generator``.

    On fresh scores the answer must be reproducible from the generator, centred on the
    AUROC, and as spread as a reference bootstrap of 2,000 resamples (standard deviation
    within 20%): resampling one set only, or without replacement, gives too little
    spread."""
    g = torch.Generator().manual_seed(14)
    s_in = torch.randn(250, generator=g, dtype=torch.float64)
    s_out = torch.randn(250, generator=g, dtype=torch.float64) + 1.0
    auc = metrics.auroc(s_in, s_out)

    def resample() -> torch.Tensor:  # the same seed each time
        seeded = torch.Generator().manual_seed(0)
        answer = _call(
            fn, s_in.clone(), s_out.clone(), 400, seeded, what="your bootstrap"
        )
        return _as_tensor(answer, "your bootstrap").double()

    got = resample()
    if got.shape != (400,):
        _fail(
            "expected one AUROC per resample, shape (400,) for n_boot = 400; got "
            f"{tuple(got.shape)}"
        )
    if not ((got >= 0) & (got <= 1)).all():
        _fail("every entry should be an AUROC, in [0, 1]")
    again = resample()
    if not torch.equal(got, again):
        _fail(
            "two calls with generators seeded alike give different AUROCs: draw every "
            "index from the generator you are given (torch.randint(..., "
            "generator=generator))"
        )
    if float(got.std()) < 1e-9:
        _fail(
            "every resample gives the same AUROC: draw indices with replacement "
            "(torch.randint), a new set for each resample; a permutation of the "
            "scores does not change their AUROC"
        )
    ref = _reference_bootstrap(s_in, s_out)
    if abs(float(got.mean()) - auc) > 0.015:
        _fail(
            f"your resampled AUROCs average {float(got.mean()):.3f}, far from the "
            f"AUROC of the scores, {auc:.3f}: resample each set from itself, keeping "
            "its size"
        )
    ratio = float(got.std() / ref.std())
    if ratio < 0.8:
        _fail(
            f"your AUROCs vary too little (standard deviation {float(got.std()):.4f}, "
            f"a bootstrap gives about {float(ref.std()):.4f}): resample *both* sets, "
            "each with replacement and at its own size"
        )
    if ratio > 1.25:
        _fail(
            f"your AUROCs vary too much (standard deviation {float(got.std()):.4f}, a "
            f"bootstrap gives about {float(ref.std()):.4f}): resample each set at its "
            "own size, not smaller"
        )
    return _ok(
        "reproducible from the generator, centred on the AUROC "
        f"({float(got.mean()):.3f} vs {auc:.3f}) and as spread as the bootstrap "
        f"(standard deviation {ratio:.2f} x the reference's)"
    )
