"""The exercise checks accept right answers and explain wrong ones."""

from __future__ import annotations

import math

import pytest
import torch

from ood_utils import checks, data, metrics, scores
from ood_utils.checks import CheckFailed


def kl(lp, i, j):
    return (lp[i].exp() * (lp[i] - lp[j])).sum(-1)


def test_symmetric_kl_accepts_the_mean_of_both_directions(capsys):
    assert checks.check_symmetric_kl(lambda lp: (kl(lp, 0, 1) + kl(lp, 1, 0)) / 2)
    assert capsys.readouterr().out.startswith("OK")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda lp: kl(lp, 0, 1) + kl(lp, 1, 0), "their mean"),
        (lambda lp: kl(lp, 0, 1), "add the other direction"),
        (lambda lp: (kl(lp, 0, 1) + kl(lp, 1, 0)).sum(), "one score per input"),
        (
            lambda lp: (lp[0].exp() * (lp[0].exp().log() - lp[1])).sum(-1) * 0 + 1,
            "should be 0",
        ),
        (lambda lp: 1 / 0, "raised ZeroDivisionError"),
        (lambda lp: [1.0], "should return a torch.Tensor"),
    ],
)
def test_symmetric_kl_explains_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_symmetric_kl(wrong)


def test_twin_score_check():
    assert checks.check_twin_score(lambda lp: torch.maximum(kl(lp, 0, 1), kl(lp, 1, 0)))
    with pytest.raises(CheckFailed, match="mean of both directions"):
        checks.check_twin_score(scores.symmetric_kl)
    with pytest.raises(CheckFailed, match="smaller"):
        checks.check_twin_score(lambda lp: torch.minimum(kl(lp, 0, 1), kl(lp, 1, 0)))


def test_ensemble_checks():
    def mi(lp):
        mean = lp.exp().mean(0)
        h = lambda p: -(p * p.clamp_min(1e-300).log()).sum(-1)  # noqa: E731
        return h(mean) - h(lp.exp()).mean(0)

    assert checks.check_mutual_information(mi)
    with pytest.raises(CheckFailed, match="subtract the members' mean entropy"):
        checks.check_mutual_information(scores.entropy_of_mean)
    assert checks.check_entropy_of_mean(scores.entropy_of_mean)
    with pytest.raises(CheckFailed, match="average the probabilities first"):
        checks.check_entropy_of_mean(lambda lp: -(lp.exp() * lp).sum(-1).mean(0))


def test_energy_check():
    assert checks.check_energy(lambda z: -torch.logsumexp(z, -1))
    assert checks.check_energy(lambda z: -2 * torch.logsumexp(z / 2, -1), temperature=2)
    with pytest.raises(CheckFailed, match="sign is flipped"):
        checks.check_energy(lambda z: torch.logsumexp(z, -1))
    with pytest.raises(CheckFailed, match="MaxLogit"):
        checks.check_energy(lambda z: -z.max(-1).values)


def test_threshold_check_tests_the_function_on_scores_it_draws():
    def by_sorting(s, budget):
        ranked = s.sort(descending=True).values
        return float(ranked[math.floor(round(budget * len(s), 9))])

    assert checks.check_threshold(by_sorting)
    with pytest.raises(CheckFailed, match="more than the"):
        checks.check_threshold(
            lambda s, budget: float(torch.quantile(s, 1 - 3 * budget))
        )
    with pytest.raises(CheckFailed, match="stricter than needed"):
        checks.check_threshold(lambda s, budget: float(s.max()))
    with pytest.raises(CheckFailed, match="one number"):
        checks.check_threshold(lambda s, budget: "high")


def test_auroc_check_tests_the_function_on_scores_it_draws():
    def pairs(a, b):
        a, b = torch.as_tensor(a)[:, None], torch.as_tensor(b)[None, :]
        return float((b > a).double().mean() + 0.5 * (b == a).double().mean())

    assert checks.check_auroc(pairs)
    with pytest.raises(CheckFailed, match="1 - AUROC"):
        checks.check_auroc(lambda a, b: 1 - pairs(a, b))
    with pytest.raises(CheckFailed, match=r"\[0, 1\]"):
        checks.check_auroc(lambda a, b: 7.0)


def test_fpr_check():
    assert checks.check_fpr_at_tpr(lambda i, o: metrics.fpr_at_tpr(i, o))
    with pytest.raises(CheckFailed, match="swapped"):
        checks.check_fpr_at_tpr(lambda i, o: metrics.fpr_at_tpr(o, i))


def test_cosine_check():
    cos = lambda a, b: torch.nn.functional.cosine_similarity(a.flatten(1), b.flatten(1))  # noqa: E731
    assert checks.check_cosine_similarity(cos)
    with pytest.raises(CheckFailed, match="divide by both norms"):
        checks.check_cosine_similarity(
            lambda a, b: (a.flatten(1) * b.flatten(1)).sum(1)
        )
    with pytest.raises(CheckFailed, match="one similarity per input"):
        checks.check_cosine_similarity(lambda a, b: cos(a, b).mean())


def test_fooling_checks(trained_cnn):
    from ood_utils.models import Ensemble

    starts = data.uniform_noise(2, seed=0)
    with pytest.raises(CheckFailed, match="only"):
        checks.check_fooling_image(
            trained_cnn, starts[0], target=3, starts=starts, min_prob=0.999
        )
    with pytest.raises(CheckFailed, match=r"\[0, 1\]"):
        checks.check_fooling_image(
            trained_cnn, torch.full((1, 28, 28), 2.0), target=3, starts=starts
        )
    from ood_utils import attacks

    res = attacks.fooling_attack(trained_cnn, n_restarts=8, steps=300, progress=False)
    assert bool(res.success.any())
    k = int(res.success.int().argmax())
    assert checks.check_fooling_image(
        trained_cnn, res.images[k], target=int(res.probs[k].argmax()), starts=res.start
    )
    twins = Ensemble([trained_cnn, trained_cnn])
    digit = torch.zeros(1, 28, 28)
    pred = int(trained_cnn(digit[None]).argmax())
    with torch.no_grad():
        p = float(torch.softmax(trained_cnn(digit[None]), -1)[0, pred])
    # identical members: twin score exactly 0, so only the confidence and the start
    # can fail
    if p >= 0.5:
        assert checks.check_twins_fooled(
            twins, digit, pred, ref=1e-3, starts=digit[None] + 0.01, min_prob=0.5
        )
    with pytest.raises(CheckFailed, match="not every member"):
        checks.check_twins_fooled(
            twins, digit, (pred + 1) % 10, ref=1e-3, starts=digit[None]
        )
