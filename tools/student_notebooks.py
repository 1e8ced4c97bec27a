"""Generate the notebooks that Colab and download links open: the student versions of
the chapters (every worked solution becomes a stub) and plain copies of the chapters.

    python tools/student_notebooks.py                  # student/notebooks/*.ipynb and
                                                       # colab/notebooks/*.ipynb
    python tools/student_notebooks.py --out /tmp/class # the student versions only

The repository keeps them in ``student/notebooks/`` and ``colab/notebooks/`` so that
each chapter can link to its student version in Colab and for download, and the site's
Colab button opens the plain copy (``repository.path_to_book`` in ``_config.yml``);
``tests/test_notebook_sources.py`` fails when one is stale: run ``make student``.

Both are **plain Markdown** (:func:`to_plain`): Jupyter and Colab do not know the MyST
the site is written in, so an exercise's fences become a heading, and citations,
glossary terms and cross-references become text.

A chapter's exercises use sphinx-exercise's gated solutions::

    ```{exercise} Title       <- markdown cell: kept
    :label: ex-03-symmetric-kl
    ```
    ```{solution-start} ex-03-symmetric-kl
    ```                       <- markdown cell: dropped, with every cell up to
                                 solution-end
    (solution code cells)     <- each replaced by one stub cell: "# Exercise ...: your
                                 code", its imports, each function's signature and
                                 docstring with the body ``...``, and ``name = ...`` for
                                 the variables the check reads
    ```{solution-end}
    ```
    checks.check_...(answer)  <- code cell after the solution: kept, so students check
                                 themselves

Outputs are cleared. The book's build executes each student notebook up to and including
its first exercise's stub (tools/build_book.py), so a generated notebook always runs.
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from run_notebooks import toc_notebooks  # noqa: E402

#: Where ``make student`` writes, relative to the repository's root (and where the
#: links point).
STUDENT_DIR = "student"
#: Where the plain copies of the chapters go (the site's Colab button opens them).
PLAIN_DIR = "colab"
BIBLIOGRAPHY = ROOT / "book" / "references.bib"

SOLUTION_START = re.compile(r"^\s*```\{solution-start\}\s+(\S+)")
SOLUTION_END = re.compile(r"^\s*```\{solution-end\}")
EXERCISE = re.compile(
    r"```\{exercise(?:-start)?\}[^\n]*\n(?:[^\n]*\n)*?\s*:label:\s*(\S+)"
)


def exercises(nb: nbformat.NotebookNode) -> list[str]:
    """The exercise labels of a notebook, in order."""
    return [
        m.group(1)
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for m in EXERCISE.finditer(cell.source)
    ]


def solution_blocks(nb: nbformat.NotebookNode) -> list[tuple[str, int, int]]:
    """``(label, start, end)`` cell indices of each solution-start / solution-end pair.

    Raises:
        ValueError: an unclosed or nested solution, or one whose label names no
            exercise.
    """
    labels = set(exercises(nb))
    blocks, open_at, label = [], None, ""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        if m := SOLUTION_START.match(cell.source):
            if open_at is not None:
                raise ValueError(
                    f"cell {i}: solution-start inside the solution opened at cell "
                    f"{open_at}"
                )
            open_at, label = i, m.group(1)
            if label not in labels:
                raise ValueError(
                    f"cell {i}: solution for unknown exercise {label!r} (known: "
                    f"{sorted(labels)})"
                )
        elif SOLUTION_END.match(cell.source):
            if open_at is None:
                raise ValueError(f"cell {i}: solution-end without solution-start")
            blocks.append((label, open_at, i))
            open_at = None
    if open_at is not None:
        raise ValueError(f"the solution opened at cell {open_at} is never closed")
    return blocks


def names_loaded(source: str) -> set[str]:
    """The names a code cell reads (empty if it is not plain Python, e.g. has an IPython
    magic)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {
        n.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }


def _signature(source: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """``node``'s decorators, ``def`` line(s) and docstring as written in ``source``,
    then ``...``."""
    lines = source.splitlines()
    body = node.body[0]
    if body.lineno == node.lineno:  # a one-line function: rebuild it
        node.body = [ast.Expr(ast.Constant(Ellipsis))]
        return ast.unparse(node)
    first = min([d.lineno for d in node.decorator_list] + [node.lineno])
    kept = lines[first - 1 : body.lineno - 1]
    if (
        isinstance(body, ast.Expr)
        and isinstance(body.value, ast.Constant)
        and isinstance(body.value.value, str)
    ):
        kept += lines[body.lineno - 1 : body.end_lineno]  # the docstring
    return "\n".join(kept + [" " * body.col_offset + "..."])


def skeleton(solution: str, needed: set[str]) -> str:
    """What a stub keeps of one solution cell: its imports, each function's signature
    and docstring as written, with the body ``...``, and ``name = ...`` for each
    variable it assigns that ``needed`` names (the check cell reads them), so that
    running the check before answering says "not answered yet". Empty for a cell that is
    not plain Python."""
    try:
        tree = ast.parse(solution)
    except SyntaxError:
        return ""
    blocks: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            blocks.append(ast.get_source_segment(solution, node) or ast.unparse(node))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            blocks.append("\n\n" + _signature(solution, node) + "\n\n")
        else:
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, (ast.AnnAssign, ast.AugAssign))
                else []
            )
            names = [
                n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)
            ]
            blocks += [
                f"{name} = ..."
                for name in names
                if name in needed and f"{name} = ..." not in blocks
            ]
    text = "\n".join(blocks)
    return re.sub(r"\n{4,}", "\n\n\n", text).strip("\n")


def stub(
    label: str,
    part: int,
    parts: int,
    solution: str = "",
    needed: set[str] = frozenset(),
) -> nbformat.NotebookNode:
    """The code cell a student sees instead of one cell of the solution (see
    :func:`skeleton`)."""
    which = f" (part {part} of {parts})" if parts > 1 else ""
    body = skeleton(solution, set(needed))
    # e.g. a cell of imports only: the student's code goes after them
    if not body.endswith("..."):
        body = f"{body}\n...".lstrip("\n")
    cell = nbformat.v4.new_code_cell(
        f"# Exercise {label}{which}: your code here.\n{body}"
    )
    # a stable id (nbformat draws a random one), so that regenerating changes only
    # what changed
    cell.id = hashlib.sha1(f"{label} {part}".encode()).hexdigest()[:8]
    cell.metadata["student_stub"] = label
    return cell


def to_student(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with each solution replaced by stubs and all outputs cleared."""
    out = nbformat.from_dict(nb)
    blocks = solution_blocks(nb)
    starts = {start: (label, end) for label, start, end in blocks}
    cells, i = [], 0
    while i < len(nb.cells):
        if i in starts:
            label, end = starts[i]
            code = [
                c.source for c in nb.cells[i + 1 : end] if c.cell_type == "code"
            ] or [""]
            check = next(
                (c.source for c in nb.cells[end + 1 :] if c.cell_type == "code"), ""
            )
            cells += [
                stub(label, k + 1, len(code), src, names_loaded(check))
                for k, src in enumerate(code)
            ]
            i = end + 1
            continue
        cell = nbformat.from_dict(nb.cells[i])
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
        i += 1
    out.cells = cells
    return out


EXERCISE_FENCE = re.compile(
    r"```\{exercise(?:-start)?\}\s*([^\n]*)\n(?:\s*:[a-z-]+:[^\n]*\n)*\s*```"
)
FENCE_ONLY = re.compile(r"```\{(?:exercise-end|solution-end)\}[^\n]*\n?\s*```\s*")
SOLUTION_FENCE = re.compile(
    r"```\{solution(?:-start)?\}[^\n]*\n(?:\s*:[a-z-]+:[^\n]*\n)*\s*```"
)
ROLE = re.compile(r"\{(cite:p|cite:t|term|numref|ref|doc)\}`([^`]*)`")
#: a folded hint, ``:::{hint}`` with ``:class: dropdown``, and its text
HINT = re.compile(r"^:::\{hint\}[^\n]*\n(?::[a-z-]+:[^\n]*\n)*(.*?)\n:::$", re.M | re.S)


@functools.cache
def _authors(bib: Path = BIBLIOGRAPHY) -> dict[str, tuple[str, str]]:
    """``{key: (authors, year)}`` of the bibliography, authors as "Patry", "Frankle and
    Carbin" or "Nguyen et al."."""
    from pybtex.database import parse_file

    out = {}
    for key, entry in parse_file(str(bib)).entries.items():
        last = [" ".join(p.last_names) for p in entry.persons.get("author", [])]
        names = (
            last[0]
            if len(last) == 1
            else " and ".join(last)
            if len(last) == 2
            else f"{last[0] if last else key} et al."
        )
        out[key] = (names, entry.fields.get("year", "n.d."))
    return out


def plain_markdown(source: str, authors: dict[str, tuple[str, str]]) -> str:
    """``source`` (MyST) as plain Markdown: an exercise's opening fence becomes the
    heading ``### Exercise: <title>``, a solution's ``#### Solution``, closing fences
    disappear; a folded hint becomes an HTML ``<details>`` block (Jupyter and Colab
    fold it too); ``{cite:p}`k``` becomes "(Patry, 2020)", ``{cite:t}`k``` "Patry
    (2020)", a glossary term or a reference its text.

    Raises:
        ValueError: for a citation key that is not in the bibliography."""

    def role(m: re.Match) -> str:
        kind, body = m.groups()
        if kind.startswith("cite"):
            cited = []
            for key in (k.strip() for k in body.split(",")):
                if key not in authors:
                    raise ValueError(f"{key!r} is not in {BIBLIOGRAPHY.name}")
                cited.append(authors[key])
            if kind == "cite:t":
                return "; ".join(f"{a} ({y})" for a, y in cited)
            return "(" + "; ".join(f"{a}, {y}" for a, y in cited) + ")"
        text = body.split("<")[0].strip() if "<" in body else body
        return text

    out = EXERCISE_FENCE.sub(lambda m: f"### Exercise: {m.group(1).strip()}", source)
    out = SOLUTION_FENCE.sub("#### Solution", out)
    out = FENCE_ONLY.sub("", out)
    out = HINT.sub(
        lambda m: (
            f"<details><summary>Hint</summary>\n\n{m.group(1).strip()}\n\n</details>"
        ),
        out,
    )
    return ROLE.sub(role, out).strip()


def to_plain(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` whose markdown is plain (:func:`plain_markdown`), without the
    cells left empty, and with outputs cleared."""
    authors = _authors()
    out = nbformat.from_dict(nb)
    cells = []
    for cell in out.cells:
        if cell.cell_type == "markdown":
            cell.source = plain_markdown(cell.source, authors)
            if not cell.source:
                continue
        elif cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    out.cells = cells
    return out


def first_exercise_prefix(student: nbformat.NotebookNode) -> int:
    """Number of leading cells of a student notebook up to and including its first
    exercise's stubs."""
    stubs = [i for i, c in enumerate(student.cells) if c.metadata.get("student_stub")]
    if not stubs:
        raise ValueError("the notebook has no exercise with a solution")
    first = student.cells[stubs[0]].metadata["student_stub"]
    return (
        max(i for i in stubs if student.cells[i].metadata["student_stub"] == first) + 1
    )


def write_student_notebooks(paths: list[Path], out: Path) -> list[Path]:
    """Write the student version of each notebook with exercises under ``out``; return
    the files."""
    written = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if not solution_blocks(nb):
            continue
        target = out / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(to_plain(to_student(nb)), target)
        written.append(target)
    return written


def write_plain_chapters(paths: list[Path], out: Path) -> list[Path]:
    """Write the plain copy (:func:`to_plain`) of each notebook under ``out``; return
    the files."""
    written = []
    for path in paths:
        target = out / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(to_plain(nbformat.read(path, as_version=4)), target)
        written.append(target)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write the student versions there, and no plain copies",
    )
    args = parser.parse_args()
    out = args.out or ROOT / STUDENT_DIR
    for target in write_student_notebooks(toc_notebooks(ROOT), out):
        print(f"{target.relative_to(out)}: student version")
    if args.out is None:
        plain = write_plain_chapters(toc_notebooks(ROOT), ROOT / PLAIN_DIR)
        print(f"{len(plain)} plain copies in {PLAIN_DIR}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
