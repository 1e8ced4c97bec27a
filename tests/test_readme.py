"""The README's Python examples run as written, in order, in one namespace (on tiny
data: the datasets are cut to a few hundred images and the training to one epoch), so
an example cannot go stale."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from conftest import needs_data

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    """The fenced ```python blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), re.M | re.S)


def test_the_readme_has_python_examples():
    assert len(python_blocks(ROOT / "README.md")) >= 2


@needs_data
def test_the_readme_examples_run(tmp_path, monkeypatch, capsys):
    import os

    from ood_utils import data, train

    # the README's calls pass no folders: the user cache's, here an empty one whose
    # data folder is this machine's copy of the datasets
    (tmp_path / "twin-kl").mkdir()
    (tmp_path / "twin-kl" / "data").symlink_to(Path(os.environ["OOD_DATA_ROOT"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    real_load, real_from_profile = data.load, train.TrainConfig.from_profile
    monkeypatch.setattr(  # tiny data
        data,
        "load",
        lambda name, split="train", n=None, **kw: real_load(
            name, split, 300 if n is None else min(n, 300), **kw
        ),
    )
    monkeypatch.setattr(
        train.TrainConfig,
        "from_profile",
        classmethod(
            lambda cls, *a, **kw: dataclasses.replace(
                real_from_profile(*a, **kw), n_train=256, epochs=1
            )
        ),
    )
    namespace: dict = {}
    for block in python_blocks(ROOT / "README.md"):
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    printed = capsys.readouterr().out
    assert "of FashionMNIST flagged" in printed
    numbers = [float(x) for x in re.findall(r"\d\.\d+", printed.split("flagged")[1])]
    assert numbers and 0.0 <= numbers[0] <= 1.0  # the AUROC
    assert namespace["detector"].reference > 0


if __name__ == "__main__":
    pytest.main([__file__])
