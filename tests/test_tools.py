import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_book  # noqa: E402
import full_profile  # noqa: E402


def test_results_table_from_chapter_json(tmp_path):
    row = {
        "chapter": "05_mnist_fashion",
        "profile": "full",
        "device": "cuda",
        "machine": "x86_64",
        "torch": "2.14.1",
        "python": "3.11",
        "time": "2026-11-23 12:00:00",
        "results": {
            "cnn AUROC": {"value": 0.9612345, "original": 0.969},
            "joint attack": {"value": 1.0, "original": "about 0%"},
        },
    }
    (tmp_path / "05_mnist_fashion.json").write_text(json.dumps(row))
    md = full_profile.table(tmp_path, {"05_mnist_fashion": 61.0})
    assert "# Results: full profile" in md and "on cuda" in md
    assert "| 05_mnist_fashion | cnn AUROC | 0.961 | 0.969 |" in md
    assert "| 05_mnist_fashion | joint attack | 1.000 | about 0% |" in md
    assert "| total | 61 |" in md


# --- tools/build_book.py: measuring a chapter's time
# ------------------------------------------


def test_contention_counts_other_processes_and_steal():
    before = {"busy": 100.0, "steal": 5.0, "ours": 50.0}
    # 40 s busy, 30 s of it ours, 4 s stolen
    after = {
        "busy": 140.0,
        "steal": 9.0,
        "ours": 80.0,
    }
    c = build_book.contention(before, after, seconds=20.0)
    assert (c["other_s"], c["steal_s"]) == (10.0, 4.0)
    assert c["share"] == round(14.0 / (20.0 * os.cpu_count()), 3)
    assert build_book.contention(None, after, 20.0)["share"] is None


def test_cpu_counters_see_this_process_work():
    before = build_book.cpu_counters()
    if before is None:
        pytest.skip("no /proc/stat (not Linux)")
    sum(i * i for i in range(2_000_000))
    after = build_book.cpu_counters()
    assert after["ours"] > before["ours"] and after["busy"] >= before["busy"]


def test_how_busy_the_machine_was_comes_from_recorded_counters():
    """The budget is judged only on a quiet build: how quiet is read from recorded
    /proc/stat counters, so this test does not depend on how busy the machine is now."""
    before = {"busy": 1000.0, "steal": 0.0, "ours": 400.0}
    # 400 s busy: 200 ours, 200 others; 20 stolen
    after = {
        "busy": 1400.0,
        "steal": 20.0,
        "ours": 600.0,
    }
    rep = {
        "seconds": 200.0,
        "others": build_book.contention(before, after, seconds=200.0),
    }
    assert rep["others"]["share"] == round(220.0 / (200.0 * os.cpu_count()), 3)
    assert "of the CPUs" in build_book.describe({**rep, "error": None, "warnings": []})
    report = {
        "notebooks": {
            "a": {"seconds": 100.0, "others": {"share": 0.5}},
            "b": {"seconds": 300.0, "others": {"share": 0.1}},
            "c": {"seconds": 9.0, "others": {"share": None}},
        }
    }
    assert build_book.busy_share(report) == 0.2  # weighted by time: (50 + 30) / 400
    assert build_book.busy_share({"notebooks": {"c": report["notebooks"]["c"]}}) is None


def test_a_chapter_is_timed_with_its_slowest_cells(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("import time; time.sleep(1.0)"),
    ]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    monkeypatch.setenv("OOD_CACHE_DIR", str(tmp_path / "cache"))
    executed, rep = build_book.execute(path)
    assert rep["error"] is None and rep["seconds"] >= 1.0
    assert (
        rep["slowest_cells"][0]["cell"] == 1
        and rep["slowest_cells"][0]["seconds"] >= 1.0
    )
    assert executed.cells[1].metadata["execution"] and set(rep["others"]) == {
        "other_s",
        "steal_s",
        "share",
    }


def test_kernels_run_with_the_allocator_settings_and_the_callers_environment_wins(
    monkeypatch,
):
    """run_notebooks.run starts each kernel with kernel_env added; a variable already
    set is kept."""
    import run_notebooks

    name, value = next(iter(run_notebooks.MALLOC_ENV.items()))
    probe = (
        f"import os; print(os.environ.get({name!r}), os.environ.get('OOD_TOOLS_TEST'))"
    )
    monkeypatch.setenv("OOD_TOOLS_TEST", "kept")
    monkeypatch.delenv(name, raising=False)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(probe)])
    run_notebooks.run(nb, ROOT, timeout=60)
    assert nb.cells[0].outputs[0]["text"].split() == [value, "kept"]
    monkeypatch.setenv(name, "123456")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(probe)])
    run_notebooks.run(nb, ROOT, timeout=60)
    assert nb.cells[0].outputs[0]["text"].split()[0] == "123456"


def test_kernels_wait_passively_only_on_a_busy_machine():
    """OpenMP threads spin on a quiet machine (faster) and sleep when others keep the
    CPUs busy (spinning threads fight them for the cores); the share is measured, here
    given."""
    import run_notebooks

    quiet, busy = run_notebooks.kernel_env(0.01), run_notebooks.kernel_env(0.5)
    assert quiet == run_notebooks.MALLOC_ENV and "OMP_WAIT_POLICY" not in quiet
    assert busy == {**run_notebooks.MALLOC_ENV, "OMP_WAIT_POLICY": "PASSIVE"}
    assert run_notebooks.kernel_env(None) == quiet  # off Linux: nothing to measure
    assert run_notebooks.kernel_env(run_notebooks.BUSY_SHARE) == busy
    share = run_notebooks.others_share(0.2)
    assert share is None or 0.0 <= share <= 1.0


def test_the_gpu_check_refuses_without_a_gpu_and_says_why():
    """tools/gpu_check.sh runs every chapter with OOD_DEVICE=cuda; without CUDA it stops
    at once."""
    import subprocess

    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the script would run the whole book")
    proc = subprocess.run(
        ["bash", str(ROOT / "tools" / "gpu_check.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=120,
    )
    assert proc.returncode != 0 and "needs a CUDA GPU" in proc.stderr
