import pytest
import torch

from ood_utils import attacks
from ood_utils.models import MnistCNN


def test_fooling_attack_makes_a_trained_cnn_confident_on_noise(trained_cnn):
    res = attacks.fooling_attack(
        trained_cnn, n_restarts=20, steps=200, seed=0, progress=False
    )
    assert res.images.shape == (20, 1, 28, 28)
    assert 0.0 <= float(res.images.min()) and float(res.images.max()) <= 1.0
    assert res.success_rate >= 0.9
    ok = res.success
    assert (res.probs[ok].amax(-1) > 0.8).all() and (res.steps[ok] >= 0).all()
    # noise before the attack is not classified confidently
    with torch.no_grad():
        p0 = torch.softmax(trained_cnn(torch.rand(20, 1, 28, 28)), -1).amax(-1)
    assert float(p0.mean()) < float(res.probs.amax(-1).mean())


def test_restarts_are_independent_of_batch_size(trained_cnn):
    a = attacks.fooling_attack(
        trained_cnn, n_restarts=6, steps=5, seed=0, progress=False
    )
    b = attacks.fooling_attack(
        trained_cnn, n_restarts=3, steps=5, seed=0, progress=False
    )
    # the first three noise images start identical; each restart only sees its own loss
    torch.testing.assert_close(a.images[:3], b.images, atol=1e-5, rtol=0)


def test_entropy():
    uniform = torch.full((4,), 0.25).log()
    assert float(attacks.entropy(uniform)) == pytest.approx(
        torch.log(torch.tensor(4.0)).item()
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(threshold=1.5), "threshold"),
        (dict(n_restarts=0), "n_restarts"),
        (dict(steps=0), "steps"),
    ],
)
def test_bad_attack_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        attacks.fooling_attack(MnistCNN(), **kwargs, progress=False)
