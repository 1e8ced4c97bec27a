"""Colab, simulated: a chapter copied alone into an empty folder runs from the package
alone.

tools/colab_sim.py builds a wheel of the last commit, installs it with its base
dependencies only (no ``[book,test]`` extras) in a fresh virtual environment, and
executes the chapter there: no file of the repository is reachable. CI runs the cheapest
chapter; every chapter, and Colab's Python 3.12, are run by hand (``--all``,
``--python``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_data

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.notebooks
@needs_data
def test_a_chapter_runs_alone_from_the_installed_package():
    proc = subprocess.run(
        [sys.executable, "tools/colab_sim.py", "notebooks/01_fooling_attack.ipynb"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "s  01_fooling_attack.ipynb" in proc.stdout
    # the wheel's copy, not the repository's
    assert "site-packages/ood_utils" in proc.stdout
