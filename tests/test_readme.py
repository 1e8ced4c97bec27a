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


def shell_commands(path: Path) -> list[str]:
    """The commands of a Markdown file's fenced ```bash blocks, comments stripped."""
    blocks = re.findall(r"^```bash\n(.*?)^```", path.read_text(), re.M | re.S)
    lines = [line.split("#", 1)[0].strip() for b in blocks for line in b.splitlines()]
    return [line for line in lines if line]


def test_the_shell_commands_of_the_readme_and_the_book_exist_as_written():
    """Every `make` target a page names exists, and every `tools/*.py` command parses
    with that tool's own command line (its ``arguments()``)."""
    import importlib
    import shlex
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    pages = [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md"))]
    commands = [(p.name, c) for p in pages for c in shell_commands(p)]
    assert len(commands) >= 8
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.M))
    for page, command in commands:
        words = [w for w in shlex.split(command) if not re.match(r"[A-Z_]+=", w)]
        if words[0] == "make":
            assert set(words[1:]) <= targets, f"{page}: {command}"
            continue
        assert words[0].endswith("python") and words[1].startswith("tools/"), command
        assert (ROOT / words[1]).exists(), f"{page}: no {words[1]}"
        tool = importlib.import_module(Path(words[1]).stem)
        tool.arguments().parse_args(words[2:])  # exits (fails the test) if it can't
    with pytest.raises(SystemExit):
        importlib.import_module("reproduce").arguments().parse_args(["--bogus"])


if __name__ == "__main__":
    pytest.main([__file__])
