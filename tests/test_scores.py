import math

import pytest
import torch
from conftest import random_log_probs
from torch.distributions import Categorical, kl_divergence

from ood_utils import scores


def test_kl_of_a_distribution_with_itself_is_zero():
    lp = random_log_probs(1, 50)[0]
    assert torch.equal(scores.kl_directed(lp, lp), torch.zeros(50))


def test_kl_is_non_negative_and_matches_torch_distributions():
    lp = random_log_probs(2, 200)
    ours = scores.kl_directed(lp[0], lp[1])
    ref = kl_divergence(Categorical(logits=lp[0]), Categorical(logits=lp[1]))
    assert (ours >= 0).all()
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_pairwise_kl_matches_torch_distributions_in_both_directions():
    lp = random_log_probs(4, 30)
    d = scores.pairwise_kl(lp)
    assert d.shape == (4, 4, 30)
    assert torch.equal(torch.diagonal(d, dim1=0, dim2=1), torch.zeros(30, 4))
    for i in range(4):
        for j in range(4):
            if i != j:
                ref = kl_divergence(
                    Categorical(logits=lp[i]), Categorical(logits=lp[j])
                )
                torch.testing.assert_close(d[i, j], ref, rtol=1e-5, atol=1e-6)


def test_kl_is_asymmetric_and_twin_score_takes_the_larger_direction():
    lp = random_log_probs(2, 100)
    d = scores.pairwise_kl(lp)
    assert not torch.allclose(d[0, 1], d[1, 0])
    torch.testing.assert_close(scores.twin_score(lp), torch.maximum(d[0, 1], d[1, 0]))
    torch.testing.assert_close(scores.symmetric_kl(lp), (d[0, 1] + d[1, 0]) / 2)


def test_identical_members_score_exactly_zero():
    one = random_log_probs(1, 500)
    lp = one.expand(3, -1, -1).clone()
    assert torch.equal(scores.twin_score(lp), torch.zeros(500))
    assert not scores.disagreement(lp).any()


def test_disagreement_checks_all_pairs():
    lp = torch.log_softmax(torch.tensor([[[5.0, 0.0]], [[5.0, 0.0]], [[0.0, 5.0]]]), -1)
    # member 2 disagrees with members 0 and 1
    assert scores.disagreement(lp).tolist() == [True]
    assert scores.disagreement(lp[:2]).tolist() == [False]


def test_reference_flag_and_bits():
    s = torch.tensor([0.1, 0.2, 0.3, 5.0])
    ref = scores.reference(s[:3])
    assert ref == pytest.approx(0.2)
    assert scores.flag(s, ref, k=10).tolist() == [False, False, False, True]
    dis = torch.tensor([True, False, False, False])
    assert scores.flag(s, ref, k=10, disagree=dis).tolist() == [
        True,
        False,
        False,
        True,
    ]
    assert scores.nats_to_bits(math.log(2.0)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.softmax(torch.randn(2, 5, 10), -1), "look like probabilities"),
        (torch.randn(2, 5, 10), "log-sum-exp"),
        (torch.log_softmax(torch.randn(5, 10), -1), "shape"),
        (torch.log_softmax(torch.randn(1, 5, 10), -1), "at least 2 members"),
        (torch.empty(2, 0, 10), "empty batch"),
        (torch.full((2, 3, 10), float("nan")), "NaN"),
        (torch.zeros(2, 3, 10, dtype=torch.long), "floating point"),
        ([[0.5, 0.5]], "torch.Tensor"),
    ],
)
def test_twin_score_rejects_bad_input_with_a_clear_message(bad, match):
    with pytest.raises(ValueError, match=match):
        scores.twin_score(bad)


def test_flag_rejects_a_zero_reference():
    with pytest.raises(ValueError, match="identical members"):
        scores.flag(torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="match scores"):
        scores.flag(torch.zeros(3), 1.0, disagree=torch.zeros(4, dtype=torch.bool))


def test_kl_directed_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        scores.kl_directed(torch.zeros(3, 10), torch.zeros(4, 10))


def test_mutual_information_is_entropy_of_mean_minus_mean_entropy():
    lp = random_log_probs(4, 100)
    mean_entropy = -(lp.exp() * lp).sum(-1).mean(0)
    torch.testing.assert_close(
        scores.mutual_information(lp),
        scores.entropy_of_mean(lp) - mean_entropy,
        atol=1e-5,
        rtol=1e-5,
    )
    torch.testing.assert_close(
        scores.mean_log_probs(lp).logsumexp(-1), torch.zeros(100), atol=1e-5, rtol=0
    )


def test_ensemble_scores_vanish_for_identical_members():
    lp = random_log_probs(1, 64).expand(4, -1, -1).clone()
    # rounding only (log-mean-exp)
    assert float(scores.mutual_information(lp).max()) < 1e-6
    torch.testing.assert_close(
        scores.entropy_of_mean(lp), -(lp[0].exp() * lp[0]).sum(-1)
    )
