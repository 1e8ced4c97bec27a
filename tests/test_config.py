import pytest
import torch

from ood_utils import config


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV, "full")
    assert config.get_profile().name == "full"
    assert config.get_profile().n_train is None
    monkeypatch.delenv(config.PROFILE_ENV)
    assert config.get_profile().name == "fast"


def test_fast_profile_is_smaller_than_full():
    fast, full = config.get_profile("fast"), config.get_profile("full")
    assert fast.n_train < 60_000 and full.epochs == 14 and fast.epochs < full.epochs


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown profile 'turbo'.*fast"):
        config.get_profile("turbo")


def test_paths_follow_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path / "d"))
    monkeypatch.setenv(config.CACHE_ENV, str(tmp_path / "m"))
    assert config.data_root() == tmp_path / "d"
    assert config.cache_dir() == tmp_path / "m"
    monkeypatch.delenv(config.DATA_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert config.data_root() == tmp_path / "xdg" / "twin-kl" / "data"


def test_device_selection(monkeypatch):
    monkeypatch.setenv(config.DEVICE_ENV, "cpu")
    assert config.get_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            config.get_device("cuda")


def test_seeding_is_reproducible():
    g1 = config.seed_everything(3)
    a = torch.rand(5), torch.rand(5, generator=g1)
    g2 = config.seed_everything(3)
    b = torch.rand(5), torch.rand(5, generator=g2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="non-negative int"):
        config.seed_everything(-1)


def test_atomic_write_replaces_or_leaves_the_old_file(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    config.atomic_write(path, lambda fh: fh.write(b"old"))
    assert path.read_bytes() == b"old"

    def fails(fh):
        fh.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        config.atomic_write(path, fails)
    assert path.read_bytes() == b"old"
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]   # no temporary file left
