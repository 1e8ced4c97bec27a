import pytest
import torch
from conftest import DATA, RUN, needs_data

from ood_utils import data
from ood_utils.profiles import get_profile


@needs_data
def test_load_shapes_range_and_labels():
    d = data.load("mnist", "test", n=500, root=DATA)
    assert d.images.shape == (500, 1, 28, 28) and d.images.dtype == torch.float32
    assert 0.0 <= float(d.images.min()) and float(d.images.max()) <= 1.0
    assert d.labels.shape == (500,) and set(d.labels.tolist()) <= set(range(10))
    f = data.load("FashionMNIST", "test", n=10, root=DATA)
    assert f.name == "fashionmnist" and f.classes[9] == "Ankle boot"


@needs_data
def test_subsets_are_deterministic_and_seeded():
    a, b = (
        data.load("mnist", "train", n=100, root=DATA),
        data.load("mnist", "train", n=100, root=DATA),
    )
    c = data.load("mnist", "train", n=100, seed=1, root=DATA)
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)


@needs_data
def test_a_library_call_loads_everything_and_a_chapter_its_profiles_subset():
    assert len(data.load("mnist", "test", root=DATA)) == 10_000
    assert (
        len(
            data.chapter_split(
                RUN.replace(profile=get_profile("fast")), "mnist", "test"
            )
        )
        == 2_000
    )
    assert (
        len(
            data.chapter_split(
                RUN.replace(profile=get_profile("full")), "mnist", "test"
            )
        )
        == 10_000
    )


def test_missing_files_give_one_clear_error(tmp_path):
    with pytest.raises(
        data.DataNotFoundError, match="MNIST/raw/train-images-idx3-ubyte"
    ):
        data.load("mnist", "test", root=tmp_path)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="cifar10"), "unknown dataset 'cifar10'"),
        (dict(name="mnist", split="valid"), "split must be"),
        (dict(name="mnist", n=0), "positive number"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load(**kwargs)


def test_uniform_noise_and_batches():
    x = data.uniform_noise(10, seed=1)
    assert x.shape == (10, 1, 28, 28) and torch.equal(x, data.uniform_noise(10, seed=1))
    y = torch.arange(10)
    got = list(
        data.batches(
            x, y, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0)
        )
    )
    assert [len(b[1]) for b in got] == [4, 4, 2]
    assert sorted(torch.cat([b[1] for b in got]).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="labels"):
        list(data.batches(x, y[:5]))


def test_corrupt_is_deterministic_for_a_seed_and_keeps_the_image():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, 1, 28, 28, generator=g) * 0.5
    before = x.clone()
    for kind in data.CORRUPTIONS:
        a, b = data.corrupt(x, kind, seed=3), data.corrupt(x, kind, seed=3)
        assert torch.equal(a, b)  # same seed, same drawing
        # another seed, another drawing
        assert not torch.equal(a, data.corrupt(x, kind, seed=4))
        assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
        # drawn on every image
        assert (a >= x).all() and ((a - x).amax(dim=(1, 2, 3)) > 0.3).all()
    assert torch.equal(x, before)  # the input is not modified
    # image i gets drawing i, whatever else is in the batch
    assert torch.equal(
        data.corrupt(x[:3], "text", seed=3), data.corrupt(x, "text", seed=3)[:3]
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="blur"), "unknown corruption"),
        (dict(n=0), "n must be"),
    ],
)
def test_corrupt_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.corrupt(torch.rand(2, 1, 28, 28), **kwargs)


def test_corrupt_rejects_bad_images():
    with pytest.raises(ValueError, match="channel"):
        data.corrupt(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="floating point"):
        data.corrupt(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
