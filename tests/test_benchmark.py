"""The OOD sets of chapters 9 and 10."""

from __future__ import annotations

import torch
from conftest import DATA, RUN, needs_data

from ood_utils import benchmark, cache, data
from ood_utils.profiles import AttackBudget, Budget, get_profile


@needs_data
def test_ood_sets_are_complete_deterministic_and_in_pixel_range(monkeypatch, tmp_path):
    prof = get_profile("fast").replace(
        main=Budget(500, 1), attack=AttackBudget(3, 20), n_noise=7
    )
    # a tiny chapter-1 CNN, trained here
    run = RUN.replace(profile=prof, cache_dir=tmp_path)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    id_images = data.load("mnist", "test", n=10, root=DATA).images
    sets = benchmark.ood_sets(run, "mnist", model, id_images)
    assert list(sets) == [
        "FashionMNIST",
        "uniform noise",
        "fooling (ch. 1)",
        "fooling (this model)",
        "ID + strokes",
        "ID + text",
    ]
    assert tuple(sets) == benchmark.set_names("mnist")
    sizes = {k: len(v) for k, v in sets.items()}
    assert sizes == {
        "FashionMNIST": 10,
        "uniform noise": 7,
        "fooling (ch. 1)": 3,
        "fooling (this model)": 3,
        "ID + strokes": 5,
        "ID + text": 5,
    }
    for x in sets.values():
        assert x.shape[1:] == (1, 28, 28) and x.min() >= 0 and x.max() <= 1
    again = benchmark.ood_sets(run, "mnist", model, id_images)
    assert all(torch.equal(sets[k], again[k]) for k in sets)
    assert data.other_dataset("FashionMNIST") == "mnist"


@needs_data
def test_chapter_ones_cnn_gets_its_fooling_images_once(monkeypatch, tmp_path):
    """For chapter 1's CNN (member 0 of the MNIST twins) "fooling (ch. 1)" and "this
    model" are one set."""
    prof = get_profile("fast").replace(
        main=Budget(500, 1), attack=AttackBudget(3, 20), n_noise=7
    )
    run = RUN.replace(profile=prof, cache_dir=tmp_path)
    from ood_utils import train

    cnn = cache.get_ensemble(
        train.TrainConfig.from_profile(prof, dataset="mnist", n_members=2),
        run,
        progress=False,
    )[0][0]
    sets = benchmark.ood_sets(
        run, "mnist", cnn, data.load("mnist", "test", n=10, root=DATA).images
    )
    assert "fooling (ch. 1)" not in sets and len(sets["fooling (this model)"]) == 3


@needs_data
def test_the_detectors_are_the_methods_the_results_name():
    """:data:`benchmark.METHODS`, which the original-scale reader looks cases up by, is
    what :func:`make_detectors` builds and :func:`detector_needs` describes."""
    from ood_utils.models import Ensemble, MnistCNN

    twins = Ensemble.build(MnistCNN, n=2, seed=0)
    train_set = data.load("mnist", "train", n=60, root=DATA)
    dets = benchmark.make_detectors(twins, train_set, mc_samples=2)
    assert tuple(dets) == benchmark.METHODS == tuple(benchmark.detector_needs(2))
