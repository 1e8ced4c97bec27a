"""The pytorch-ood-style detectors: the twin detector, the cosine detector, and batched
scoring."""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_ood.api import RequiresFittingException
from pytorch_ood.detector import (
    KNN,
    MCD,
    ODIN,
    EnergyBased,
    Entropy,
    Mahalanobis,
    MaxLogit,
    MaxSoftmax,
)
from pytorch_ood.metrics import OODMetrics
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ood_utils import benchmark, metrics, scores
from ood_utils.detectors import (
    CosineDetector,
    TwinDetector,
    cosine_scores,
    forward_outputs,
    layer_nodes,
    score,
)
from ood_utils.models import Ensemble, MnistCNN, predict_log_probs


@pytest.fixture(scope="module")
def twins() -> Ensemble:
    """Two untrained CNNs with different inits (their outputs differ, which is all these
    tests need)."""
    return Ensemble.build(MnistCNN, n=2, seed=0).eval()


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x_in = torch.rand(40, 1, 28, 28, generator=g) * 0.3  # dim images
    x_out = torch.rand(30, 1, 28, 28, generator=g)  # bright noise
    return x_in, x_out


def test_twin_detector_scores_equal_the_chapter_functions(twins, images):
    x_in, x_out = images
    det = TwinDetector(twins)
    lp = predict_log_probs(twins, x_out)
    torch.testing.assert_close(det(x_out), scores.twin_score(lp))
    for name, fn in (
        ("mutual_information", scores.mutual_information),
        ("entropy_of_mean", scores.entropy_of_mean),
        ("symmetric_kl", scores.symmetric_kl),
    ):
        torch.testing.assert_close(TwinDetector(twins, score=name)(x_out), fn(lp))


def test_twin_detector_fit_reference_and_flags(twins, images):
    x_in, x_out = images
    labels = torch.arange(len(x_in)) % 10
    det = TwinDetector(twins, k=10)
    with pytest.raises(RequiresFittingException):
        det.flags(x_out)
    det.fit(DataLoader(TensorDataset(x_in, labels), batch_size=16))
    expected_ref = scores.reference(scores.twin_score(predict_log_probs(twins, x_in)))
    assert math.isclose(det.reference, expected_ref, rel_tol=1e-5)
    lp = predict_log_probs(twins, x_out)
    expected = scores.flag(
        scores.twin_score(lp), det.reference, 10, scores.disagreement(lp)
    )
    assert torch.equal(det.flags(x_out), expected)
    assert det.threshold() == pytest.approx(10 * det.reference)


def test_twin_detector_fit_ignores_ood_labels_and_accepts_plain_batches(twins, images):
    x_in, x_out = images
    mixed = DataLoader(
        TensorDataset(
            torch.cat([x_in, x_out]),
            torch.cat([torch.zeros(len(x_in)), -torch.ones(len(x_out))]).long(),
        ),
        batch_size=25,
    )
    ref_mixed = TwinDetector(twins).fit(mixed).reference
    ref_plain = TwinDetector(twins).fit([x_in[:20], x_in[20:]]).reference
    assert math.isclose(ref_mixed, ref_plain, rel_tol=1e-5)


def test_twin_detector_works_with_pytorch_ood_metrics_and_they_agree_with_ours(
    twins, images
):
    x_in, x_out = images
    det = TwinDetector(twins)
    loader = DataLoader(
        TensorDataset(
            torch.cat([x_in, x_out]),
            torch.cat([torch.zeros(len(x_in)), -torch.ones(len(x_out))]).long(),
        ),
        batch_size=16,
    )
    m = OODMetrics()
    for x, y in loader:
        m.update(det(x), y)
    lib = m.compute()
    ours = metrics.ood_metrics(det(x_in), det(x_out))
    assert lib["AUROC"] == pytest.approx(ours["AUROC"], abs=1e-9)
    assert lib["FPR95TPR"] == pytest.approx(ours["FPR@95TPR"], abs=1e-9)
    # trapezoid (pytorch-ood) vs step-wise average precision (scikit-learn)
    assert lib["AUPR-IN"] == pytest.approx(ours["AUPR-IN"], abs=0.02)
    assert lib["AUPR-OUT"] == pytest.approx(ours["AUPR-OUT"], abs=0.02)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_twin_detector_on_gpu(twins, images):
    x_in, x_out = images
    det = TwinDetector(Ensemble.build(MnistCNN, n=2, seed=0)).to("cuda")
    s = det(x_out)  # CPU input is moved to the detector's device
    assert s.device.type == "cuda"
    torch.testing.assert_close(
        s.cpu(), TwinDetector(twins)(x_out), atol=1e-4, rtol=1e-3
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(score="nope"), "unknown score"), (dict(k=0), "k must be positive")],
)
def test_twin_detector_rejects_bad_arguments(twins, kwargs, match):
    with pytest.raises(ValueError, match=match):
        TwinDetector(twins, **kwargs)


def test_twin_detector_needs_two_members_and_an_ensemble():
    with pytest.raises(ValueError, match="at least 2 members"):
        TwinDetector(Ensemble.build(MnistCNN, n=1, seed=0))
    with pytest.raises(ValueError, match="Ensemble"):
        TwinDetector(MnistCNN())


def test_twin_detector_rejects_bad_batches(twins):
    with pytest.raises(ValueError, match="shape"):
        TwinDetector(twins)(torch.rand(3, 28, 28))
    with pytest.raises(ValueError, match="batches"):
        TwinDetector(twins).fit([("not", "tensors")])


def test_forward_outputs_match_the_ensemble(twins, images):
    x = images[1]
    out = forward_outputs(twins, x, batch_size=7)
    assert out.features.shape == (2, len(x), 128) and out.logits.shape == (
        2,
        len(x),
        10,
    )
    torch.testing.assert_close(out.log_probs, predict_log_probs(twins, x))


def test_score_uses_representations_and_matches_the_detector_on_images(twins, images):
    x = images[1]
    out = forward_outputs(twins, x)
    model = twins[0]
    for det in (MaxSoftmax(model), EnergyBased(model), TwinDetector(twins)):
        torch.testing.assert_close(
            score(det, x, out),
            score(det, x, batch_size=8).to(torch.float32),
            atol=1e-5,
            rtol=1e-4,
        )
    with pytest.raises(ValueError, match="outputs cover"):
        score(MaxSoftmax(model), x[:5], out)


def test_every_baseline_of_chapter_9_runs_on_a_tiny_model(twins, images):
    x_in, x_out = images
    model = twins[0]
    feats = forward_outputs(Ensemble([model]), x_in).features[0]
    labels = torch.arange(len(x_in)) % 10
    dets = {
        "MSP": MaxSoftmax(model),
        "MaxLogit": MaxLogit(model),
        "Energy": EnergyBased(model),
        "Entropy": Entropy(model),
        "ODIN": ODIN(model),
        "Mahalanobis": Mahalanobis(model.features).fit_features(feats, labels),
        "KNN": KNN(model.features, k=3).fit_features(feats, labels),
        "MC dropout": MCD(model, samples=3, mode="mean"),
        "twin": TwinDetector(twins),
        "cosine": CosineDetector(model, "conv1", 0.05, n_samples=2),
    }
    table, all_scores = benchmark.evaluate(
        dets, twins, x_in, {"noise": x_out}, progress=False
    )
    assert list(table["method"]) == list(dets)
    assert table[["AUROC", "AUPR-IN", "AUPR-OUT", "FPR@95TPR"]].notna().all().all()
    assert all(
        s["ID"].shape == (len(x_in),) and s["noise"].shape == (len(x_out),)
        for s in all_scores.values()
    )
    assert not model.training  # MC dropout restored eval mode


# --- the cosine score
# -------------------------------------------------------------------


class DeadLayer(nn.Module):
    """A layer whose ReLU is always off: every input is a fixed point of any
    perturbation."""

    layers = {"dead": "relu", "logits": "fc"}

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(2 * 26 * 26, 10)
        nn.init.zeros_(self.conv.weight)
        nn.init.constant_(self.conv.bias, -1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_cosine_score_is_exactly_one_at_a_fixed_point():
    x = torch.rand(5, 1, 28, 28)
    out = cosine_scores(DeadLayer(), x, sigmas=[0.1, 1.0], n_samples=3)
    for layer, sigma in [("dead", 0.1), ("dead", 1.0)]:
        assert torch.equal(out[layer, sigma], torch.ones(5, dtype=torch.float64))
    # constant logits too
    assert torch.equal(out["logits", 1.0], torch.ones(5, dtype=torch.float64))


def test_cosine_score_is_one_without_perturbation_and_below_one_with_it():
    model = MnistCNN().eval()
    x = torch.rand(4, 1, 28, 28)
    out = cosine_scores(model, x, sigmas=[0.0, 0.5], n_samples=2)
    for layer in model.layers:
        torch.testing.assert_close(
            out[layer, 0.0], torch.ones(4, dtype=torch.float64), atol=1e-6, rtol=0
        )
        assert (out[layer, 0.5] < 1.0).all()


def test_cosine_scores_are_deterministic_and_match_the_detector():
    model = MnistCNN().eval()
    x = torch.rand(6, 1, 28, 28)
    a = cosine_scores(model, x, sigmas=[0.05], n_samples=3, seed=4, batch_size=6)
    b = cosine_scores(model, x, sigmas=[0.05], n_samples=3, seed=4, batch_size=6)
    assert torch.equal(a["pool", 0.05], b["pool", 0.05])
    det = CosineDetector(model, "pool", 0.05, n_samples=3, seed=4)
    torch.testing.assert_close(det(x).double(), a["pool", 0.05])
    inv = CosineDetector(model, "pool", 0.05, n_samples=3, seed=4, invert=True)
    torch.testing.assert_close(inv(x).double(), 1 - a["pool", 0.05])


def test_cosine_rejects_bad_arguments():
    model = MnistCNN()
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match="unknown layer"):
        CosineDetector(model, layer="conv9")
    with pytest.raises(ValueError, match="sigmas"):
        cosine_scores(model, x, sigmas=[-0.1])
    with pytest.raises(ValueError, match="n_samples"):
        cosine_scores(model, x, n_samples=0)
    with pytest.raises(ValueError, match="defines no `layers`"):
        layer_nodes(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)))
    assert set(layer_nodes(model)) == {
        "conv1",
        "conv2",
        "pool",
        "penultimate",
        "logits",
    }


def test_fit_on_a_loader_without_in_distribution_data_says_so(twins, images):
    x_in, _ = images
    with pytest.raises(ValueError, match="loader yielded no batch"):
        TwinDetector(twins).fit([])
    ood_only = [(x_in[:5], torch.full((5,), -1))]
    with pytest.raises(ValueError, match="all labelled y < 0"):
        TwinDetector(twins).fit(ood_only)
