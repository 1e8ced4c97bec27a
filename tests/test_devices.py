"""What the chapters hand to the package may live on a GPU, still carry a gradient, or
have another
dtype: the package copies it to the CPU itself (``.detach().cpu()``) before NumPy sees
    it.

A CUDA tensor cannot be made without a GPU; a tensor that requires a gradient fails
NumPy for the same reason (a missing ``.detach().cpu()``), so these tests use that, and
float64/float32 answers, on a CPU-only machine. tools/gpu_check.sh runs the whole book
on a GPU."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from conftest import random_log_probs

from ood_utils import checks, metrics, plots, scores
from ood_utils.models import MnistCNN, max_weight_difference


def _with_grad(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_(True)


def test_scores_and_metrics_accept_tensors_that_carry_a_gradient():
    s_in, s_out = _with_grad(torch.rand(50)), _with_grad(torch.rand(50) + 0.5)
    assert metrics.ood_metrics(s_in, s_out)["AUROC"] > 0.5
    assert scores.reference(s_in) > 0
    lp = _with_grad(random_log_probs(2, 10))
    assert (
        scores.flag(scores.twin_score(lp), 0.01, 10, scores.disagreement(lp)).dtype
        == torch.bool
    )


def test_plots_accept_tensors_that_carry_a_gradient():
    s = {"a": _with_grad(torch.rand(30)), "b": _with_grad(torch.rand(30) + 1)}
    for fig in (
        plots.score_histograms(s, reference=0.5),
        plots.roc_curves({"b": (s["a"], s["b"])}),
        plots.coloured_text("abc", _with_grad(torch.rand(3))),
        plots.image_grid(_with_grad(torch.rand(2, 1, 28, 28))),
    ):
        plt.close(fig)
    assert plots.log_unit(_with_grad(torch.rand(5))).shape == (5,)


def test_checks_accept_answers_that_carry_a_gradient_or_have_another_dtype(capsys):
    # a tensor with a gradient
    assert checks.check_threshold(lambda s, b: torch.quantile(_with_grad(s), 1 - b))
    # float32, NumPy
    assert checks.check_threshold(
        lambda s, b: np.float32(np.quantile(s.numpy(), 1 - b))
    )
    assert checks.check_symmetric_kl(
        lambda lp: _with_grad(scores.symmetric_kl(lp).float())
    )
    assert "OK" in capsys.readouterr().out


def test_weights_compare_across_dtypes():
    a, b = MnistCNN(), MnistCNN()
    assert max_weight_difference(a, a) == 0.0 and max_weight_difference(a, b) > 0
    b.load_state_dict(a.state_dict())
    assert max_weight_difference(a, b.double()) < 1e-6
