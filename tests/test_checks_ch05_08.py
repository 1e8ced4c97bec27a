"""The checks added for the exercises of chapters 5-8 accept right answers and explain
wrong ones."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ood_utils import checks
from ood_utils.checks import CheckFailed

# --- check_perturbation
# ------------------------------------------------------------------------


def perturb(model: nn.Module, eps: float, seed: int) -> nn.Module:
    new = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for w in new.parameters():
            z = torch.randn(w.shape, generator=g, dtype=w.dtype)
            w.add_(eps * w.norm() * z / z.norm())
    return new


def test_perturbation_accepts_a_right_answer(capsys):
    assert checks.check_perturbation(perturb)
    assert capsys.readouterr().out.startswith("OK")


def absolute(model, eps, seed):
    new = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for w in new.parameters():
            z = torch.randn(w.shape, generator=g)
            w.add_(eps * z / z.norm())
    return new


def scaled(model, eps, seed):
    new = copy.deepcopy(model)
    with torch.no_grad():
        for w in new.parameters():
            w.mul_(1 + eps * (1 + seed))
    return new


def global_rng(model, eps, seed):
    new = copy.deepcopy(model)
    with torch.no_grad():
        for w in new.parameters():
            z = torch.randn(w.shape)
            w.add_(eps * w.norm() * z / z.norm())
    return new


def also_buffers(model, eps, seed):
    new = perturb(model, eps, seed)
    with torch.no_grad():
        for b in new.buffers():
            if b.is_floating_point():
                b.mul_(1 + eps)
    return new


def modifies_original(model, eps, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for w in model.parameters():
            z = torch.randn(w.shape, generator=g)
            w.add_(eps * w.norm() * z / z.norm())
    return model


@pytest.mark.parametrize(
    "wrong, message",
    [
        (modifies_original, "you changed the original model"),
        (lambda m, e, s: m, "you returned the model you were given"),
        (absolute, "scale the step by \\|\\|w\\|\\| too"),
        (scaled, "was scaled"),
        (global_rng, "the same seed gave two different copies"),
        (also_buffers, "buffer .* changed"),
        (lambda m, e, s: perturb(m, e, 0), "seeds 0 and 1 gave the same copy"),
        (lambda m, e, s: perturb(m, 2 * e, s), "relative distance"),
        (lambda m, e, s: 1 / 0, "raised ZeroDivisionError"),
        (lambda m, e, s: [m], "should return a model"),
    ],
)
def test_perturbation_explains_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_perturbation(wrong)


def test_perturbation_check_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    want = torch.rand(3)
    torch.manual_seed(0)
    checks.check_perturbation(perturb)
    assert torch.equal(torch.rand(3), want)


# --- check_training_order
# ----------------------------------------------------------------------


def train_in_order(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    order_seed: int,
    batch_size: int = 64,
) -> nn.Module:
    new = copy.deepcopy(model).train()
    opt = torch.optim.SGD(new.parameters(), lr=0.05)
    order = torch.randperm(
        len(labels), generator=torch.Generator().manual_seed(order_seed)
    )
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        loss = F.cross_entropy(new(images[idx]), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return new.eval()


def test_training_order_accepts_a_right_answer(capsys):
    assert checks.check_training_order(train_in_order)
    assert capsys.readouterr().out.startswith("OK")


def global_order(model, images, labels, order_seed, batch_size=64):
    new = copy.deepcopy(model)
    opt = torch.optim.SGD(new.parameters(), lr=0.05)
    order = torch.randperm(len(labels))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        opt.zero_grad()
        F.cross_entropy(new(images[idx]), labels[idx]).backward()
        opt.step()
    return new


def trains_original(model, images, labels, order_seed, batch_size=64):
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    opt.zero_grad()
    F.cross_entropy(model(images), labels).backward()
    opt.step()
    return model


@pytest.mark.parametrize(
    "wrong, message",
    [
        (global_order, "same order_seed gave different weights"),
        (
            lambda m, x, y, s, b=64: train_in_order(m, x, y, 0, b),
            "order_seed 1 and 2 gave identical",
        ),
        (trains_original, "in place"),
        (lambda m, x, y, s, b=64: copy.deepcopy(m), "are the starting weights"),
        (lambda m, x, y, s, b=64: m, "returned the model you were given"),
        (lambda m, x, y, s, b=64: None, "`return` is missing"),
    ],
)
def test_training_order_explains_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_training_order(wrong)
