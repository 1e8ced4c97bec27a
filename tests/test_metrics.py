import numpy as np
import pytest

from ood_utils import metrics


def test_hand_computed_example():
    s_in = [0.1, 0.4, 0.35]
    s_out = [0.8, 0.3]
    # pairs (out > in): 0.8 beats all 3, 0.3 beats only 0.1 -> 4 of 6
    assert metrics.auroc(s_in, s_out) == pytest.approx(4 / 6)
    # OOD positive, ranking 0.8(+) 0.4(-) 0.35(-) 0.3(+) 0.1(-): AP = (1/1 + 2/4) / 2
    assert metrics.aupr_out(s_in, s_out) == pytest.approx((1.0 + 0.5) / 2)
    # ID positive on negated scores: 0.1(+) 0.3(-) 0.35(+) 0.4(+) 0.8(-): AP = (1 + 2/3
    # + 3/4) / 3
    assert metrics.aupr_in(s_in, s_out) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    # to catch both OOD inputs the threshold must go down to 0.3: then 2 of 3 ID
    # are flagged
    assert metrics.fpr_at_tpr(s_in, s_out, 0.95) == pytest.approx(2 / 3)
    # catching half of OOD (threshold 0.8) flags no ID input
    assert metrics.fpr_at_tpr(s_in, s_out, 0.5) == 0.0


def test_identical_distributions_give_chance():
    rng = np.random.default_rng(0)
    s = rng.normal(size=1000)
    assert metrics.auroc(s, s.copy()) == pytest.approx(0.5)


def test_perfect_separation():
    m = metrics.ood_metrics(np.arange(10), np.arange(10) + 100)
    assert m == pytest.approx(
        {"AUROC": 1.0, "AUPR-IN": 1.0, "AUPR-OUT": 1.0, "FPR@95TPR": 0.0}
    )


def test_higher_score_means_more_ood():
    assert metrics.auroc([5.0, 6.0], [1.0, 2.0]) == 0.0


@pytest.mark.parametrize(
    "s_in, s_out, match",
    [
        ([], [1.0], "empty"),
        ([1.0, float("nan")], [1.0], "NaN"),
        (np.zeros((2, 2)), [1.0], "1-D"),
    ],
)
def test_bad_scores(s_in, s_out, match):
    with pytest.raises(ValueError, match=match):
        metrics.auroc(s_in, s_out)
