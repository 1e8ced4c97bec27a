import pytest
import torch

from ood_utils.models import Ensemble, MnistCNN, build_model, predict_log_probs


def test_cnn_shapes_and_features():
    m = MnistCNN().eval()
    x = torch.rand(3, 1, 28, 28)
    assert m(x).shape == (3, 10)
    assert m.features(x).shape == (3, 128)


def test_ensemble_returns_stacked_log_probs():
    ens = Ensemble.build(MnistCNN, 3, seed=0).eval()
    lp = ens(torch.rand(4, 1, 28, 28))
    assert lp.shape == (3, 4, 10)
    torch.testing.assert_close(lp.logsumexp(-1), torch.zeros(3, 4), atol=1e-5, rtol=0)
    assert ens.logits(torch.rand(2, 1, 28, 28)).shape == (3, 2, 10)


def test_members_have_different_inits_and_builds_are_reproducible():
    a, b = Ensemble.build(MnistCNN, 2, seed=0), Ensemble.build(MnistCNN, 2, seed=0)
    assert not torch.equal(a[0].conv1.weight, a[1].conv1.weight)
    assert torch.equal(a[1].conv1.weight, b[1].conv1.weight)


def test_predict_log_probs_batches_match_one_pass():
    ens = Ensemble.build(MnistCNN, 2, seed=0).eval()
    x = torch.rand(25, 1, 28, 28)
    torch.testing.assert_close(
        predict_log_probs(ens, x, batch_size=7), ens(x), atol=1e-5, rtol=1e-5
    )
    assert predict_log_probs(ens[0], x).shape == (25, 10)


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.rand(4, 28, 28), "unsqueeze"),
        (torch.randint(0, 255, (4, 1, 28, 28)), "floating point"),
        (torch.rand(0, 1, 28, 28), "empty"),
        (torch.full((2, 1, 28, 28), float("nan")), "NaN"),
    ],
)
def test_ensemble_rejects_bad_images(x, match):
    with pytest.raises(ValueError, match=match):
        Ensemble.build(MnistCNN, 2, seed=0)(x)


def test_bad_construction():
    with pytest.raises(ValueError, match="at least one member"):
        Ensemble([])
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("vit", 0.0, 1.0)


def test_original_network_has_no_relu_after_conv2():
    """The original's network (published notebook, cell 5) pools conv2's raw output:
    negative pre-activations survive the max-pool, which a ReLU would clip to zero."""
    from ood_utils.detectors import cosine_scores
    from ood_utils.models import build_model

    torch.manual_seed(0)
    exact = build_model("cnn-original", 0.1307, 0.3081).eval()
    book = build_model("cnn-dropout2d", 0.1307, 0.3081).eval()
    book.load_state_dict(exact.state_dict())  # same parameters, one ReLU apart
    x = torch.rand(8, 1, 28, 28)
    assert isinstance(exact.dropout1, torch.nn.Dropout2d)
    conv = exact.conv2(torch.relu(exact.conv1(exact.normalize(x))))
    pooled = torch.nn.functional.max_pool2d(conv, 2)
    assert (pooled < 0).any()  # so the ReLU matters
    torch.testing.assert_close(
        exact.fc1(torch.flatten(pooled, 1)).relu(), exact.features(x)
    )
    assert not torch.allclose(exact(x), book(x))
    # its named layers resolve (the weights-only method uses them)
    out = cosine_scores(exact, x[:2], sigmas=[0.0], n_samples=1)
    assert {name for name, _ in out} == set(exact.layers)
