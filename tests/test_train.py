import pytest
import torch

from ood_utils import train
from ood_utils.train import TrainConfig
from conftest import needs_data

TINY = dict(dataset="mnist", n_members=2, epochs=1, n_train=256, batch_size=64, seed=0)


def _equal_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_config_key_changes_with_every_field():
    base = TrainConfig(**TINY)
    assert base.key() == TrainConfig(**TINY).key()
    for change in (dict(seed=1), dict(epochs=2), dict(n_members=3), dict(lr=0.5), dict(dataset="fashionmnist")):
        assert TrainConfig(**{**TINY, **change}).key() != base.key()


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_members=0), "n_members"), (dict(dataset="svhn"), "unknown dataset"),
    (dict(gamma=0.0), "gamma"), (dict(n_train=0), "n_train"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{**TINY, **kwargs})


@needs_data
def test_training_learns_and_is_reproducible():
    cfg = TrainConfig(**{**TINY, "n_train": 1024})
    a, hist = train.train_ensemble(cfg, device="cpu", progress=False)
    b, _ = train.train_ensemble(cfg, device="cpu", progress=False)
    assert _equal_weights(a, b)                       # same seed, same batches: bit-identical
    assert not torch.equal(a[0].fc2.weight, a[1].fc2.weight)
    assert len(hist.loss) == 1 and len(hist.train_accuracy[0]) == 2
    from ood_utils import data
    test = data.load("mnist", "test", n=500)
    assert min(train.accuracy(a, test.images, test.labels)) > 0.6


@needs_data
def test_cache_round_trip_and_config_miss(tmp_path, capsys):
    cfg = TrainConfig(**TINY)
    first, _ = train.get_ensemble(cfg, device="cpu", root=tmp_path, progress=False)
    path = train.checkpoint_path(cfg, tmp_path)
    assert path.exists() and [p.name for p in tmp_path.iterdir()] == [path.name]   # no temp files left
    again, _ = train.get_ensemble(cfg, device="cpu", root=tmp_path, progress=True)
    assert "loaded cached" in capsys.readouterr().out
    assert _equal_weights(first, again)
    other = TrainConfig(**{**TINY, "seed": 5})
    assert train.checkpoint_path(other, tmp_path) != path
    with pytest.raises(ValueError, match="another config"):
        train.load_checkpoint(other, path)


@needs_data
def test_corrupted_checkpoint_is_reported_and_retrained(tmp_path, capsys):
    cfg = TrainConfig(**TINY)
    path = train.checkpoint_path(cfg, tmp_path)
    path.write_bytes(b"not a checkpoint")
    ens, _ = train.get_ensemble(cfg, device="cpu", root=tmp_path, progress=False)
    assert "unusable" in capsys.readouterr().out
    reloaded, _ = train.load_checkpoint(cfg, path)
    assert _equal_weights(ens, reloaded)


@needs_data
def test_time_steps_is_positive_and_validated():
    cfg = TrainConfig(**TINY)
    assert 0 < train.time_steps(cfg, n_steps=2, device="cpu", warmup=1) < 10
    with pytest.raises(ValueError, match="n_steps"):
        train.time_steps(cfg, n_steps=0)


def test_from_profile_uses_profile_settings():
    fast = TrainConfig.from_profile("fast", n_members=4)
    assert fast.n_members == 4 and fast.epochs == 3 and fast.n_train == 12_000
    full = TrainConfig.from_profile("full")
    assert full.epochs == 14 and full.n_train is None


def test_sweep_budget():
    cfg = TrainConfig.from_profile("fast", budget="sweep", arch="resnet18")
    assert cfg.n_train == 6_000 and cfg.epochs == 2 and cfg.arch == "resnet18"
    assert TrainConfig.from_profile("full", budget="sweep").n_train is None
    with pytest.raises(ValueError, match="budget"):
        TrainConfig.from_profile("fast", budget="huge")
