"""Cells that print prose show no source on the site.

A chapter states its results in sentences printed by ``ood_utils.book.say``. The
sentence is what the reader reads; its f-string source above it shows every number
twice. So a code cell whose job is to print prose carries a tag that keeps its source
off the page (Jupyter and Colab still show it):

- ``remove-input`` for a cell that does nothing but ``say(...)`` (its top-level
  statements are ``say`` calls, or ``if`` blocks of them);
- ``hide-input`` (the source folded behind "Show code cell source") for a cell that
  computes a few values and ends with ``say(...)`` without showing anything else (no
  figure, table, ``print`` or ``display``);
- a cell that shows a figure or a table and then says what it shows is split in two:
  the code that shows, and the closing ``say`` statements in a cell of their own,
  ``remove-input``.

Cells of exercise solutions are left alone: there the code is the point.

``python tools/prose_cells.py`` tags the chapters in place; ``--check`` lists the cells
that lack their tag and exits 1 if there is one (``tests/test_notebook_sources.py``
runs the same check).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from run_notebooks import toc_notebooks  # noqa: E402

HIDING_TAGS = ("remove-input", "hide-input", "remove-cell")
#: Calls that show something besides the sentence: such a cell keeps its source.
SHOWING = ("plt", "display", "print", "show", "interact", "imshow")


def _is_say(node: ast.stmt) -> bool:
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return getattr(node.value.func, "id", None) == "say"
    if isinstance(node, ast.If):
        return all(_is_say(n) for n in node.body + node.orelse)
    return False


def _shows_something(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in SHOWING:
            return True
        if isinstance(node, ast.Attribute) and node.attr in SHOWING:
            return True
    return False


def prose_tag(source: str) -> tuple[str, int] | None:
    """What a cell of ``source`` needs because it prints prose, or ``None``.

    ``("remove-input", 0)`` when every top-level statement is ``say(...)`` (or an
    ``if`` of them); ``("hide-input", 0)`` when the cell ends with one and shows nothing
    else; ``("split", line)`` when it shows something and then ends with ``say``
    statements that start at 0-based ``line``; ``None`` otherwise (no closing ``say``,
    or not plain Python)."""
    if any(ln.lstrip().startswith(("%", "!")) for ln in source.splitlines()):
        return None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    body = tree.body
    if not body or not _is_say(body[-1]):
        return None
    if all(_is_say(n) for n in body):
        return ("remove-input", 0)
    if not _shows_something(tree):
        return ("hide-input", 0)
    first = len(body)
    while first > 0 and _is_say(body[first - 1]):
        first -= 1
    if _shows_something(ast.Module(body=body[first:], type_ignores=[])):
        return None
    return ("split", body[first].lineno - 1)


def untagged_prose_cells(path: Path) -> list[tuple[int, tuple[str, int]]]:
    """``(cell index, what it needs)`` (:func:`prose_tag`) for each prose cell of the
    notebook at ``path`` that carries none of :data:`HIDING_TAGS`, outside exercise
    solutions."""
    nb = nbformat.read(path, as_version=4)
    found, in_solution = [], False
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            if "{solution-start}" in cell.source:
                in_solution = True
            elif "{solution-end}" in cell.source:
                in_solution = False
            continue
        if cell.cell_type != "code" or in_solution:
            continue
        if any(t in cell.metadata.get("tags", []) for t in HIDING_TAGS):
            continue
        tag = prose_tag(cell.source)
        if tag is not None:
            found.append((i, tag))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="list, do not tag")
    args = parser.parse_args(argv)
    missing = 0
    for path in toc_notebooks(ROOT):
        cells = untagged_prose_cells(path)
        if not cells:
            continue
        missing += len(cells)
        if args.check:
            for i, (tag, _) in cells:
                print(f"{path.relative_to(ROOT)}: cell {i} prints prose: {tag}")
            continue
        nb = nbformat.read(path, as_version=4)
        for i, (tag, line) in reversed(cells):
            cell = nb.cells[i]
            if tag != "split":
                cell.metadata.setdefault("tags", []).append(tag)
                continue
            lines = cell.source.splitlines()
            cell.source = "\n".join(lines[:line]).rstrip()
            prose = nbformat.v4.new_code_cell(
                "\n".join(lines[line:]).strip(), metadata={"tags": ["remove-input"]}
            )
            nb.cells.insert(i + 1, prose)
        nbformat.write(nb, path)
        print(f"{path.relative_to(ROOT)}: tagged {len(cells)} cells")
    return 1 if args.check and missing else 0


if __name__ == "__main__":
    sys.exit(main())
