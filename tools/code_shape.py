"""The package's shape: its modules' line counts and its longest functions.

    python tools/code_shape.py              # layout, then the 15 longest functions
    python tools/code_shape.py --top 30

A function's length is its lines of code: the lines from its ``def`` to its end, less
its docstring, blank lines and comment lines (a nested function counts in the function
that holds it and on its own). ``tests/test_structure.py`` holds every function of the
package to :data:`MAX_FUNCTION_LINES`."""

from __future__ import annotations

import argparse
import ast
import io
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ood_utils"
#: The most lines of code a function of the package may have.
MAX_FUNCTION_LINES = 60


def _code_lines(source: str) -> set[int]:
    """The line numbers of ``source`` that hold a token other than a comment."""
    lines: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT}
    skip |= {tokenize.DEDENT, tokenize.ENDMARKER, tokenize.ENCODING}
    for tok in tokenize.tokenize(io.BytesIO(source.encode()).readline):
        if tok.type not in skip:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines


def function_lengths(path: Path) -> list[tuple[int, str]]:
    """``[(lines of code, "module.py:qualified.name")]`` for every function in
    ``path``."""
    source = path.read_text()
    code = _code_lines(source)
    out = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                body = set(range(child.lineno, child.end_lineno + 1))
                first = child.body[0]
                is_doc = isinstance(first, ast.Expr) and isinstance(
                    getattr(first, "value", None), ast.Constant
                )
                if is_doc and isinstance(first.value.value, str):
                    body -= set(range(first.lineno, first.end_lineno + 1))
                # decorators are not the function's code
                body -= {n.lineno for n in child.decorator_list}
                where = (
                    path.relative_to(ROOT).as_posix()
                    if path.is_relative_to(ROOT)
                    else path.name
                )
                out.append((len(body & code), f"{where}:{name}"))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(ast.parse(source), "")
    return out


def package_functions() -> list[tuple[int, str]]:
    """Every function of the package, longest first."""
    found = [f for p in sorted(PACKAGE.rglob("*.py")) for f in function_lengths(p)]
    return sorted(found, key=lambda f: (-f[0], f[1]))


def layout() -> list[tuple[str, int]]:
    """``[(module, lines)]`` of the package, in path order."""
    return [
        (p.relative_to(ROOT).as_posix(), len(p.read_text().splitlines()))
        for p in sorted(PACKAGE.rglob("*.py"))
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    rows = layout()
    for module, n in rows:
        print(f"{n:6d}  {module}")
    print(f"{sum(n for _, n in rows):6d}  total ({len(rows)} modules)\n")
    for n, name in package_functions()[: args.top]:
        print(f"{n:6d}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
