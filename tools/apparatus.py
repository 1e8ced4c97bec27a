"""How much of each chapter's shown teaching is about the original post (issue 23).

A chapter teaches first; its comparison with the original lives in one closing section,
"Against the original", folded on the site. This tool counts, in each chapter's body
(everything before "## Exercises"), what a reader sees without unfolding anything:

- prose: the words of markdown cells and of the Markdown and text that cells print
  (outputs of cells tagged ``hide-output`` or ``remove-output`` are folded or absent),
  one paragraph or bullet at a time;
- code: the lines of code cells whose source is shown (not ``remove-input``,
  ``hide-input`` or ``remove-cell``).

A unit is *apparatus* when it lies in the "Against the original" section, or when it
names the original (the word "original") or the package's replication engine
(``replication.``, ``against.``) anywhere else. The shares are apparatus / all, for
prose and for code.

Usage::

    python tools/apparatus.py _build/src/notebooks/[01]*.ipynb
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

SECTION = "## Against the original"
APPARATUS = re.compile(r"\boriginal\b|\breplication\.|\bagainst\.", re.IGNORECASE)
HIDDEN_INPUT = {"remove-input", "hide-input", "remove-cell"}
HIDDEN_OUTPUT = {"remove-output", "hide-output", "remove-cell"}


@dataclass(frozen=True)
class Share:
    """Words of prose and lines of code shown in a chapter's body, and how many of
    them are apparatus."""

    words: int
    apparatus_words: int
    lines: int
    apparatus_lines: int

    @property
    def prose(self) -> float:
        return self.apparatus_words / max(self.words, 1)

    @property
    def code(self) -> float:
        return self.apparatus_lines / max(self.lines, 1)


def _units(text: str) -> list[str]:
    """Paragraphs and list items of Markdown (or printed text)."""
    units: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        items = re.split(r"\n(?=\s*[-*] |\s*\d+\. )", block)
        units.extend(item for item in items if item.strip())
    return units


def _words(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9][\w'.,%/-]*", text))


def _shown_outputs(cell: nbformat.NotebookNode) -> list[str]:
    """The Markdown and plain text a code cell shows (not its tables or figures)."""
    if HIDDEN_OUTPUT & set(cell.metadata.get("tags", [])):
        return []
    texts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            texts.append(out.get("text", ""))
        elif "text/markdown" in out.get("data", {}):
            texts.append(out["data"]["text/markdown"])
    return texts


def share(nb: nbformat.NotebookNode) -> Share:
    """Count ``nb``'s body (an executed chapter, or its source: then the Markdown its
    cells print is not counted)."""
    words = apparatus_words = lines = apparatus_lines = 0
    in_section = False
    for cell in nb.cells:
        source = cell.source
        if cell.cell_type == "markdown":
            heading = re.match(r"(#+) ", source.lstrip())
            if source.lstrip().startswith("## Exercises"):
                break
            if heading and len(heading.group(1)) <= 2:
                in_section = source.lstrip().startswith(SECTION)
            texts = [source]
        else:
            texts = _shown_outputs(cell)
            if not HIDDEN_INPUT & set(cell.metadata.get("tags", [])):
                n = len([line for line in source.splitlines() if line.strip()])
                lines += n
                if in_section or APPARATUS.search(source):
                    apparatus_lines += n
        for text in texts:
            for unit in _units(text):
                n = _words(unit)
                words += n
                if in_section or APPARATUS.search(unit):
                    apparatus_words += n
    return Share(words, apparatus_words, lines, apparatus_lines)


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="chapters (.ipynb)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = arguments().parse_args(argv)
    print(f"{'chapter':28} {'words':>6} {'prose':>6} {'lines':>6} {'code':>6}")
    for path in args.notebooks:
        s = share(nbformat.read(path, as_version=4))
        print(f"{path.stem:28} {s.words:6d} {s.prose:6.0%} {s.lines:6d} {s.code:6.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
