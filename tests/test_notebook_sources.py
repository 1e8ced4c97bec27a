"""Static checks of the chapters' sources: the Colab cell, GPU metadata, exercises, and
prose cells that show no source."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
import tomllib
import yaml
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from prose_cells import prose_tag, untagged_prose_cells  # noqa: E402
from run_notebooks import toc_notebooks  # noqa: E402
from student_notebooks import (  # noqa: E402
    PLAIN_DIR,
    exercises,
    plain_markdown,
    solution_blocks,
    to_plain,
    to_student,
)

NOTEBOOKS = toc_notebooks(ROOT)
CHAPTERS = [p for p in NOTEBOOKS if p.name[:2].isdigit()]
REPO_URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def run_colab_cell(source: str, in_colab: bool) -> list[tuple[str, str]]:
    """Execute the cell with IPython's transformations; return the magics it called."""
    calls: list[tuple[str, str]] = []

    class FakeShell:
        def run_line_magic(self, name: str, line: str) -> None:
            calls.append((name, line))

    code = TransformerManager().transform_cell(source)
    saved = sys.modules.get("google.colab")
    try:
        if in_colab:
            sys.modules["google.colab"] = type(sys)("google.colab")
        else:
            sys.modules.pop("google.colab", None)
        exec(compile(code, "<colab cell>", "exec"), {"get_ipython": FakeShell})
    finally:
        sys.modules.pop("google.colab", None)
        if saved is not None:
            sys.modules["google.colab"] = saved
    return calls


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_first_cell_installs_the_package_in_colab_only(path):
    nb = nbformat.read(path, as_version=4)
    cell = nb.cells[0]
    assert cell.cell_type == "code", "the first cell must be the Colab install cell"
    assert "remove-cell" in cell.metadata.get("tags", []), (
        "the Colab cell must be hidden on the site"
    )
    assert run_colab_cell(cell.source, in_colab=False) == [], (
        "the Colab cell must do nothing outside Colab"
    )
    calls = run_colab_cell(cell.source, in_colab=True)
    assert len(calls) == 1 and calls[0][0] == "pip", calls
    line = calls[0][1]
    assert f"git+{REPO_URL}" in line, (
        f"install from the configured repository {REPO_URL}: {line}"
    )
    assert line.rstrip().endswith(f'@v{VERSION}"'), (
        f"pin the version that builds the page, v{VERSION}: {line}"
    )
    assert not re.search(
        r"\b(torch|torchvision|numpy)\b", line.replace("ood-utils", "")
    ), "the Colab cell must not reinstall torch or numpy"
    assert "--upgrade" not in line and "--force-reinstall" not in line


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_asks_for_a_gpu(path):
    meta = nbformat.read(path, as_version=4).metadata
    assert meta.get("accelerator") == "GPU" and meta["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_ends_with_two_exercises_with_solutions_and_checks(path):
    nb = nbformat.read(path, as_version=4)
    labels = exercises(nb)
    assert len(labels) >= 2, f"{path.name} has {len(labels)} exercises"
    assert all(label.startswith(f"ex-{path.name[:2]}-") for label in labels), labels
    blocks = solution_blocks(nb)
    assert sorted(b[0] for b in blocks) == sorted(labels), (
        "every exercise needs one solution"
    )
    first = min(i for i, c in enumerate(nb.cells) if "{exercise" in c.source)
    assert all(
        not c.source.startswith("## ")
        for c in nb.cells[first:]
        if c.cell_type == "markdown"
    ), "the exercises must be the chapter's last section"
    for label, start, end in blocks:
        assert "dropdown" in nb.cells[start].source, (
            f"{label}: solutions fold away (:class: dropdown)"
        )
        assert any(c.cell_type == "code" for c in nb.cells[start + 1 : end]), (
            f"{label}: no solution code"
        )
        after = nb.cells[end + 1] if end + 1 < len(nb.cells) else None
        assert (
            after is not None
            and after.cell_type == "code"
            and "checks.check_" in after.source
        ), (
            f"{label}: the cell after the solution should call a check from "
            "ood_utils.checks"
        )


def test_exercise_labels_are_unique_across_the_book():
    labels = [
        label for p in CHAPTERS for label in exercises(nbformat.read(p, as_version=4))
    ]
    assert len(labels) == len(set(labels))


def synthetic_chapter(*solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A code cell, one exercise with the given solution cells, and a check cell."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell(
            "```{exercise} Add\n:label: ex-99-add\n\nAdd one.\n```"
        ),
        nbformat.v4.new_markdown_cell(
            "```{solution-start} ex-99-add\n:class: dropdown\n```"
        ),
        *solution,
        nbformat.v4.new_markdown_cell("```{solution-end}\n```"),
        nbformat.v4.new_code_cell("assert y == 2"),
    ]
    return nb


def test_student_version_of_a_synthetic_chapter():
    nb = synthetic_chapter(
        nbformat.v4.new_code_cell("y = x + 1"),
        nbformat.v4.new_markdown_cell("Why this works."),
        nbformat.v4.new_code_cell("print(y)"),
    )
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="hi")]
    student = to_student(nb)
    sources = [c.source for c in student.cells]
    assert sources[:2] == ["x = 1", nb.cells[1].source]
    assert sources[2].startswith("# Exercise ex-99-add (part 1 of 2)") and sources[
        2
    ].endswith("...")
    assert sources[3].startswith("# Exercise ex-99-add (part 2 of 2)")
    assert sources[4:] == ["assert y == 2"] and student.cells[0].outputs == []
    assert nb.cells[0].outputs, "the book's notebook is not modified"


@pytest.mark.parametrize(
    "cells, message",
    [
        (["```{solution-start} ex-99-a\n```"], "never closed"),
        (["```{solution-end}\n```"], "without solution-start"),
        (
            ["```{solution-start} ex-99-zz\n```", "```{solution-end}\n```"],
            "unknown exercise",
        ),
    ],
)
def test_malformed_solutions_are_reported(cells, message):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("```{exercise} A\n:label: ex-99-a\n\nDo it.\n```")
    ]
    nb.cells += [nbformat.v4.new_markdown_cell(c) for c in cells]
    with pytest.raises(ValueError, match=message):
        solution_blocks(nb)


def test_execution_plan_runs_the_student_prefix_then_the_solutions():
    import build_book

    nb = synthetic_chapter(nbformat.v4.new_code_cell("y = x + 1"))
    plan, k = build_book.execution_plan(nb)
    assert k == 3  # x = 1, the exercise, one stub
    assert [c.source for c in plan.cells][:2] == ["x = 1", nb.cells[1].source]
    assert plan.cells[2].metadata["student_stub"] == "ex-99-add"
    assert (
        plan.cells[3].metadata["student_stub"] == "ex-99-add"
        and "not answered yet" in plan.cells[3].source
    )
    assert [c.source for c in plan.cells[4:]] == [c.source for c in nb.cells[2:]]


def test_a_stub_keeps_signatures_docstrings_and_the_variables_the_check_reads():
    solution = nbformat.v4.new_code_cell(
        'import math\n\n\ndef threshold(s: "torch.Tensor", budget: float) -> float:\n'
        '    """The smallest threshold within budget: (B,) -> float."""\n'
        "    return float(s.sort(descending=True).values[math.floor(budget * "
        "len(s))])\n\n\n"
        'helper = 3\nmine: float = threshold(__import__("torch").arange(10.0), 0.1)\n'
    )
    nb = synthetic_chapter(solution)
    nb.cells[-1] = nbformat.v4.new_code_cell(
        "from ood_utils import checks\nchecks.check_threshold(threshold)\nprint(mine)"
    )
    (stub,) = [c for c in to_student(nb).cells if c.metadata.get("student_stub")]
    assert 'def threshold(s: "torch.Tensor", budget: float) -> float:' in stub.source
    assert (
        '"""The smallest threshold within budget: (B,) -> float."""\n    ...'
        in stub.source
    )
    assert (
        "mine = ..." in stub.source
        and "helper" not in stub.source
        and "return" not in stub.source
    )
    import build_book

    plan, _ = build_book.execution_plan(nb)
    namespace: dict = {}
    # the stub, then the probe: the check says "not answered yet"
    for cell in plan.cells[2:4]:
        exec(cell.source, namespace)
    # a wrong answer: the probe fails
    namespace["threshold"] = lambda s, budget: float(s.max())
    with pytest.raises(AssertionError, match="stricter than needed"):
        exec(plan.cells[3].source, namespace)


def glossary_terms() -> set[str]:
    """The terms ``book/glossary.md`` defines, lower-cased (Sphinx looks terms up that
    way)."""
    text = (ROOT / "book" / "glossary.md").read_text()
    block = text.split("```{glossary}", 1)[1].split("```", 1)[0]
    return {
        line.strip().lower()
        for line in block.splitlines()
        if line and not line[0].isspace()
    }


def test_every_term_link_names_a_glossary_term():
    """{term}`text <target>` and {term}`target` in the chapters resolve (the site build
    would fail)."""
    terms = glossary_terms()
    assert {
        "fooling image",
        "kl divergence",
        "fpr@95tpr",
        "false-alarm budget",
    } <= terms
    used = set()
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            for m in re.finditer(r"\{term\}`([^`]+)`", cell.source):
                target = m.group(1)
                target = (
                    target.rsplit("<", 1)[1].rstrip(">")
                    if target.endswith(">")
                    else target
                )
                assert target.lower() in terms, (
                    f"{path.name}: {{term}}`{m.group(1)}` is not in the glossary"
                )
                used.add(target.lower())
    assert {
        "fooling image",
        "kl divergence",
        "fpr@95tpr",
        "false-alarm budget",
        "twins",
    } <= used


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_exercises_are_gated_so_their_statements_are_plain_markdown(path):
    """sphinx-exercise's gated form: ```{exercise-start}``` and ```{exercise-end}``` in
    cells of their own around ordinary Markdown, which Jupyter and Colab render (math
    included); the fenced ```{exercise}``` form would show there as a code block."""
    cells = nbformat.read(path, as_version=4).cells
    assert not any(c.source.lstrip().startswith("```{exercise}") for c in cells), (
        "use exercise-start/-end"
    )
    starts = [
        i
        for i, c in enumerate(cells)
        if c.source.lstrip().startswith("```{exercise-start}")
    ]
    assert starts
    for i in starts:
        body, end = cells[i + 1], cells[i + 2]
        assert (
            body.cell_type == "markdown"
            and "```" not in body.source
            and body.source.strip()
        )
        assert end.source.strip() == "```{exercise-end}\n```".strip()
        hint = re.search(r"\n:::\{hint\}\n:class: dropdown\n(.+)\n:::$", body.source)
        assert hint and len(hint.group(1)) > 40, (
            f"{path.name} cell {i + 1}: the exercise ends without a folded hint"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_figure_has_alt_text(path):
    """A cell that draws a figure describes it in one line (myst-nb's
    ``mystnb.image.alt``)."""
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "code" and (
            "plt.show()" in cell.source or "plt.subplots" in cell.source
        ):
            alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")
            assert len(alt) > 20 and "\n" not in alt, (
                f"{path.name} cell {i}: a figure without alt text"
            )


def test_every_figure_is_numbered_and_captioned():
    """A cell that draws a figure names it and captions it (myst-nb's
    ``mystnb.figure``), so the site numbers it ("Fig. 3.2") and prose can reference
    it; names are unique across the book, and the cell prints nothing else (myst-nb
    would wrap that output in the same figure)."""
    names = []
    for path in NOTEBOOKS:
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type != "code" or "plt.show()" not in cell.source:
                continue
            if "remove-output" in cell.metadata.get("tags", []):
                continue  # a live widget: the site shows no figure
            figure = cell.metadata.get("mystnb", {}).get("figure", {})
            where = f"{path.name} cell {i}"
            prefix = path.stem[:2] if path.stem[:2].isdigit() else path.stem
            assert figure.get("name", "").startswith(f"fig-{prefix}-"), where
            assert len(figure.get("caption", "")) > 30, f"{where}: no caption"
            names.append(figure["name"])
            after = cell.source.split("plt.show()", 1)[1]
            assert "say(" not in after and "display(" not in after, (
                f"{where}: prints after its figure; split the cell"
            )
    assert len(names) == len(set(names)), "two figures share a name"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_the_committed_student_notebook_is_current_and_linked(path):
    """student/notebooks/ holds each chapter's student version (Colab opens it from the
    repository): regenerate it with `make student` after changing the chapter."""
    from student_notebooks import STUDENT_DIR

    committed = ROOT / STUDENT_DIR / path.relative_to(ROOT)
    assert committed.exists(), f"no {committed.relative_to(ROOT)}: run `make student`"
    fresh = to_plain(to_student(nbformat.read(path, as_version=4)))
    saved = nbformat.read(committed, as_version=4)
    assert [(c.cell_type, c.source) for c in saved.cells] == [
        (c.cell_type, c.source) for c in fresh.cells
    ], f"{committed.relative_to(ROOT)} is stale: run `make student`"
    slug = REPO_URL.split("github.com/")[1]
    exercises_cell = next(
        c.source for c in fresh.cells if c.source.startswith("## Exercises")
    )
    rel = f"v{VERSION}/{STUDENT_DIR}/{path.relative_to(ROOT)}"
    assert (
        f"https://colab.research.google.com/github/{slug}/blob/{rel}" in exercises_cell
    )
    assert f"{REPO_URL}/raw/{rel}" in exercises_cell
    stubs = [c.source for c in fresh.cells if c.metadata.get("student_stub")]
    assert stubs and all(s.rstrip().endswith("...") for s in stubs), (
        "every stub ends where the student writes"
    )


@pytest.mark.parametrize(
    "source, expected",
    [
        ('say(f"AUROC **{a:.3f}**.")', ("remove-input", 0)),
        ('if ok:\n    say("yes")\nelse:\n    say("no")', ("remove-input", 0)),
        ('a = f(x)\nsay(f"{a}")', ("hide-input", 0)),
        ('fig, ax = plt.subplots()\nplt.show()\nsay("It rises.")', ("split", 2)),
        ('say("first")\ndisplay(table)', None),
        ('table.style.format("{:.3f}")', None),
        ("%pip install x\nsay('x')", None),
    ],
)
def test_a_cell_that_prints_prose_is_recognised(source, expected):
    assert prose_tag(source) == expected


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_cell_that_prints_prose_shows_no_source_on_the_site(path):
    missing = untagged_prose_cells(path)
    assert not missing, (
        f"cells {missing} print prose but show their source: run "
        "`.venv/bin/python tools/prose_cells.py`"
    )


RAW_MYST = re.compile(r"\{[a-z:-]+\}`|```\{|^:label:|^:class:", re.MULTILINE)


def markdown_of(nb: nbformat.NotebookNode) -> str:
    """All the markdown cells of ``nb``, joined."""
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebooks_colab_opens_are_current_and_plain(path):
    """colab/notebooks/ holds the plain copy of each chapter (the site's Colab button
    opens it, `repository.path_to_book`), student/notebooks/ the student versions: no
    MyST fence, option or role in their markdown, each exercise's title a heading."""
    committed = ROOT / PLAIN_DIR / path.relative_to(ROOT)
    assert committed.exists(), f"no {committed.relative_to(ROOT)}: run `make student`"
    fresh = to_plain(nbformat.read(path, as_version=4))
    saved = nbformat.read(committed, as_version=4)
    assert [(c.cell_type, c.source) for c in saved.cells] == [
        (c.cell_type, c.source) for c in fresh.cells
    ], f"{committed.relative_to(ROOT)} is stale: run `make student`"
    book = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert book["repository"]["path_to_book"] == PLAIN_DIR
    opened = [saved]
    student = ROOT / "student" / path.relative_to(ROOT)
    if student.exists():
        opened.append(nbformat.read(student, as_version=4))
    for nb in opened:
        markdown = markdown_of(nb)
        assert not RAW_MYST.findall(markdown), RAW_MYST.findall(markdown)[:5]
        headings = re.findall(r"^### Exercise: (.+)$", markdown, re.MULTILINE)
        assert len(headings) == len(exercises(nbformat.read(path, as_version=4)))
        assert markdown.count("<details><summary>Hint</summary>") == len(headings)
        assert all(h.strip() for h in headings)


def test_plain_markdown_turns_myst_into_text():
    authors = {"patry2020selfkl": ("Patry", "2020"), "a2019": ("A and B", "2019")}
    exercise = "```{exercise-start} Symmetric KL\n:label: ex-03-symmetric-kl\n```"
    assert plain_markdown(exercise, authors) == "### Exercise: Symmetric KL"
    solution = "```{solution-start} ex-03-symmetric-kl\n:class: dropdown\n```"
    assert plain_markdown(solution, authors) == "#### Solution"
    assert plain_markdown("```{exercise-end}\n```", authors) == ""
    assert (
        plain_markdown(
            "As {cite:t}`patry2020selfkl` says {cite:p}`patry2020selfkl,a2019`, the "
            "{term}`fooling images <fooling image>` and the {term}`twin score`.",
            authors,
        )
        == "As Patry (2020) says (Patry, 2020; A and B, 2019), the fooling images and "
        "the twin score."
    )
    with pytest.raises(ValueError, match="nobody"):
        plain_markdown("{cite:p}`nobody`", authors)


# ---- issue 23: each chapter teaches first; the original in one closing section ----

from apparatus import SECTION, share  # noqa: E402


def _headings(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """(cell index, heading line) of every level-2 heading."""
    return [
        (i, line)
        for i, c in enumerate(nb.cells)
        if c.cell_type == "markdown"
        for line in c.source.splitlines()
        if line.startswith("## ")
    ]


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_the_original_lives_in_one_closing_section_of_one_call(path):
    """A chapter with a comparison has one "Against the original" section, after "What
    we learned" and before the exercises, whose only code is one call of the package,
    its output folded; no other section is about the original's protocol."""
    from ood_utils import against

    nb = nbformat.read(path, as_version=4)
    headings = [h for _, h in _headings(nb)]
    assert not [h for h in headings if "original" in h.lower() and h != SECTION], (
        headings
    )
    if path.stem not in against.CHAPTERS:
        assert SECTION not in headings
        return
    assert headings.count(SECTION) == 1, headings
    assert headings.index("## What we learned") < headings.index(SECTION)
    assert headings.index(SECTION) + 1 == headings.index("## Exercises")
    start = next(i for i, h in _headings(nb) if h == SECTION)
    end = next(i for i, h in _headings(nb) if h == "## Exercises")
    shown = [
        c
        for c in nb.cells[start:end]
        if c.cell_type == "code" and "remove-cell" not in c.metadata.get("tags", [])
    ]
    assert len(shown) == 1, [c.source[:60] for c in shown]
    assert "against.the_original(" in shown[0].source
    assert len(shown[0].source.splitlines()) <= 5
    assert "hide-output" in shown[0].metadata.get("tags", [])


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_no_shown_code_cell_of_a_chapter_is_over_30_lines(path):
    """Long helpers live in the package; the chapter shows the lines that matter,
    solutions included."""
    hidden = {"remove-input", "hide-input", "remove-cell"}
    long = [
        (c.get("id"), len(c.source.splitlines()))
        for c in nbformat.read(path, as_version=4).cells
        if c.cell_type == "code"
        and not hidden & set(c.metadata.get("tags", []))
        and len(c.source.splitlines()) > 30
    ]
    assert not long, long


def test_the_apparatus_measure_counts_what_it_says():
    cell = nbformat.v4.new_markdown_cell
    code = nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook(
        cells=[
            cell("# Title\n\nOne two three four five six seven eight nine ten."),
            cell("The original did it otherwise, in five words."),
            code("x = 1\ny = 2"),
            code("replication.ladder()"),
            cell("## Against the original\n\nFolded below."),
            code("against.the_original(run)"),
            cell("## Exercises\n\nNot counted, original or not."),
        ]
    )
    nb.cells[5].outputs = [
        nbformat.v4.new_output("display_data", {"text/markdown": "many words " * 50})
    ]
    nb.cells[5].metadata["tags"] = ["hide-output"]
    s = share(nb)
    # words: title 1 + 10, original 8, heading 3 + 2; the folded output is not shown
    assert (s.words, s.apparatus_words) == (24, 13)
    assert (s.lines, s.apparatus_lines) == (4, 2)
