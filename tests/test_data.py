import pytest
import torch

from ood_utils import data
from conftest import needs_data


@needs_data
def test_load_shapes_range_and_labels():
    d = data.load("mnist", "test", n=500)
    assert d.images.shape == (500, 1, 28, 28) and d.images.dtype == torch.float32
    assert 0.0 <= float(d.images.min()) and float(d.images.max()) <= 1.0
    assert d.labels.shape == (500,) and set(d.labels.tolist()) <= set(range(10))
    f = data.load("FashionMNIST", "test", n=10)
    assert f.name == "fashionmnist" and f.classes[9] == "Ankle boot"


@needs_data
def test_subsets_are_deterministic_and_seeded():
    a, b = data.load("mnist", "train", n=100), data.load("mnist", "train", n=100)
    c = data.load("mnist", "train", n=100, seed=1)
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)


@needs_data
def test_profile_sets_subset_size():
    assert len(data.load("mnist", "test", profile="fast")) == 2_000
    assert len(data.load("mnist", "test", profile="full")) == 10_000


def test_missing_files_give_one_clear_error(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="MNIST/raw/train-images-idx3-ubyte"):
        data.load("mnist", "test", root=tmp_path)


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="cifar10"), "unknown dataset 'cifar10'"),
    (dict(name="mnist", split="valid"), "split must be"),
    (dict(name="mnist", n=0), "positive number"),
    (dict(name="mnist", profile="turbo"), "unknown profile"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load(**kwargs)


def test_uniform_noise_and_batches():
    x = data.uniform_noise(10, seed=1)
    assert x.shape == (10, 1, 28, 28) and torch.equal(x, data.uniform_noise(10, seed=1))
    y = torch.arange(10)
    got = list(data.batches(x, y, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert [len(b[1]) for b in got] == [4, 4, 2]
    assert sorted(torch.cat([b[1] for b in got]).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="labels"):
        list(data.batches(x, y[:5]))
