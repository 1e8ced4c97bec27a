"""Attacks that optimise noise until a classifier, or a twin detector, is fooled.

Start from uniform noise and minimise a loss of the model's log-probabilities with
Adadelta. All restarts are one batch, and each restart's loss depends only on its own
image, so R restarts cost about as much as one. The conditions of an attack are named
choices (:class:`AttackConditions`): the book's (:data:`BOOK_CONDITIONS`: dropout off,
pixels kept in ``[0, 1]``, each restart frozen at its first success) or the original's
code (:data:`ORIGINAL_CONDITIONS`: dropout on, noise fed straight into the network's
normalised input space and never clamped, a fixed number of steps, success judged on the
outputs of the last step).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .data import uniform_noise
from .models import Ensemble, input_normalization, model_mode
from .progress import progress_bar
from .scores import disagreement, pairwise_kl, twin_score
from .validate import check_images


@dataclass(frozen=True)
class AttackConditions:
    """How an attack runs and is judged, each a named choice.

    Attributes:
        dropout: ``"off"``: the model in eval mode, the network that would be deployed
            (the book); ``"on"``: train mode, as the original's attacks (its networks
            were loaded and never put in eval mode), so every step and the judged
            outputs draw dropout masks.
        start: ``"pixel"``: the noise is the image, pixels uniform in ``[0, 1]`` (the
            book); ``"normalised"``: the noise is fed straight into the network's
            normalised input, as the original fed ``torch.rand`` to a network that
            expects normalised digits, and it is that input which is optimised (the
            image is ``mean + std * noise``).
        clamp: keep the pixels in ``[0, 1]`` after every step (the book; the original
            never did).
        stop: ``"early"``: freeze each restart at its first success (the book);
            ``"fixed"``: run every step (the original).
        judge: ``"final"``: success is judged on a fresh pass over the final images (the
            book); ``"last-step"``: on the outputs of the last step's forward pass,
            computed before the last update (the original).
        distance: the joint attack's agreement term: ``"prob-sq"``, the squared distance
            of the members' probability vectors (the book), or ``"logprob-mse"``,
            ``F.mse_loss`` of their log-probabilities, a mean over classes (the
            original).
    """

    dropout: str = "off"
    start: str = "pixel"
    clamp: bool = True
    stop: str = "early"
    judge: str = "final"
    distance: str = "prob-sq"

    def __post_init__(self) -> None:
        allowed = {
            "dropout": ("off", "on"),
            "start": ("pixel", "normalised"),
            "clamp": (True, False),
            "stop": ("early", "fixed"),
            "judge": ("final", "last-step"),
            "distance": ("prob-sq", "logprob-mse"),
        }
        for name, values in allowed.items():
            if getattr(self, name) not in values:
                raise ValueError(
                    f"unknown {name} {getattr(self, name)!r}: expected one of {values}"
                )


#: The book's conditions: dropout off, pixel space clamped to [0, 1], early stop,
#: final images.
BOOK_CONDITIONS = AttackConditions()
#: The original's code: dropout on, unclamped normalised-space noise, fixed steps, last
#: step judged.
ORIGINAL_CONDITIONS = AttackConditions(
    dropout="on",
    start="normalised",
    clamp=False,
    stop="fixed",
    judge="last-step",
    distance="logprob-mse",
)


@dataclass
class AttackResult:
    """Outcome of a batched attack.

    Attributes:
        images: ``(R, C, H, W)`` final images (on the CPU); in ``[0, 1]`` unless the
            attack ran unclamped.
        log_probs: ``(R, K)`` the attacked model's log-probabilities on which success
            was judged (``(N, R, K)``, one row per member, for an ensemble): judge them
            again with another rule (e.g. :func:`passes_detector` without the confidence
            condition).
        success: ``(R,)`` bool.
        steps: ``(R,)`` step at which each restart first succeeded (-1 = never); with
            ``stop="fixed"``, the number of steps for a success (only the end is
            judged).
        start: ``(R, C, H, W)`` the starting images, in the same space as ``images``.
    """

    images: torch.Tensor
    log_probs: torch.Tensor
    success: torch.Tensor
    steps: torch.Tensor
    start: torch.Tensor

    @property
    def probs(self) -> torch.Tensor:
        """The judged class probabilities, ``log_probs.exp()``."""
        return self.log_probs.exp()

    @property
    def success_rate(self) -> float:
        """Share of restarts that succeeded."""
        return float(self.success.double().mean())


def entropy(log_probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats over the last axis: ``(..., K) -> (...)``."""
    return -(log_probs.exp() * log_probs).sum(-1)


def optimise_inputs(
    objective: Callable[[torch.Tensor], torch.Tensor],
    done: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    steps: int,
    lr: float = 1.0,
    progress: bool = True,
    desc: str = "attack",
    bounds: tuple[float, float] | None = (0.0, 1.0),
    stop_early: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimise a per-input objective over a batch of images with Adadelta.

    Args:
        objective: ``x (R, C, H, W) -> (R,)`` losses; input ``r``'s loss must depend on
            ``x[r]`` only.
        done: ``x -> (R,)`` bool; an input that is done is frozen (its gradient is
            zeroed).
        x0: ``(R, C, H, W)`` starting images.
        steps: maximum optimisation steps.
        lr: Adadelta learning rate.
        bounds: ``(low, high)`` the inputs are clamped to after every step (pixels:
            ``[0, 1]``), or ``None`` for no clamping.
        stop_early: freeze each input once it is done; ``False`` runs every step and
            never calls ``done`` (every ``first_step`` is then -1).

    Returns:
        ``(x, first_step)``: the final images (detached) and, per input, the step at
        which it was first done (-1 = never).
    """
    check_images(x0)
    if steps < 1:
        raise ValueError(f"steps must be positive, got {steps}")
    if bounds is not None and not bounds[0] < bounds[1]:
        raise ValueError(f"bounds must be (low, high) with low < high, got {bounds}")
    x = x0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adadelta([x], lr=lr)
    first = torch.full((x.shape[0],), -1, dtype=torch.long)
    finished = torch.zeros(x.shape[0], dtype=torch.bool)
    if stop_early:
        with torch.no_grad():
            finished = done(x).cpu()
        first[finished] = 0
    bar = progress_bar(
        range(1, steps + 1), progress=progress, mininterval=1.0, desc=desc
    )
    for step in bar:
        if bool(finished.all()):
            break
        loss = objective(x)
        (grad,) = torch.autograd.grad(loss.sum(), x)
        grad[finished.to(grad.device)] = 0.0
        x.grad = grad
        opt.step()
        with torch.no_grad():
            if bounds is not None:
                x.clamp_(*bounds)
            if not stop_early:
                continue
            now = done(x).cpu() & ~finished
        first[now] = step
        finished |= now
        bar.set_postfix(done=f"{int(finished.sum())}/{len(finished)}")
    bar.close()
    return x.detach(), first


def _log_probs_of(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> log-probabilities``: ``(N, R, K)`` for an :class:`Ensemble`, ``(R, K)``
    for a classifier."""
    if isinstance(model, Ensemble):
        return model
    return lambda x: F.log_softmax(model(x), -1)


def attack(
    model: nn.Module,
    loss: Callable[[torch.Tensor], torch.Tensor],
    success: Callable[[torch.Tensor], torch.Tensor],
    n_restarts: int = 100,
    steps: int = 300,
    lr: float = 1.0,
    seed: int = 0,
    shape: tuple[int, int, int] = (1, 28, 28),
    conditions: AttackConditions = BOOK_CONDITIONS,
    progress: bool = True,
    desc: str = "attack",
) -> AttackResult:
    """Optimise ``n_restarts`` seeded noise images against ``model`` under
    ``conditions``.

    Args:
        model: a classifier returning logits ``(R, K)``, or an :class:`Ensemble`
            (log-probabilities ``(N, R, K)``). It runs in the mode
            ``conditions.dropout`` asks for; its own mode is restored afterwards.
        loss: log-probabilities -> ``(R,)`` losses to minimise.
        success: log-probabilities -> ``(R,)`` bool: the attack's goal is reached.
        n_restarts: independent noise images, optimised as one batch.
        steps: Adadelta steps (at most, with early stopping).
        lr: Adadelta learning rate.
        seed: seed of the starting noise and, with dropout on, of the dropout masks
            (drawn inside :func:`torch.random.fork_rng`: the global generator is left as
            it was).
        conditions: see :class:`AttackConditions`.

    Returns:
        An :class:`AttackResult`.
    """
    if n_restarts < 1:
        raise ValueError(f"n_restarts must be positive, got {n_restarts}")
    forward = _log_probs_of(model)
    device = next(model.parameters()).device
    mean, std = (
        input_normalization(model) if conditions.start == "normalised" else (0.0, 1.0)
    )

    def image(v: torch.Tensor) -> torch.Tensor:  # the optimised variable -> pixels
        return v if conditions.start == "pixel" else mean + std * v

    last: dict[str, torch.Tensor] = {}

    def objective(v: torch.Tensor) -> torch.Tensor:
        lp = forward(image(v))
        last["log_probs"] = lp.detach()
        return loss(lp)

    bounds = ((0.0 - mean) / std, (1.0 - mean) / std) if conditions.clamp else None
    v0 = uniform_noise(n_restarts, seed=seed, shape=shape).to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        with model_mode(model, training=conditions.dropout == "on"):
            v, first = optimise_inputs(
                objective,
                lambda v: success(forward(image(v))),
                v0,
                steps=steps,
                lr=lr,
                progress=progress,
                desc=desc,
                bounds=bounds,
                stop_early=conditions.stop == "early",
            )
            with torch.no_grad():  # (no step ran if every restart passed at the start)
                lp = last.get("log_probs") if conditions.judge == "last-step" else None
                lp = forward(image(v)) if lp is None else lp
                ok = success(lp).cpu()
    if conditions.stop == "fixed":
        first = torch.where(ok, steps, -1)
    return AttackResult(
        images=image(v).cpu(),
        log_probs=lp.cpu(),
        success=ok,
        steps=first,
        start=image(v0).cpu(),
    )


def fooling_attack(
    model: nn.Module, threshold: float = 0.8, **options: Any
) -> AttackResult:
    """Turn uniform noise into images that ``model`` classifies with confidence >
    ``threshold``.

    Minimises the entropy of the prediction (the original's ``attack_simple``: 100 steps
    at lr 1 under :data:`ORIGINAL_CONDITIONS`).

    Args:
        model: a classifier returning logits ``(B, K)``.
        threshold: success when the top class probability exceeds this.
        options: ``n_restarts``, ``steps``, ``lr``, ``seed``, ``shape``, ``conditions``,
            ``progress``: as in :func:`attack`.

    Returns:
        An :class:`AttackResult` with ``probs`` ``(R, K)``.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a probability in (0, 1), got {threshold}")
    return attack(
        model,
        loss=entropy,
        success=lambda lp: lp.exp().amax(-1) > threshold,
        **{"desc": "fooling attack", **options},
    )


def joint_objective(
    log_probs: torch.Tensor, mse_weight: float = 1.0, distance: str = "prob-sq"
) -> torch.Tensor:
    """The joint attack's loss per input: every member's entropy, plus all directed KLs
    between members, plus a squared distance between their predictions.

    ``distance`` (see :class:`AttackConditions`): ``"prob-sq"`` sums the squared
    differences of the members' probabilities over classes; ``"logprob-mse"`` averages
    those of their log-probabilities, as the original's ``F.mse_loss(o0, o1)``. Both are
    summed over pairs.

    ``log_probs: (N, R, K) -> (R,)``. Minimising it asks for confident members that
    agree."""
    if distance not in ("prob-sq", "logprob-mse"):
        raise ValueError(
            f"unknown distance {distance!r}: expected 'prob-sq' or 'logprob-mse'"
        )
    kl = pairwise_kl(log_probs).sum((0, 1))  # (R,)
    if distance == "prob-sq":
        p = log_probs.exp()
        dist = (p.unsqueeze(0) - p.unsqueeze(1)).pow(2).sum(-1).sum((0, 1)) / 2  # (R,)
    else:
        dist = (log_probs.unsqueeze(0) - log_probs.unsqueeze(1)).pow(2).mean(-1).sum(
            (0, 1)
        ) / 2
    return entropy(log_probs).sum(0) + kl + mse_weight * dist


def passes_detector(
    log_probs: torch.Tensor, score_threshold: float, confidence: float | None = 0.8
) -> torch.Tensor:
    """``(B,)`` bool: the inputs a twin detector lets through, with confident members.

    Twin score below ``score_threshold``, all members predicting the same class and,
    unless ``confidence`` is ``None``, every member's top-class probability above
    ``confidence``. ``log_probs: (N, B, K)``."""
    ok = (twin_score(log_probs) < score_threshold) & ~disagreement(log_probs)
    if confidence is not None:
        ok &= (log_probs.exp().amax(-1) > confidence).all(0)
    return ok


def joint_attack(
    ensemble: Ensemble,
    score_threshold: float,
    confidence: float | None = 0.8,
    **options: Any,
) -> AttackResult:
    """Attack all members at once: make them confident *and* in agreement on noise.

    A restart succeeds when the input would pass the twin detector unflagged
    (:func:`passes_detector`). The original's success-rate loop is this attack with
    ``steps=200, lr=0.1`` under :data:`ORIGINAL_CONDITIONS`, its threshold 10 times the
    mean symmetric KL (:func:`ood_utils.scores.original_reference`).

    Args:
        ensemble: at least two members.
        score_threshold: the detector's threshold in nats (e.g. ``10 * reference``).
        confidence: required top-class probability of every member, or ``None``.
        options: ``n_restarts``, ``steps``, ``lr``, ``seed``, ``shape``, ``conditions``,
            ``progress``: as in :func:`attack`.

    Returns:
        An :class:`AttackResult` whose ``probs`` are ``(N, R, K)``.
    """
    if len(ensemble) < 2:
        raise ValueError(
            "the joint attack needs an ensemble of at least 2 members, got "
            f"{len(ensemble)}"
        )
    if not score_threshold > 0:
        raise ValueError(f"score_threshold must be positive, got {score_threshold}")
    if confidence is not None and not 0.0 < confidence < 1.0:
        raise ValueError(
            f"confidence must be a probability in (0, 1) or None, got {confidence}"
        )
    distance = options.get("conditions", BOOK_CONDITIONS).distance
    return attack(
        ensemble,
        loss=lambda lp: joint_objective(lp, distance=distance),
        success=lambda lp: passes_detector(lp, score_threshold, confidence),
        **{"desc": "joint attack", **options},
    )


def caught(log_probs: torch.Tensor, score_threshold: float) -> torch.Tensor:
    """``(B,)`` bool: the inputs the twin detector flags, whatever the members'
    confidence (twin score at or above ``score_threshold``, or the members disagree):
    how an attack on one twin is judged by both. ``log_probs: (N, B, K)``."""
    return ~passes_detector(log_probs, score_threshold, confidence=None)


def joint_attack_pair(
    ensemble: Ensemble,
    score_threshold: float,
    steps: int,
    confidence: float = 0.8,
    **options: Any,
) -> tuple[AttackResult, AttackResult]:
    """The joint attack judged with the confidence condition and without it:
    ``(strict, loose)``, both :func:`joint_attack`'s results.

    With a fixed number of steps (``conditions.stop == "fixed"``) the trajectory does
    not depend on the rule, so one run is judged both ways (``loose`` is ``strict``
    judged again); with an early stop each rule stops its own run. ``options``: as in
    :func:`joint_attack`."""
    strict = joint_attack(ensemble, score_threshold, confidence, steps=steps, **options)
    if options.get("conditions", BOOK_CONDITIONS).stop == "early":
        loose = joint_attack(ensemble, score_threshold, None, steps=steps, **options)
        return strict, loose
    ok = passes_detector(strict.log_probs, score_threshold, confidence=None)
    steps_taken = torch.where(ok, steps, -1)
    return strict, dataclasses.replace(strict, success=ok, steps=steps_taken)
