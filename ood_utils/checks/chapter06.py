"""Chapter 6, the identical-init sanity check: perturbed twins, and twins that differ
only in batch order."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._base import _call, _fail, _ok


def _tiny_net(seed: int, batchnorm: bool = False) -> nn.Module:
    """A small classifier ``(B, 1, 4, 4) -> (B, 3)`` logits; built without touching the
    global RNG.

    Every parameter and buffer is non-zero, so relative distances are defined.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Flatten(), nn.Linear(16, 8)]
        if batchnorm:
            layers.append(nn.BatchNorm1d(8))
        layers += [nn.ReLU(), nn.Linear(8, 3)]
        net = nn.Sequential(*layers)
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(0.3 * torch.randn_like(p) + 0.1)
            for b in net.buffers():
                if b.is_floating_point():
                    b.copy_(0.5 + torch.rand_like(b))
    return net


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _check_step(name: str, w: torch.Tensor, w2: torch.Tensor, eps: float) -> None:
    """One parameter tensor ``w`` of the model and ``w2`` of its perturbed copy
    (float64): moved by exactly ``eps`` of its norm, in a random direction."""
    if w2.shape != w.shape:
        _fail(
            f"parameter {name} has shape {tuple(w2.shape)} in the copy, "
            f"{tuple(w.shape)} in the model"
        )
    step = w2 - w
    rel = float(step.norm() / w.norm())
    if rel == 0.0:
        _fail(
            f"parameter {name} did not move: every parameter tensor gets its own noise"
        )
    if abs(rel - eps) > 1e-3 * eps:
        if abs(float(step.norm()) - eps) < 1e-3 * eps:
            _fail(
                f"parameter {name} moved by {float(step.norm()):.4g} in absolute "
                "terms (= eps): scale the step by ||w|| too, so that every tensor "
                "moves by eps *relative* to its size"
            )
        _fail(
            f"parameter {name} moved by a relative distance {rel:.4g}, expected "
            f"eps = {eps:g}: the step is eps * ||w|| * z / ||z||, with z ~ N(0, I) "
            "of the shape of w"
        )
    cos = float((step.flatten() @ w.flatten()) / (step.norm() * w.norm()))
    if abs(cos) > 0.99:
        _fail(
            f"parameter {name} was scaled (the step points along w, cosine "
            f"{cos:+.3f}): move it in a random direction z / ||z||, not along w"
        )


def check_perturbation(
    fn: Callable[[nn.Module, float, int], nn.Module], eps: float = 0.05
) -> bool:
    """Check ``fn(model, eps, seed) -> nn.Module``: a perturbed copy of ``model``.

    Every parameter tensor ``w`` of the copy must be ``w + eps * ||w|| * z / ||z||``
    with ``z`` standard normal noise drawn from a generator seeded with ``seed``: it
    moves by exactly ``eps`` of its norm in a random direction. Buffers (batch-norm
    statistics) and the original model stay as they are, and the same seed gives the
    same copy."""
    model = _tiny_net(21, batchnorm=True)
    before = _state(model)

    def run(e: float, seed: int, global_seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(global_seed)
            out = _call(fn, model, e, seed, what="your perturbation function")
        if not isinstance(out, nn.Module):
            _fail(
                "the function should return a model (an nn.Module), got "
                f"{type(out).__name__}"
            )
        return out

    out = run(eps, 0, 100)
    changed = [
        k for k, v in model.state_dict().items() if not torch.equal(v, before[k])
    ]
    if changed:
        _fail(
            f"you changed the original model ({', '.join(changed)}): perturb a copy "
            "(copy.deepcopy(model)) and leave the model you were given as it was"
        )
    if out is model:
        _fail("you returned the model you were given: return a perturbed copy")
    old, new = dict(model.named_parameters()), dict(out.named_parameters())
    if old.keys() != new.keys():
        _fail(
            f"the copy should have the same parameters as the model: {sorted(old)}, "
            f"got {sorted(new)}"
        )
    for name, w in old.items():
        _check_step(name, w.detach().double(), new[name].detach().double(), eps)
    old_buf, new_buf = dict(model.named_buffers()), dict(out.named_buffers())
    for name, b in old_buf.items():
        if name not in new_buf or not torch.equal(b, new_buf[name]):
            _fail(
                f"buffer {name} changed: perturb only the parameters "
                "(model.parameters()), not the batch-norm statistics"
            )
    if not _same_state(_state(run(eps, 0, 200)), _state(out)):
        _fail(
            "the same seed gave two different copies: draw z from "
            "torch.Generator().manual_seed(seed) (torch.randn(w.shape, generator=g)), "
            "not from the global random state"
        )
    if _same_state(_state(run(eps, 1, 100)), _state(out)):
        _fail("seeds 0 and 1 gave the same copy: the noise must depend on the seed")
    if not _same_state(_state(run(0.0, 0, 100)), before):
        _fail("eps = 0 should return an exact copy of the model")
    return _ok(
        f"every parameter tensor moves by eps = {eps:g} of its norm in a random "
        "direction, reproducibly for a seed; buffers and the original model are "
        "untouched"
    )


def check_training_order(fn: Callable[..., nn.Module], batch_size: int = 8) -> bool:
    """Check ``fn(model, images, labels, order_seed, batch_size) -> nn.Module``.

    The function trains a *copy* of ``model`` for one epoch, in the batch order given by
    ``order_seed``. Right when: the original is untouched, the copy's weights moved, the
    same ``order_seed`` reproduces them bit for bit whatever the global random state,
    and another ``order_seed`` changes them."""
    g = torch.Generator().manual_seed(11)
    x = torch.rand(48, 1, 4, 4, generator=g)
    y = torch.randint(0, 3, (48,), generator=g)
    model = _tiny_net(3)
    before = _state(model)

    def run(order_seed: int, global_seed: int) -> dict[str, torch.Tensor]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(global_seed)
            out = _call(
                fn,
                model,
                x.clone(),
                y.clone(),
                order_seed,
                batch_size,
                what="your training function",
            )
        if not isinstance(out, nn.Module):
            _fail(
                "the function should return the trained model (an nn.Module), got "
                f"{type(out).__name__}"
            )
        if not _same_state(_state(model), before):
            _fail(
                "you trained the model you were given in place: train a copy "
                "(copy.deepcopy(model)) and return it, so that both twins can start "
                "from the same weights"
            )
        if out is model:
            _fail("you returned the model you were given: return the trained copy")
        return _state(out)

    first = run(1, 100)
    if _same_state(first, before):
        _fail(
            "the returned weights are the starting weights: did every batch run "
            "loss.backward() and opt.step()?"
        )
    if not _same_state(run(1, 200), first):
        _fail(
            "the same order_seed gave different weights in two runs: draw the order "
            "with torch.randperm(len(images), "
            "generator=torch.Generator().manual_seed(order_seed)), not from the "
            "global random state (and train a model without dropout)"
        )
    if _same_state(run(2, 100), first):
        _fail(
            "order_seed 1 and 2 gave identical weights: shuffle the images with "
            f"order_seed, so that the two seeds see the batches (of {batch_size}) in "
            "different orders"
        )
    return _ok(
        "the same order_seed reproduces the weights bit for bit, another seed changes "
        "them, and the original model is untouched"
    )
