"""Chapter 4, attacking the twins: an image that fools both, and an attack's success
curve."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .. import scores
from ..models import predict_log_probs
from ._base import (
    _as_tensor,
    _attacked_image,
    _call,
    _fail,
    _made_from_noise,
    _matches,
    _ok,
    _with_shape,
)


def check_twins_fooled(
    ensemble: nn.Module,
    image: object,
    target: int,
    ref: float,
    starts: object = None,
    k: float = 10.0,
    min_prob: float = 0.8,
    train_images: torch.Tensor | None = None,
    train_labels: torch.Tensor | None = None,
) -> bool:
    """Check an attack on the twins: every member ``>= min_prob`` sure of ``target``,
    unflagged, and the image made from noise.

    Args:
        ensemble: an :class:`ood_utils.models.Ensemble` (``forward`` gives ``(N, B, C)``
            log-probabilities).
        image: one image ``(1, 28, 28)``.
        target: the class the attacker wants.
        ref: the in-distribution reference of the twin score (nats).
        starts: the noise images the attack started from, ``(R, 1, 28, 28)`` (required,
            as in :func:`check_fooling_image`).
        k: the flag multiplier.
        train_images, train_labels: as in :func:`check_fooling_image`.
    """
    x, target = _attacked_image(image, target, starts)
    lp = predict_log_probs(ensemble, x)  # (N, 1, C)
    probs = lp.exp()[:, 0, target]
    score = float(scores.twin_score(lp)[0])
    weak = [i for i, p in enumerate(probs.tolist()) if p < min_prob]
    if weak:
        _fail(
            "not every member is fooled: "
            + ", ".join(
                f"member {i} gives class {target} {float(probs[i]):.1%}" for i in weak
            )
            + f" (needed {min_prob:.0%}); an objective must push *each* member, e.g. "
            "the sum of their negative log-probabilities"
        )
    if score > k * ref:
        _fail(
            f"all members say {target}, but the twin score {score:.3g} is "
            f"{score / ref:.1f}x the reference, above the {k:g}x flag: the detector "
            "catches it. Add a term that pulls the members' distributions together"
        )
    origin = _made_from_noise(x, starts, target, train_images, train_labels)
    return _ok(
        f"every member is at least {float(probs.min()):.1%} sure of class {target}, "
        f"and the twin score is {score / ref:.2f}x the reference: the attack evades "
        f"the {k:g}x rule; {origin}"
    )


def check_success_curve(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> bool:
    """Check ``fn(first_step (R,), budgets (S,)) -> (S,)``: an attack's success rate per
    step budget (chapter 4).

    ``first_step[r]`` is the step at which restart ``r`` first succeeded, ``-1`` if it
    never did (as in :class:`ood_utils.attacks.AttackResult`). Entry ``s`` of the answer
    is the share of *all* restarts that succeeded within ``budgets[s]`` steps (step 0 =
    already at the start)."""
    g = torch.Generator().manual_seed(4)
    first = torch.randint(0, 40, (200,), generator=g)
    first[torch.rand(200, generator=g) < 0.3] = -1  # 30% never succeed
    first[:10] = 0  # some succeed at once
    budgets = torch.tensor([0, 1, 5, 10, 20, 39, 60])
    succeeded = first >= 0
    want = (succeeded & (first <= budgets[:, None])).double().mean(1)
    got = _as_tensor(
        _call(fn, first.clone(), budgets.clone(), what="your function"), "your function"
    )
    got = _with_shape(
        got,
        want,
        f"expected one success rate per budget, shape {tuple(want.shape)} for budgets "
        f"of shape {tuple(budgets.shape)}",
    )
    mistakes = {
        "restarts that never succeeded (first step -1) count as successes: keep only "
        "first_step >= 0": (first <= budgets[:, None]).double().mean(1),
        "a restart that succeeded at step s counts for a budget of s steps: use <=, "
        "not <": (succeeded & (first < budgets[:, None])).double().mean(1),
        "you divided by the successful restarts only; divide by all restarts": (
            succeeded & (first <= budgets[:, None])
        )
        .double()
        .sum(1)
        / succeeded.sum(),
        "you returned counts; return shares (divide by the number of restarts)": (
            succeeded & (first <= budgets[:, None])
        )
        .double()
        .sum(1),
    }
    if _matches(
        got,
        want,
        f"success rates match on {len(first)} unseen restarts and {len(budgets)} "
        "budgets",
        mistakes,
        rtol=1e-5,
    ):
        return True
    worst = int((got - want).abs().argmax())
    _fail(
        f"for a budget of {int(budgets[worst])} steps you return "
        f"{float(got[worst]):.4f}, expected {float(want[worst]):.4f}"
    )
