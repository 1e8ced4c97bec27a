"""Execute every chapter listed in _toc.yml, in order, with nbclient (slow: minutes).

The profile, data root and model cache come from the environment (CI: fast profile,
../shared/data, an empty cache). A chapter fails the test on any cell error and on any
warning printed to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from run_notebooks import execute, toc_notebooks  # noqa: E402

from conftest import NOTEBOOK_SECONDS, needs_data  # noqa: E402

NOTEBOOKS = toc_notebooks(ROOT)


def test_toc_lists_the_chapters():
    assert [p.name for p in NOTEBOOKS] == [
        "01_fooling_attack.ipynb", "02_twin_training.ipynb", "03_kl_calibration.ipynb",
        "04_attacking_twins.ipynb", "05_mnist_fashion.ipynb", "06_identical_init.ipynb",
        "07_ensembles.ipynb", "08_training_schemes.ipynb", "09_baselines.ipynb",
        "10_weights_only.ipynb", "11_text.ipynb", "results.ipynb"]


@needs_data
@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path):
    nb, seconds = execute(path)
    NOTEBOOK_SECONDS[path.name] = seconds
    warnings = [out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                for out in cell.get("outputs", [])
                if out.get("output_type") == "stream" and out.get("name") == "stderr"
                and "warning" in out.get("text", "").lower()]
    assert not warnings, f"{path.name} printed warnings:\n" + "\n".join(warnings)
