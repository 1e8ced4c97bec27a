"""The checks of the exercises of chapters 1-4 accept right answers and explain wrong
ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ood_utils import checks
from ood_utils.checks import CheckFailed

# --- check_adversarial_digit
# -------------------------------------------------------------------


def linear_digit_model() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A linear classifier that calls a grey image class 0, and the direction that makes
    it a 1."""
    g = torch.Generator().manual_seed(0)
    direction = torch.where(torch.rand(1, 28, 28, generator=g) < 0.5, -1.0, 1.0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.zero_()
        model[1].weight[1] = direction.flatten()
        # class 1 logit is 0 on the grey image
        model[1].bias[1] = -float(direction.sum()) * 0.5
        model[1].bias[0] = 5.0
    return model, torch.full((1, 28, 28), 0.5), direction


def test_adversarial_digit_accepts_a_step_within_the_budget(capsys):
    model, x0, d = linear_digit_model()
    assert checks.check_adversarial_digit(
        model, x0, x0 + 0.1 * d, target=1, eps=0.1, grid=[0.1, 0.2]
    )
    assert capsys.readouterr().out.startswith("OK")


@pytest.mark.parametrize(
    "image, message",
    [
        (lambda x0, d: x0 + 0.2 * d, "project back into the budget"),
        (lambda x0, d: x0 + 0.001 * d, "only"),
        (lambda x0, d: x0.clone(), "identical to the original"),
        (lambda x0, d: x0 + 0.6 * d, r"\[0, 1\]"),
        (lambda x0, d: (x0 + 0.1 * d)[:, :14], "shape"),
    ],
)
def test_adversarial_digit_explains_mistakes(image, message):
    model, x0, d = linear_digit_model()
    with pytest.raises(CheckFailed, match=message):
        checks.check_adversarial_digit(
            model, x0, image(x0, d), target=1, eps=0.1, grid=[0.1, 0.2]
        )


def test_adversarial_digit_rejects_a_target_the_digit_already_has():
    model, x0, d = linear_digit_model()
    with pytest.raises(ValueError, match="already classifies"):
        checks.check_adversarial_digit(
            model, x0, x0 + 0.1 * d, target=0, eps=0.1, grid=[0.1, 0.2]
        )


# --- check_error_overlap
# -----------------------------------------------------------------------


def error_overlap(log_probs, labels):
    wrong = (log_probs.argmax(-1) != labels).double()  # (2, B)
    return float((wrong[0] * wrong[1]).mean()), float(wrong[0].mean() * wrong[1].mean())


def test_error_overlap_accepts_floats_and_tensors(capsys):
    assert checks.check_error_overlap(error_overlap)
    assert capsys.readouterr().out.startswith("OK")
    assert checks.check_error_overlap(
        lambda lp, y: tuple(torch.tensor(v) for v in error_overlap(lp, y))
    )


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda lp, y: error_overlap(lp, y)[::-1], "swapped"),
        (
            lambda lp, y: (
                float((lp[0].argmax(-1) != lp[1].argmax(-1)).double().mean()),
                error_overlap(lp, y)[1],
            ),
            "twins disagree",
        ),
        (
            lambda lp, y: (
                float(
                    ((lp[0].argmax(-1) == lp[1].argmax(-1)) & (lp[0].argmax(-1) != y))
                    .double()
                    .mean()
                ),
                error_overlap(lp, y)[1],
            ),
            "same",
        ),
        (
            lambda lp, y: (
                error_overlap(lp, y)[0],
                float((lp.argmax(-1) == y).double().mean(1).prod()),
            ),
            "accuracies",
        ),
        (
            lambda lp, y: (
                error_overlap(lp, y)[0],
                float((lp.argmax(-1) != y).double().mean(1).sum()),
            ),
            "sum of the error rates",
        ),
        (lambda lp, y: torch.tensor(error_overlap(lp, y)), "two numbers"),
    ],
)
def test_error_overlap_explains_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_error_overlap(wrong)


# --- check_twin_step
# ---------------------------------------------------------------------------


def make_step(
    average=False, zero_grad=True, members=None, step=True, returned=lambda loss: loss
):
    def twin_step(ensemble, optimiser, x, y):
        log_probs = ensemble(x)
        used = log_probs if members is None else log_probs[members]
        loss = sum(F.nll_loss(lp, y) for lp in used)
        if average:
            loss = loss / len(used)
        if zero_grad:
            optimiser.zero_grad()
        loss.backward()
        if step:
            optimiser.step()
        return returned(loss)

    return twin_step


def test_twin_step_accepts_the_summed_loss(capsys):
    assert checks.check_twin_step(make_step())
    assert capsys.readouterr().out.startswith("OK")
    assert checks.check_twin_step(make_step(returned=lambda loss: loss.item()))


@pytest.mark.parametrize(
    "step, message",
    [
        (make_step(average=True), "averaged the members' losses"),
        (make_step(zero_grad=False), "zero_grad"),
        (make_step(members=[0]), "member 2 did not change"),
        (make_step(step=False), "optimiser.step"),
        (
            make_step(returned=lambda loss: loss.item() / 2),
            "returned loss is the members' mean",
        ),
        (make_step(returned=lambda loss: None), "`return` is missing"),
    ],
)
def test_twin_step_explains_mistakes(step, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_twin_step(step)


# --- check_success_curve
# -----------------------------------------------------------------------


def success_curve(first_step, budgets):
    done = (first_step >= 0) & (first_step <= budgets[:, None])  # (S, R)
    return done.double().mean(1)


def test_success_curve_accepts_the_share_within_each_budget(capsys):
    assert checks.check_success_curve(success_curve)
    assert capsys.readouterr().out.startswith("OK")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda f, b: (f <= b[:, None]).double().mean(1), "never succeeded"),
        (lambda f, b: ((f >= 0) & (f < b[:, None])).double().mean(1), "use <="),
        (
            lambda f, b: (
                ((f >= 0) & (f <= b[:, None])).double().sum(1) / (f >= 0).sum()
            ),
            "all restarts",
        ),
        (lambda f, b: ((f >= 0) & (f <= b[:, None])).double().sum(1), "counts"),
        (lambda f, b: success_curve(f, b).mean(), "one success rate per budget"),
    ],
)
def test_success_curve_explains_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_success_curve(wrong)
