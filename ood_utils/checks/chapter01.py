"""Chapter 1, the fooling attack: a fooling image, and an adversarial digit."""

from __future__ import annotations

import torch
from torch import nn

from ..models import predict_log_probs
from ..validate import as_numpy
from ._base import _attacked_image, _fail, _image_batch, _made_from_noise, _ok, _scalar


def check_fooling_image(
    model: nn.Module,
    image: object,
    target: int,
    starts: object = None,
    min_prob: float = 0.8,
    train_images: torch.Tensor | None = None,
    train_labels: torch.Tensor | None = None,
) -> bool:
    """Check a fooling image: ``model`` gives it class ``target`` with probability ``>=
    min_prob``, and it was made from noise.

    Args:
        model: a classifier returning logits ``(B, K)``.
        image: one image ``(1, 28, 28)`` in ``[0, 1]``.
        target: the class the attack aimed for.
        starts: the noise images the attack started from, ``(R, 1, 28, 28)``; the image
            must lie near one of them (:data:`FROM_START`). Required: a real digit of
            the class would otherwise pass.
        train_images, train_labels: optionally, training images ``(M, 1, 28, 28)`` and
            labels ``(M,)``; the image must then be far from every one of class
            ``target``.
    """
    x, target = _attacked_image(image, target, starts)
    probs = predict_log_probs(model, x).exp()[0]
    p = float(probs[target])
    if p < min_prob:
        top = int(probs.argmax())
        _fail(
            f"the model gives class {target} only {p:.1%} (it prefers class {top} at "
            f"{float(probs[top]):.1%}); optimise longer, or check that you minimise "
            f"the negative log-probability of class {target}"
        )
    origin = _made_from_noise(x, starts, target, train_images, train_labels)
    return _ok(f"the model is {p:.1%} sure this image is a {target}; {origin}")


def _targeted_pgd(
    model: nn.Module, x0: torch.Tensor, target: int, eps: torch.Tensor, steps: int = 40
) -> torch.Tensor:
    """The exercise's attack (chapter 1): sign-gradient steps of ``eps / 10`` on ``-log
    p(target)``, projected into ``[x0 - eps, x0 + eps]`` and ``[0, 1]``; ``x0 (R, 1, H,
    W)``, ``eps (R,)``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x0, eps = x0.to(device), eps.view(-1, 1, 1, 1).to(device, x0.dtype)
    x = x0.clone()
    try:
        for _ in range(steps):
            x.requires_grad_(True)
            loss = -torch.log_softmax(model(x), dim=-1)[:, target]
            (grad,) = torch.autograd.grad(loss.sum(), x)
            with torch.no_grad():
                x = (x0 + (x - eps / 10 * grad.sign() - x0).clamp(-eps, eps)).clamp(
                    0.0, 1.0
                )
    finally:
        model.train(was_training)
    return x.detach().cpu()


def _budgets(grid: object, eps: float) -> list[float]:
    """The grid's budgets, sorted; ``eps`` must be one of them."""
    budgets = sorted(float(b) for b in torch.as_tensor(as_numpy(grid)).flatten())
    if not budgets or not all(0.0 < b <= 1.0 for b in budgets):
        raise ValueError(f"grid must hold budgets in (0, 1], got {budgets}")
    if not any(abs(eps - b) < 1e-6 for b in budgets):
        _fail(
            f"eps = {eps:g} is not one of the budgets the exercise tries "
            f"({', '.join(f'{b:g}' for b in budgets)})"
        )
    return budgets


def _check_smallest(
    model: nn.Module,
    x0: torch.Tensor,
    target: int,
    eps: float,
    budgets: list[float],
    min_prob: float,
) -> None:
    """No budget of the grid smaller than ``eps`` reaches ``min_prob`` for ``target``
    with the exercise's attack on ``x0``."""
    smaller = [b for b in budgets if b < eps - 1e-6]
    if smaller:
        attacked = _targeted_pgd(
            model, x0.expand(len(smaller), -1, -1, -1), target, torch.tensor(smaller)
        )
        reached = predict_log_probs(model, attacked).exp()[:, target]
        works = [(b, float(q)) for b, q in zip(smaller, reached) if q > min_prob + 0.05]
        if works:
            b, q = works[0]
            _fail(
                f"the image is right, but eps = {eps:g} is not the smallest budget "
                f"that works: the exercise's attack already reaches {q:.1%} for "
                f"{target} with eps = {b:g}"
            )


def check_adversarial_digit(
    model: nn.Module,
    original: object,
    image: object,
    target: int,
    eps: float,
    grid: object = None,
    min_prob: float = 0.8,
) -> bool:
    """Check a targeted attack on a real digit under the smallest L-infinity budget of a
    grid (chapter 1).

    Right when ``image`` stays within ``eps`` of ``original`` in every pixel, lies in
    ``[0, 1]``, ``model`` gives it class ``target`` with probability ``>= min_prob``,
    ``eps`` is one of ``grid``, and the exercise's attack (40 sign-gradient steps of
    ``eps / 10``) does not reach ``min_prob`` with any smaller budget of the grid.

    Args:
        model: a classifier returning logits ``(B, K)``.
        original: the real digit, ``(1, 28, 28)`` or ``(1, 1, 28, 28)``.
        image: the attacked digit, same shape.
        target: the class the attacker wants.
        eps: the budget you found: the largest change allowed in any one pixel.
        grid: the budgets the exercise tries, e.g. ``0.05 * torch.arange(1, 11)``
            (required).
    """
    if grid is None:
        raise ValueError(
            "pass the budgets you tried, grid=..., so that the check can verify that "
            "eps is the smallest that works"
        )
    _image_batch(image)  # a stub left as `...` says so first
    target = int(_scalar(target, "target"))
    eps = _scalar(eps, "eps")
    budgets = _budgets(grid, eps)
    x0 = _image_batch(original, "original")
    x = _image_batch(image)
    if x.shape != x0.shape:
        _fail(
            f"image has shape {tuple(x.shape)} but the original digit "
            f"{tuple(x0.shape)}: attack one digit and pass that one image"
        )
    change = (x - x0).abs()
    if float(change.max()) == 0.0:
        _fail("image is identical to the original: nothing was attacked")
    if float(change.max()) > eps + 1e-5:
        _fail(
            f"{int((change > eps + 1e-5).sum())} pixels change by more than eps = "
            f"{eps:g} (up to {float(change.max()):.3g}): after every step, project "
            "back into the budget with x = x0 + (x - x0).clamp(-eps, eps), then clamp "
            "to [0, 1]"
        )
    probs = predict_log_probs(model, torch.cat([x0, x])).exp()
    if int(probs[0].argmax()) == target:
        raise ValueError(
            f"the model already classifies the original digit as {target}: choose "
            "another target class"
        )
    p = float(probs[1, target])
    if p < min_prob:
        top = int(probs[1].argmax())
        _fail(
            f"within the budget, but the model gives class {target} only {p:.1%} (it "
            f"prefers {top} at {float(probs[1, top]):.1%}): take more steps, or allow "
            "a larger eps; check that you *decrease* the loss -log p(target)"
        )
    _check_smallest(model, x0, target, eps, budgets, min_prob)
    return _ok(
        f"the model is {p:.1%} sure the attacked digit is a {target}; largest pixel "
        f"change {float(change.max()):.3g} <= {eps:g}, the smallest budget of the grid "
        f"that works; L2 distance {float(change.norm()):.3g}"
    )
