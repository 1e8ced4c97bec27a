"""The run context (ood_utils.run), the compute profiles and the cache's atomic
writes."""

import random

import numpy as np
import pytest
import torch

from ood_utils import book, cache, data, profiles
from ood_utils import run as run_context


def test_the_environment_is_read_once_into_a_frozen_context(tmp_path):
    env = {
        "OOD_PROFILE": "full",
        "OOD_DATA_ROOT": str(tmp_path / "d"),
        "OOD_CACHE_DIR": str(tmp_path / "m"),
        "OOD_RESULTS_DIR": str(tmp_path / "r"),
        "OOD_DEVICE": "cpu",
    }
    run = run_context.from_environment("02_x", environ=env)
    assert (run.chapter, run.profile.name, run.device) == (
        "02_x",
        "full",
        torch.device("cpu"),
    )
    assert (run.data_root, run.cache_dir, run.results_dir) == (
        tmp_path / "d",
        tmp_path / "m",
        tmp_path / "r",
    )
    assert run.profile.n_train is None and run.profile.epochs == 14
    with pytest.raises(AttributeError):
        run.seed = 3  # frozen
    defaults = run_context.from_environment(
        "x", environ={"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    )
    assert defaults.profile.name == "fast"
    assert defaults.data_root == tmp_path / "xdg" / "twin-kl" / "data"
    assert (
        run_context.from_environment("x", environ=env, profile="fast").profile.name
        == "fast"
    )
    # what the caller gives wins, and the environment is not read for it
    broken = {"OOD_PROFILE": "huge", "OOD_DEVICE": "tpu"}
    given = run_context.from_environment(
        "x", environ=broken, profile="full", device="cpu"
    )
    assert (given.profile.name, given.device) == ("full", torch.device("cpu"))
    with pytest.raises(TypeError, match="unknown run fields"):
        run_context.from_environment("x", environ=env, epochs=3)


def test_setup_seeds_every_generator_and_records_the_chapters_seed(tmp_path):
    env = {"OOD_RESULTS_DIR": str(tmp_path), "OOD_DEVICE": "cpu"}
    run = book.setup("01_x", seed=3, environ=env)
    a = random.random(), np.random.rand(), torch.rand(3)
    book.setup("01_x", seed=3, environ=env)
    b = random.random(), np.random.rand(), torch.rand(3)
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])
    assert run.seed == 3
    with pytest.raises(ValueError, match="non-negative int"):
        run_context.seed_everything(-1)


def test_library_calls_without_a_context_mean_what_they_say(monkeypatch):
    monkeypatch.setenv("OOD_PROFILE", "full")
    monkeypatch.setenv("OOD_DEVICE", "cpu")
    monkeypatch.setenv("OOD_CACHE_DIR", "/nonexistent")
    lib = run_context.library()
    assert lib.profile.name == "fast" and lib.cache_dir != run_context.Path(
        "/nonexistent"
    )


def test_profiles_hold_compute_budgets_only():
    fast, full = profiles.get_profile("fast"), profiles.get_profile("full")
    assert fast.n_train < 60_000 and full.epochs == 14 and fast.epochs < full.epochs
    assert (
        fast.budget("sweep") == profiles.Budget(4_000, 2)
        and full.budget("sweep").n_train is None
    )
    assert not [
        f
        for f in profiles.Profile.__dataclass_fields__
        if f.startswith(("text_", "cosine_"))
    ]
    with pytest.raises(ValueError, match="unknown profile 'turbo'.*fast"):
        profiles.get_profile("turbo")
    with pytest.raises(ValueError, match="budget must be"):
        fast.budget("huge")


def test_device_selection():
    assert run_context.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        run_context.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            run_context.resolve_device("cuda")
        with pytest.raises(ValueError, match="CUDA is not available"):
            run_context.from_environment("x", environ={"OOD_DEVICE": "cuda"})


def test_chapter_split_takes_the_profiles_subset_from_the_runs_data_folder(tmp_path):
    run = run_context.from_environment("x", device="cpu")
    try:
        images = data.chapter_split(run, "mnist", "test")
    except data.DataNotFoundError:
        pytest.skip("MNIST not found under $OOD_DATA_ROOT")
    assert len(images) == run.profile.n_test
    # a library call: all of it
    assert len(data.load("mnist", "test", root=run.data_root)) == 10_000
    with pytest.raises(data.DataNotFoundError):
        data.chapter_split(run.replace(data_root=tmp_path), "mnist", "test")


def test_book_setup_prints_what_the_chapter_runs_with(capsys, monkeypatch):
    monkeypatch.setenv("OOD_DEVICE", "cpu")
    run = book.setup("03_x")
    assert (
        run.chapter == "03_x"
        and "profile: fast | device: cpu" in capsys.readouterr().out
    )


def test_atomic_write_replaces_or_leaves_the_old_file(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    cache.atomic_write(path, lambda fh: fh.write(b"old"))
    assert path.read_bytes() == b"old"

    def fails(fh):
        fh.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.atomic_write(path, fails)
    assert path.read_bytes() == b"old"
    # no temporary file left
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]


def test_progress_bars_follow_the_argument_and_tqdm_disable(monkeypatch):
    """tqdm's notebook bars ignore TQDM_DISABLE; the package's bars honour it (the
    book's build sets it), and progress=False turns a bar off either way."""
    from ood_utils.progress import progress_bar
    from ood_utils.run import bars_disabled

    assert bars_disabled({"TQDM_DISABLE": "1"}) and not bars_disabled({})
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert not progress_bar(range(2), progress=True).disable
    assert progress_bar(range(2), progress=False).disable
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress_bar(range(2), progress=True).disable
