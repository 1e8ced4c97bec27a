"""The package's shape: one run context, the chapters' setup line, lint and format.

- Only :mod:`ood_utils.run` reads the environment; every other module takes a run
  context or explicit arguments.
- Every chapter starts (after the Colab cell) with one setup line,
  ``run = book.setup("<its file name>")``, and nothing else calls it.
- ``ruff`` lints and formats the package, the tools, the tests and the notebooks' code
  cells (configuration in pyproject.toml: 88 characters, what a code cell of the book's
  page shows without scrolling).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from run_notebooks import toc_notebooks  # noqa: E402

CHAPTERS = [p for p in toc_notebooks(ROOT) if p.name[:2].isdigit()]
LINTED = ["ood_utils", "tools", "tests", "notebooks", "book"]


def environment_reads(source: str) -> list[int]:
    """Lines of ``source`` that read the environment (``os.environ``, ``os.getenv``,
    ``environ`` or ``getenv`` imported from ``os``)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
            lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            if {a.name for a in node.names} & {"environ", "getenv"}:
                lines.append(node.lineno)
    return lines


def test_only_the_run_context_reads_the_environment():
    readers = {
        str(p.relative_to(ROOT)): environment_reads(p.read_text())
        for p in sorted((ROOT / "ood_utils").rglob("*.py"))
    }
    assert readers.pop("ood_utils/run.py"), "the run context reads the environment"
    assert {p: lines for p, lines in readers.items() if lines} == {}


def test_the_environment_check_sees_each_way_of_reading_it():
    assert environment_reads("import os\nx = os.environ.get('A')") == [2]
    assert environment_reads("import os\nx = os.getenv('A')") == [2]
    assert environment_reads("from os import environ") == [1]
    assert environment_reads("import os\nx = os.path.join('a')") == []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_starts_with_one_setup_line(path):
    nb = nbformat.read(path, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    setup = code[1]  # the first cell after the Colab install cell
    calls = [
        (i, line)
        for i, cell in enumerate(code)
        for line in cell.splitlines()
        if "book.setup(" in line
    ]
    assert calls == [(1, f'run = book.setup("{path.stem}")')], calls
    assert not re.search(r"\bconfig\.|get_profile\(|get_device\(|os\.environ", setup)


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *LINTED],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_ruff_lint_passes():
    out = _ruff("check", "--no-cache", "--output-format", "concise")
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format_is_applied():
    out = _ruff("format", "--check", "--no-cache")
    assert out.returncode == 0, (
        out.stdout + out.stderr + "\nrun `.venv/bin/ruff format .` to format"
    )


def _code_shape():
    sys.path.insert(0, str(ROOT / "tools"))
    import code_shape

    return code_shape


def test_no_package_function_is_longer_than_the_limit():
    shape = _code_shape()
    over = {
        name: n for n, name in shape.package_functions() if n > shape.MAX_FUNCTION_LINES
    }
    assert over == {}, f"over {shape.MAX_FUNCTION_LINES} lines of code: {over}"


def test_function_lengths_count_code_not_docstrings_or_comments(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text(
        'def f():\n    """Doc.\n\n    More."""\n    # a comment\n\n    x = 1\n'
        "    return x\n\n\nclass C:\n    def g(self):\n        return (\n"
        "            1\n        )\n"
    )
    lengths = {
        name.removeprefix("probe.py:"): n
        for n, name in _code_shape().function_lengths(path)
    }
    assert lengths == {"f": 3, "C.g": 4}


def test_the_protocols_are_decided_in_their_record_only():
    """No module or tool branches on a protocol's name: each choice is a field of
    its record (``ood_utils.replication.protocols.RECORDS``)."""
    found = subprocess.run(
        ["grep", "-rn", "if protocol ==", "tools", "ood_utils"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    assert found == ""
    assert not (ROOT / "ood_utils" / "replication.py").exists()


def test_one_load_or_train_path():
    """Only the cache module loads or trains and saves: the image members and the text
    twins go through ``cache.cached_parts``; ``train`` and ``text`` only train."""
    from ood_utils import cache

    readers = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "ood_utils").rglob("*.py")
        if re.search(r"torch\.load\(|load_or_report\(|cached(_parts)?\(", p.read_text())
    }
    assert readers == {"ood_utils/cache.py"}
    for name in ("get_ensemble", "load_ensemble", "get_text_twins"):
        assert getattr(cache, name).__module__ == "ood_utils.cache"
