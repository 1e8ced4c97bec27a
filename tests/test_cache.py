"""The model cache: every unusable checkpoint is detected, reported and retrained;
nothing partial is left.

Covers ``cache.cached`` (shared by the image ensembles and the text twins): truncated
and garbage files, an older format version, another configuration, a pickle that
``torch.load(weights_only=True)`` refuses (and whose code never runs), and training
interrupted with Ctrl-C."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from conftest import RUN, needs_data
from test_train import TINY, _equal_weights

from ood_utils import cache, text, train
from ood_utils.train import TrainConfig

MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / "twin-kl-unpickled-code-ran"


class Exploit:
    """Unpickling this would run ``open(MARKER, 'w')``: arbitrary code from a
    checkpoint."""

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(MARKER), "w"))


@pytest.fixture
def cfg_and_path(tmp_path):
    cfg = TrainConfig(**TINY)
    return cfg, cache.member_path(cfg, 0, tmp_path)


def good_checkpoint(cfg: TrainConfig, path: Path) -> dict:
    cache.get_ensemble(cfg, RUN.replace(cache_dir=path.parent), progress=False)
    return torch.load(path, weights_only=True)


def damage_truncated(cfg, path):
    good_checkpoint(cfg, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def damage_garbage(cfg, path):
    path.write_bytes(os.urandom(4096))


def damage_older_format(cfg, path):
    payload = good_checkpoint(cfg, path)
    payload["format"] = payload["format"] - 1
    torch.save(payload, path)


def damage_other_config(cfg, path):
    payload = good_checkpoint(cfg, path)
    payload["config"]["epochs"] = 99
    torch.save(payload, path)


def damage_unsafe_pickle(cfg, path):
    MARKER.unlink(missing_ok=True)
    torch.save({"format": train.FORMAT_VERSION, "payload": Exploit()}, path)


@needs_data
@pytest.mark.parametrize(
    "damage",
    [
        damage_truncated,
        damage_garbage,
        damage_older_format,
        damage_other_config,
        damage_unsafe_pickle,
    ],
)
def test_unusable_checkpoint_is_reported_and_retrained(cfg_and_path, damage, capsys):
    cfg, path = cfg_and_path
    reference, _ = train.train_ensemble(cfg, RUN, progress=False)
    damage(cfg, path)
    capsys.readouterr()
    ens, _ = cache.get_ensemble(cfg, RUN.replace(cache_dir=path.parent), progress=True)
    out = capsys.readouterr().out
    assert f"cached checkpoint {path.name} is unusable" in out and "retraining" in out
    assert _equal_weights(ens, reference)  # retrained, same seed: same weights
    assert not MARKER.exists(), "torch.load ran code from the checkpoint"
    # and the file was replaced
    again, _ = cache.load_ensemble(cfg, RUN.replace(cache_dir=path.parent))
    assert _equal_weights(again, reference)
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        p.name for p in cache.checkpoint_paths(cfg, path.parent)
    )


@needs_data
def test_interrupted_training_leaves_no_checkpoint(cfg_and_path, monkeypatch):
    cfg, path = cfg_and_path
    calls = {"n": 0}
    step = train.joint_step

    def interrupted(*args, **kwargs):  # noqa: ANN002, ANN003
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    monkeypatch.setattr(train, "joint_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache.get_ensemble(cfg, RUN.replace(cache_dir=path.parent), progress=False)
    assert list(path.parent.iterdir()) == [], (
        "an interrupted run left a file in the cache"
    )


def test_interrupted_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"old")

    def write(fh):  # noqa: ANN001
        fh.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.atomic_write(path, write)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == [
        "model.pt"
    ]


def test_cached_calls_train_only_when_needed(tmp_path, capsys):
    path = tmp_path / "x.pt"
    trained = []

    def fit() -> int:
        trained.append(1)
        return 7

    def save(value: int, p: Path) -> None:
        cache.atomic_write(p, lambda fh: torch.save({"value": value}, fh))

    def load(p: Path) -> int:
        return int(torch.load(p, weights_only=True)["value"])

    assert cache.cached(path, load, fit, save) == 7 and len(trained) == 1
    # from the cache
    assert cache.cached(path, load, fit, save) == 7 and len(trained) == 1
    assert "loaded cached x.pt" in capsys.readouterr().out
    assert cache.cached(path, load, fit, save, retrain=True) == 7 and len(trained) == 2


def test_text_checkpoint_of_an_older_format_is_retrained(monkeypatch, tmp_path, capsys):
    run = RUN.replace(cache_dir=tmp_path)
    cfg = text.TextConfig(
        context=16, d_model=16, n_layers=1, n_heads=2, steps=2, batch_size=4
    )
    cache.get_text_twins(cfg, run, progress=False)
    path = cache.text_checkpoint_path(cfg, tmp_path)
    payload = torch.load(path, weights_only=True)
    payload["format"] = -1
    torch.save(payload, path)
    capsys.readouterr()
    cache.get_text_twins(cfg, run, progress=False)
    assert "unusable" in capsys.readouterr().out
    assert torch.load(path, weights_only=True)["format"] == text.TEXT_FORMAT_VERSION
