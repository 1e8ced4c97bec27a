"""Measuring an experiment as the original printed it: a detector's numbers on a pair of
test sets (:func:`ood_utils.metrics.detection_numbers`) and Exp 1's attacks. The
chapters and ``tools/reproduce.py`` both use these."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .. import attacks, scores
from ..metrics import detection_numbers  # noqa: F401 (the replication's name too)
from ..models import Ensemble
from .protocols import AttackSettings, attack_conditions

#: The joint attack's two numbers, with the confidence condition and without it.
JOINT_METRICS = ("joint attack", "joint attack, no confidence")


def attack_reference(lp_in: torch.Tensor, name: str) -> float:
    """The reference an attack's detector is calibrated with, from in-distribution
    log-probabilities ``(N, B, C)``: ``"mean-symmetric"`` (the original's ``kl()``, in
    batches of 1,000) or ``"mean-score"`` (the book's mean twin score); the names of
    :data:`ood_utils.replication.protocols.ATTACK_REFERENCES`."""
    if name == "mean-symmetric":
        return scores.original_reference(lp_in, batch_size=1000)
    if name == "mean-score":
        return scores.reference(scores.twin_score(lp_in))
    raise ValueError(f"unknown reference {name!r}: 'mean-symmetric' or 'mean-score'")


def attack_numbers(
    twins: Ensemble,
    reference: float,
    settings: AttackSettings,
    progress: bool = True,
) -> dict[str, float]:
    """The original's attack experiments on ``twins``, under ``settings`` (a protocol's
    :attr:`~ood_utils.replication.protocols.Protocol.attacks`).

    The fooling attack on member 0 alone (the single CNN), the same attack on twin 1
    judged by the twins (``settings.steps``, ``settings.lr``), and the joint attack
    (``joint_steps``, ``joint_lr``) with and without the confidence condition; the
    detector's threshold is ``10 * reference``.

    Returns:
        ``fooling success``, ``twin-1 attack flagged``, ``twin-1 median score /
        reference``, ``joint attack`` (both members > 0.8 sure and unflagged) and
        ``joint attack, no confidence``, each a share of ``n_restarts``.
    """
    args = dict(
        n_restarts=settings.n_restarts,
        seed=settings.seed,
        progress=progress,
        conditions=settings.conditions,
    )
    fool = dict(steps=settings.steps, lr=settings.lr, **args)
    single = attacks.fooling_attack(twins[0], **fool)
    twin1 = attacks.attack(
        twins,
        loss=lambda lp: attacks.entropy(lp[0]),
        success=lambda lp: lp[0].exp().amax(-1) > 0.8,
        desc="attack on twin 1",
        **fool,
    )
    threshold = 10 * reference
    strict, loose = attacks.joint_attack_pair(
        twins, threshold, settings.joint_steps, lr=settings.joint_lr, **args
    )
    return {
        "fooling success": single.success_rate,
        "twin-1 attack flagged": float(
            attacks.caught(twin1.log_probs, threshold).double().mean()
        ),
        "twin-1 median score / reference": float(
            (scores.twin_score(twin1.log_probs) / reference).median()
        ),
        **dict(zip(JOINT_METRICS, (strict.success_rate, loose.success_rate))),
    }


def joint_rates(
    twins: Ensemble,
    references: Mapping[str, float],
    factors: Mapping[str, object],
    n_restarts: int = 100,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, float]:
    """The joint attack of ``factors`` (:func:`~ood_utils.replication.ladders.
    e1_joint_walk`'s) on ``twins``: ``{"joint attack": share, "joint attack, no
    confidence": share}``, the detector's threshold 10 times
    ``references[factors["reference"]]``, judged both ways as
    :func:`ood_utils.attacks.joint_attack_pair` does."""
    strict, loose = attacks.joint_attack_pair(
        twins,
        10 * references[str(factors["reference"])],
        int(factors["steps"]),
        n_restarts=n_restarts,
        lr=float(factors["lr"]),
        seed=seed,
        progress=progress,
        conditions=attack_conditions(factors),
    )
    return dict(zip(JOINT_METRICS, (strict.success_rate, loose.success_rate)))


def joint_grid_numbers(
    twins: Ensemble,
    reference: float,
    settings: AttackSettings,
    grid: Mapping[str, Sequence[float]],
    progress: bool = True,
) -> dict[tuple[float, int], dict[str, float]]:
    """The joint attack of :func:`attack_numbers` at every learning rate and step count
    of ``grid`` (a protocol's
    :attr:`~ood_utils.replication.protocols.Protocol.joint_grid`), a fixed number of
    steps each: ``{(lr, steps): {"joint attack": share, "joint attack, no confidence":
    share}}``, both judged on one trajectory."""
    if settings.conditions.stop != "fixed":
        raise ValueError(
            "the grid runs a fixed number of steps: conditions.stop='fixed'"
        )
    out = {}
    for lr in grid["lr"]:
        for steps in grid["steps"]:
            strict, loose = attacks.joint_attack_pair(
                twins,
                10 * reference,
                int(steps),
                lr=float(lr),
                n_restarts=settings.n_restarts,
                seed=settings.seed,
                progress=progress,
                conditions=settings.conditions,
            )
            rates = (strict.success_rate, loose.success_rate)
            out[lr, int(steps)] = dict(zip(JOINT_METRICS, rates))
    return out
