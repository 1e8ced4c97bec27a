"""Chapter 2, twin training: one joint step, and where the twins' errors overlap."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .. import train
from ..models import Ensemble, MnistCNN
from ._base import _call, _fail, _ok, _scalar


def _pair_of_numbers(value: object, what: str) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        _fail(f"{what} should return two numbers (a tuple), got {type(value).__name__}")
    return _scalar(value[0], f"{what}'s first value"), _scalar(
        value[1], f"{what}'s second value"
    )


def _explain_both_wrong(
    got: float,
    want: float,
    w0: torch.Tensor,
    w1: torch.Tensor,
    pred0: torch.Tensor,
    pred1: torch.Tensor,
) -> None:
    """Fail with the likely mistake behind a wrong ``both_wrong``; ``w0, w1``: each
    twin's errors (float 0/1), ``pred0, pred1``: its predictions."""
    same = float((w0 * w1 * (pred0 == pred1).double()).mean())
    mistakes = {
        float((pred0 != pred1).double().mean()): "the share where the twins disagree; "
        "count the inputs where *both* predictions differ from the label",
        same: "only the inputs where both make the *same* mistake; count every "
        "input both get wrong, whatever they predict",
        float(((w0 + w1) > 0).double().mean()): "the share that *either* twin gets "
        "wrong; the question is how often both are wrong together",
        float(((1 - w0) * (1 - w1)).mean()): "the share both get *right*",
    }
    _name_mistake(got, mistakes, "both_wrong")
    _fail(
        f"both_wrong should be {want:.4f} on the check's inputs, got "
        f"{got:.4f}: the mean of (pred_1 != label) & (pred_2 != label), with "
        "pred_i the argmax of twin i"
    )


def check_error_overlap(
    fn: Callable[[torch.Tensor, torch.Tensor], tuple[float, float]],
) -> bool:
    """Check ``fn(log_probs (2, B, C), labels (B,)) -> (both_wrong, if_independent)``
    (chapter 2).

    ``both_wrong`` is the share of inputs that *both* twins misclassify;
    ``if_independent`` the share expected if their mistakes were independent: the
    product of the two error rates."""
    g = torch.Generator().manual_seed(21)
    b, c = 400, 10
    labels = torch.randint(0, c, (b,), generator=g)
    u = torch.rand(b, generator=g)
    wrong0 = u < 0.25  # error rates 25% and 30% ...
    wrong1 = (u < 0.15) | ((u > 0.6) & (u < 0.75))  # ... with 15% in common
    # same or another mistake
    offset1 = torch.where(torch.rand(b, generator=g) < 0.5, 1, 2)
    pred0 = torch.where(wrong0, (labels + 1) % c, labels)
    pred1 = torch.where(wrong1, (labels + offset1) % c, labels)
    logits = torch.randn(2, b, c, generator=g, dtype=torch.float64)
    logits[0, torch.arange(b), pred0] += 8
    logits[1, torch.arange(b), pred1] += 8
    lp = torch.log_softmax(logits, -1)
    w0, w1 = wrong0.double(), wrong1.double()
    want = (float((w0 * w1).mean()), float(w0.mean() * w1.mean()))
    got = _pair_of_numbers(
        _call(fn, lp.clone(), labels.clone(), what="your function"), "your function"
    )
    ok = [abs(gv - wv) < 1e-6 for gv, wv in zip(got, want)]
    if all(ok):
        return _ok(
            f"both wrong {want[0]:.1%} against {want[1]:.1%} if independent, on {b} "
            "unseen inputs"
        )
    if abs(got[0] - want[1]) < 1e-6 and abs(got[1] - want[0]) < 1e-6:
        _fail("the two values are swapped: return (both_wrong, if_independent)")
    if not ok[0]:
        _explain_both_wrong(got[0], want[0], w0, w1, pred0, pred1)
    acc0, acc1 = 1 - float(w0.mean()), 1 - float(w1.mean())
    mistakes = {
        acc0 * acc1: "the product of the *accuracies* (both right if independent); "
        "multiply the error rates",
        float(w0.mean() + w1.mean()): "the sum of the error rates; under independence "
        "the chance of two errors is their product",
        want[0] ** 2: "the square of both_wrong; multiply the two twins' error rates",
    }
    _name_mistake(got[1], mistakes, "if_independent")
    _fail(
        f"if_independent should be {want[1]:.4f} (error rate of twin 1 times that of "
        f"twin 2), got {got[1]:.4f}"
    )


def _name_mistake(got: float, mistakes: dict[float, str], what: str) -> None:
    """Fail naming the common mistake whose value ``got`` is, if it is one of them."""
    for value, mistake in mistakes.items():
        if abs(got - value) < 1e-6:
            _fail(f"{what} is {mistake}")


def _check_update(
    t: int,
    i: int,
    delta_got: torch.Tensor,
    delta_want: torch.Tensor,
    others_moved: bool,
) -> None:
    """Member ``i``'s update at step ``t`` against the reference step's (``(P,)``
    flattened parameter changes); ``others_moved``: the other member's changed."""
    if torch.allclose(delta_got, delta_want, rtol=1e-3, atol=1e-6):
        return
    if float(delta_got.abs().max()) == 0.0:
        if t == 0 and not others_moved:
            _fail("no parameter changed: call optimiser.step() after loss.backward()")
        _fail(f"member {i + 1} did not change: its loss is missing from the sum")
    if torch.allclose(delta_got, delta_want / 2, rtol=1e-3, atol=1e-6):
        _fail(
            "the update is half as large as it should be: you averaged the "
            "members' losses; sum them, so that each member gets exactly the "
            "gradient it would get alone"
        )
    if t == 1:
        _fail(
            "the first step is right, the second is not: gradients accumulate "
            "across steps unless you call optimiser.zero_grad() before "
            "loss.backward()"
        )
    _fail(
        f"member {i + 1}'s update differs from one step on the sum of the "
        "members' NLL losses by up to "
        f"{float((delta_got - delta_want).abs().max()):.3g}"
    )


def _check_loss(got: float, want: float, member_losses: list[float]) -> None:
    """The loss a step returned against the summed loss before the step."""
    if abs(got - want) > 1e-4 * max(1.0, abs(want)):
        if abs(got - want / 2) < 1e-4 * max(1.0, abs(want)):
            _fail(
                "the update is right, but the returned loss is the members' mean; "
                "return their sum"
            )
        if any(abs(got - m) < 1e-4 for m in member_losses):
            _fail(
                "the update is right, but you returned one member's loss; return "
                "the sum"
            )
        _fail(
            f"the update is right, but the returned loss is {got:.5g}; expected "
            f"the summed loss before the step, {want:.5g}"
        )


def check_twin_step(
    fn: Callable[
        [nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor], object
    ],
) -> bool:
    """Check ``fn(ensemble, optimiser, x, y) -> loss``: one joint training step (chapter
    2).

    The step sums the members' mean NLLs over the batch, clears old gradients,
    back-propagates and takes one optimiser step, and returns the summed loss (computed
    before the step). The check runs two steps on fresh two-member ensembles without
    dropout, with plain SGD so that the size of the gradient shows in the update."""

    def fresh() -> tuple[Ensemble, torch.optim.Optimizer]:
        ens = Ensemble.build(lambda: MnistCNN(dropout=False), 2, seed=3).train()
        return ens, torch.optim.SGD(ens.parameters(), lr=0.05)

    def flat(ens: Ensemble, i: int) -> torch.Tensor:
        return torch.cat([p.detach().flatten() for p in ens[i].parameters()])

    g = torch.Generator().manual_seed(8)
    xs = torch.rand(2, 16, 1, 28, 28, generator=g)
    ys = torch.randint(0, 10, (2, 16), generator=g)
    ref, ref_opt = fresh()
    mine, mine_opt = fresh()
    for t in range(2):
        before = [flat(ref, i) for i in range(2)]
        # the package's own step
        loss, log_probs = train.joint_step(ref, ref_opt, xs[t], ys[t])
        member_losses = [
            float(torch.nn.functional.nll_loss(lp, ys[t])) for lp in log_probs
        ]
        want = float(loss)
        got = _scalar(
            _call(fn, mine, mine_opt, xs[t].clone(), ys[t].clone(), what="your step"),
            "the loss your step returns",
        )
        for i in range(2):
            others_moved = bool((flat(mine, 1 - i) - before[1 - i]).abs().max() > 0)
            _check_update(
                t, i, flat(mine, i) - before[i], flat(ref, i) - before[i], others_moved
            )
        _check_loss(got, want, member_losses)
    return _ok(
        "two steps match the reference: summed loss, fresh gradients, one optimiser "
        "step"
    )
