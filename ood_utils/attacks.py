"""The fooling attack: optimise noise until a classifier is confidently wrong.

Start from uniform noise and minimise the entropy of the model's prediction with
Adadelta, pixel values kept in ``[0, 1]``. All restarts are one batch, and each
restart's loss depends only on its own image, so R restarts cost about as much
as one. A restart succeeds once the top class probability exceeds a threshold
(0.8 in the original); it is then frozen, so its image is the first one that
crossed the line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data import uniform_noise
from .models import Ensemble, eval_mode
from .scores import disagreement, pairwise_kl, twin_score
from .validate import check_images


@dataclass
class AttackResult:
    """Outcome of a batched attack.

    Attributes:
        images: ``(R, C, H, W)`` final images in ``[0, 1]`` (on the CPU).
        probs: ``(R, K)`` the attacked model's class probabilities for them
            (``(N, R, K)``, one row per member, for an ensemble).
        success: ``(R,)`` bool, ``max(probs) > threshold``.
        steps: ``(R,)`` step at which each restart first succeeded (-1 = never).
    """

    images: torch.Tensor
    probs: torch.Tensor
    success: torch.Tensor
    steps: torch.Tensor

    @property
    def success_rate(self) -> float:
        """Share of restarts that succeeded."""
        return float(self.success.double().mean())


def entropy(log_probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats over the last axis: ``(..., K) -> (...)``."""
    return -(log_probs.exp() * log_probs).sum(-1)


def optimise_inputs(objective: Callable[[torch.Tensor], torch.Tensor],
                    done: Callable[[torch.Tensor], torch.Tensor],
                    x0: torch.Tensor, steps: int, lr: float = 1.0,
                    progress: bool = True, desc: str = "attack") -> tuple[torch.Tensor, torch.Tensor]:
    """Minimise a per-input objective over a batch of images with Adadelta, in ``[0, 1]``.

    Args:
        objective: ``x (R, C, H, W) -> (R,)`` losses; input ``r``'s loss must depend on ``x[r]`` only.
        done: ``x -> (R,)`` bool; an input that is done is frozen (its gradient is zeroed).
        x0: ``(R, C, H, W)`` starting images.
        steps: maximum optimisation steps.
        lr: Adadelta learning rate.

    Returns:
        ``(x, first_step)``: the final images (detached) and, per input, the step at
        which it was first done (-1 = never).
    """
    check_images(x0)
    if steps < 1:
        raise ValueError(f"steps must be positive, got {steps}")
    x = x0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adadelta([x], lr=lr)
    first = torch.full((x.shape[0],), -1, dtype=torch.long)
    with torch.no_grad():
        finished = done(x).cpu()
    first[finished] = 0
    bar = tqdm(range(1, steps + 1), disable=not progress, mininterval=1.0, desc=desc)
    for step in bar:
        if bool(finished.all()):
            break
        loss = objective(x)
        (grad,) = torch.autograd.grad(loss.sum(), x)
        grad[finished.to(grad.device)] = 0.0
        x.grad = grad
        opt.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
            now = done(x).cpu() & ~finished
        first[now] = step
        finished |= now
        bar.set_postfix(done=f"{int(finished.sum())}/{len(finished)}")
    bar.close()
    return x.detach(), first


def _attack_noise(model: nn.Module, objective: Callable[[torch.Tensor], torch.Tensor],
                  done: Callable[[torch.Tensor], torch.Tensor], n_restarts: int, steps: int,
                  lr: float, seed: int, shape: tuple[int, int, int], progress: bool,
                  desc: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimise ``n_restarts`` seeded noise images against ``model`` in eval mode (see
    :func:`optimise_inputs`); the images stay on the model's device."""
    if n_restarts < 1:
        raise ValueError(f"n_restarts must be positive, got {n_restarts}")
    x0 = uniform_noise(n_restarts, seed=seed, shape=shape).to(next(model.parameters()).device)
    return optimise_inputs(objective, done, x0, steps=steps, lr=lr, progress=progress, desc=desc)


def fooling_attack(model: nn.Module, n_restarts: int = 100, steps: int = 300, lr: float = 1.0,
                   threshold: float = 0.8, seed: int = 0, shape: tuple[int, int, int] = (1, 28, 28),
                   progress: bool = True) -> AttackResult:
    """Turn uniform noise into images that ``model`` classifies with confidence > ``threshold``.

    Args:
        model: a classifier returning logits ``(B, K)``; it is put in eval mode.
        n_restarts: number of independent noise images, optimised as one batch.
        steps: maximum Adadelta steps.
        lr: Adadelta learning rate.
        threshold: success when the top class probability exceeds this.
        seed: seed of the starting noise.

    Returns:
        An :class:`AttackResult`.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a probability in (0, 1), got {threshold}")
    with eval_mode(model):
        x, first = _attack_noise(
            model, objective=lambda x: entropy(F.log_softmax(model(x), -1)),
            done=lambda x: F.softmax(model(x), -1).amax(-1) > threshold,
            n_restarts=n_restarts, steps=steps, lr=lr, seed=seed, shape=shape,
            progress=progress, desc="fooling attack")
        with torch.no_grad():
            probs = F.softmax(model(x), -1).cpu()
    return AttackResult(images=x.cpu(), probs=probs, success=probs.amax(-1) > threshold, steps=first)


def joint_objective(log_probs: torch.Tensor, mse_weight: float = 1.0) -> torch.Tensor:
    """The joint attack's loss per input: every member's entropy, plus all directed KLs
    between members, plus the squared distance between their probability vectors.

    ``log_probs: (N, R, K) -> (R,)``. Minimising it asks for confident members that agree.
    """
    p = log_probs.exp()
    kl = pairwise_kl(log_probs).sum((0, 1))                                  # (R,)
    mse = (p.unsqueeze(0) - p.unsqueeze(1)).pow(2).sum(-1).sum((0, 1)) / 2   # (R,)
    return entropy(log_probs).sum(0) + kl + mse_weight * mse


def joint_attack(ensemble: Ensemble, score_threshold: float, n_restarts: int = 100,
                 steps: int = 300, lr: float = 1.0, confidence: float | None = 0.8,
                 seed: int = 0, shape: tuple[int, int, int] = (1, 28, 28),
                 progress: bool = True) -> AttackResult:
    """Attack all members at once: make them confident *and* in agreement on noise.

    A restart succeeds when the input would pass the twin detector unflagged (twin score
    below ``score_threshold``, all members predicting the same class) and, unless
    ``confidence`` is ``None``, every member's top-class probability exceeds ``confidence``.

    Args:
        ensemble: at least two members.
        score_threshold: the detector's threshold in nats (e.g. ``10 * reference``).
        confidence: required top-class probability of every member, or ``None``.
        Others as in :func:`fooling_attack`.

    Returns:
        An :class:`AttackResult` whose ``probs`` are ``(N, R, K)``.
    """
    if len(ensemble) < 2:
        raise ValueError(f"the joint attack needs an ensemble of at least 2 members, got {len(ensemble)}")
    if not score_threshold > 0:
        raise ValueError(f"score_threshold must be positive, got {score_threshold}")
    if confidence is not None and not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be a probability in (0, 1) or None, got {confidence}")

    def passes(log_probs: torch.Tensor) -> torch.Tensor:
        ok = (twin_score(log_probs) < score_threshold) & ~disagreement(log_probs)
        if confidence is not None:
            ok &= (log_probs.exp().amax(-1) > confidence).all(0)
        return ok

    with eval_mode(ensemble):
        x, first = _attack_noise(
            ensemble, objective=lambda x: joint_objective(ensemble(x)),
            done=lambda x: passes(ensemble(x)), n_restarts=n_restarts, steps=steps, lr=lr,
            seed=seed, shape=shape, progress=progress, desc="joint attack")
        with torch.no_grad():
            log_probs = ensemble(x)
            success = passes(log_probs).cpu()
    return AttackResult(images=x.cpu(), probs=log_probs.exp().cpu(), success=success, steps=first)
