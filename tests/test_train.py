import dataclasses

import pytest
import torch
from conftest import DATA, RUN, needs_data

from ood_utils import cache, train
from ood_utils.train import TrainConfig

TINY = dict(dataset="mnist", n_members=2, epochs=1, n_train=256, batch_size=64, seed=0)


def _equal_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_config_key_changes_with_every_field():
    base = TrainConfig(**TINY)
    assert base.key() == TrainConfig(**TINY).key()
    for change in (
        dict(seed=1),
        dict(epochs=2),
        dict(n_members=3),
        dict(lr=0.5),
        dict(dataset="fashionmnist"),
    ):
        assert TrainConfig(**{**TINY, **change}).key() != base.key()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_members=0), "n_members"),
        (dict(dataset="svhn"), "unknown dataset"),
        (dict(gamma=0.0), "gamma"),
        (dict(n_train=0), "n_train"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{**TINY, **kwargs})


@needs_data
def test_training_learns_and_is_reproducible():
    cfg = TrainConfig(**{**TINY, "n_train": 1024})
    a, hist = train.train_ensemble(cfg, RUN, progress=False)
    b, _ = train.train_ensemble(cfg, RUN, progress=False)
    assert _equal_weights(a, b)  # same seed, same batches: bit-identical
    assert not torch.equal(a[0].fc2.weight, a[1].fc2.weight)
    assert len(hist.loss) == 1 and len(hist.train_accuracy[0]) == 2
    from ood_utils import data

    test = data.load("mnist", "test", n=500, root=DATA)
    assert min(train.accuracy(a, test.images, test.labels)) > 0.6


@needs_data
def test_cache_round_trip_and_config_miss(tmp_path, capsys):
    cfg = TrainConfig(**TINY)
    first, _ = cache.get_ensemble(cfg, RUN.replace(cache_dir=tmp_path), progress=False)
    paths = cache.checkpoint_paths(cfg, tmp_path)
    assert len(set(paths)) == 2 and all(p.exists() for p in paths)
    # no temp files
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
    again, _ = cache.get_ensemble(cfg, RUN.replace(cache_dir=tmp_path), progress=True)
    assert "loaded cached mnist cnn members 1, 2 of 2" in capsys.readouterr().out
    assert _equal_weights(first, again)
    other = TrainConfig(**{**TINY, "seed": 5})
    assert not set(cache.checkpoint_paths(other, tmp_path)) & set(paths)
    with pytest.raises(ValueError, match="another config"):
        cache.load_member(other, 0, paths[0])
    with pytest.raises(ValueError, match="another config"):
        cache.load_member(cfg, 1, paths[0])  # member 1's seeds, member 0's file


@needs_data
def test_corrupted_checkpoint_is_reported_and_retrained(tmp_path, capsys):
    cfg = TrainConfig(**TINY)
    path = cache.member_path(cfg, 0, tmp_path)
    path.write_bytes(b"not a checkpoint")
    ens, _ = cache.get_ensemble(cfg, RUN.replace(cache_dir=tmp_path), progress=False)
    assert "unusable" in capsys.readouterr().out
    reloaded, _ = cache.load_ensemble(cfg, RUN.replace(cache_dir=tmp_path))
    assert _equal_weights(ens, reloaded)


@needs_data
def test_a_member_trains_bit_for_bit_as_it_would_alone():
    """Own dropout stream per member: joint training = separate training, to the last
    bit."""
    cfg = TrainConfig(**{**TINY, "n_train": 512})
    pair, hist = train.train_ensemble(cfg, RUN, progress=False)
    alone, _ = train.train_ensemble(
        dataclasses.replace(cfg, n_members=1), RUN, progress=False
    )
    second, _ = train.train_ensemble(cfg, RUN, progress=False, members=[1])
    assert _equal_weights(pair[0], alone[0]) and _equal_weights(pair[1], second[0])
    assert not torch.equal(pair[0].fc2.weight, pair[1].fc2.weight)
    assert hist.member(1).loss == [[hist.loss[0][1]]]
    # dropout with streams leaves the global generator where it was
    state = torch.get_rng_state()
    pair.train()(
        torch.rand(2, 1, 28, 28), train._streams(cfg, [0, 1], torch.device("cpu"))
    )
    state_after_input = torch.get_rng_state()
    # torch.rand above drew from it, dropout did not:
    assert not torch.equal(state, state_after_input)
    torch.set_rng_state(state)
    torch.rand(2, 1, 28, 28)
    assert torch.equal(torch.get_rng_state(), state_after_input)


@needs_data
def test_ensembles_share_cached_members(tmp_path, capsys):
    single = TrainConfig(**{**TINY, "n_members": 1})
    one, _ = cache.get_ensemble(single, RUN.replace(cache_dir=tmp_path), progress=False)
    four = dataclasses.replace(single, n_members=4)
    ens, hist = cache.get_ensemble(four, RUN.replace(cache_dir=tmp_path), progress=True)
    out = "".join(capsys.readouterr())  # progress bar on stderr, message on stdout
    # trained 3
    assert "mnist x3" in out and "loaded cached mnist cnn member 1 of 4" in out
    assert _equal_weights(ens[0], one[0]) and len(list(tmp_path.iterdir())) == 4
    assert len(hist.train_accuracy[0]) == 4 and len(hist.loss[0]) == 4
    # identical init + synchronised dropout: every member is member 1 of the
    # single model
    same = dataclasses.replace(four, identical_init=True, sync_dropout=True)
    assert set(cache.checkpoint_paths(same, tmp_path)) == {
        cache.member_path(single, 0, tmp_path)
    }
    twins, _ = cache.get_ensemble(same, RUN.replace(cache_dir=tmp_path), progress=False)
    assert all(_equal_weights(twins[i], one[0]) for i in range(4))
    assert len(list(tmp_path.iterdir())) == 4


@needs_data
def test_time_steps_is_positive_and_validated():
    cfg = TrainConfig(**TINY)
    assert 0 < train.time_steps(cfg, n_steps=2, run=RUN, warmup=1) < 10
    with pytest.raises(ValueError, match="n_steps"):
        train.time_steps(cfg, n_steps=0, run=RUN)


def test_from_profile_uses_profile_settings():
    fast = TrainConfig.from_profile("fast", n_members=4)
    assert fast.n_members == 4 and fast.epochs == 3 and fast.n_train == 10_000
    full = TrainConfig.from_profile("full")
    assert full.epochs == 14 and full.n_train is None


def test_sweep_budget():
    cfg = TrainConfig.from_profile("fast", budget="sweep", arch="resnet18")
    assert cfg.n_train == 4_000 and cfg.epochs == 2 and cfg.arch == "resnet18"
    assert TrainConfig.from_profile("full", budget="sweep").n_train is None
    with pytest.raises(ValueError, match="budget"):
        TrainConfig.from_profile("fast", budget="huge")
