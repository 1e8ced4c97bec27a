"""Versioned, licensed, citable: one version (pyproject.toml) everywhere it appears."""

from __future__ import annotations

import sys
from pathlib import Path

import tomllib
import yaml

import ood_utils

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_the_package_reports_the_version_of_pyproject():
    assert ood_utils.__version__ == VERSION


def test_licences_and_citation_exist_and_agree_on_the_version():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert "CC BY 4.0" in (ROOT / "LICENSE-TEXT.md").read_text()
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert (
        cff["cff-version"] == "1.2.0"
        and cff["version"] == VERSION
        and cff["license"] == "MIT"
    )
    assert f"version\n> {VERSION}" in (ROOT / "book" / "citing.md").read_text()


def test_the_site_states_the_version_that_built_it(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    import build_book

    build_book.stage({}, tmp_path / "src")
    config = yaml.safe_load((tmp_path / "src" / "_config.yml").read_text())
    assert f"ood-utils {VERSION}" in config["html"]["extra_footer"]
    assert config["execute"]["execute_notebooks"] == "off"


def test_the_colab_button_and_the_install_cells_name_the_same_release():
    """The rocket button opens `repository.branch`; every chapter installs the package
    from a git ref and links its student version at one: all the release's tag."""
    import re

    branch = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["branch"]
    assert branch == f"v{VERSION}"
    refs = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        text = path.read_text()
        found = set(re.findall(r"twin-kl/twin-kl@(v[\w.]+)", text)) | set(
            re.findall(r"twin-kl/twin-kl/(?:blob|raw)/([\w.]+)/", text)
        )
        assert found, f"{path.name} names no release"
        refs[path.name] = found
    assert all(found == {branch} for found in refs.values()), refs
