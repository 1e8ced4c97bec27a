"""Execute the book's notebooks with nbclient and report each one's time.

    python tools/run_notebooks.py                 # every notebook in _toc.yml, in order
    python tools/run_notebooks.py notebooks/01_fooling_attack.ipynb --save /tmp/out

Runs with the environment as it is (set OOD_PROFILE, OOD_DATA_ROOT, OOD_CACHE_DIR).
Exits non-zero if any cell fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
import yaml
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def toc_files(root: Path = ROOT) -> list[str]:
    """Every page of ``_toc.yml`` (its root first), as source paths without suffix, in reading order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files: list[str] = [toc["root"]]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", toc.get("chapters", [])))
    return files


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """The ``.ipynb`` files listed in ``_toc.yml``, in reading order."""
    return [root / f"{f}.ipynb" for f in toc_files(root) if (root / f"{f}.ipynb").exists()]


#: Memory-allocator settings for the kernels (glibc; ignored elsewhere). By default glibc hands
#: every block larger than its mmap threshold back to the system when it is freed, so each large
#: tensor (a batch's activations) is allocated afresh and every one of its pages faults again.
#: Keeping freed memory in the heap makes scoring in batches of 1,000 about twice as fast on this
#: book's 2-core CPU (performance appendix, comparison (e)).
#: ``GOMP_SPINCOUNT=1000``: an OpenMP thread that waits for the other spins about 1,000 times
#: (libgomp's default: 300,000) before it sleeps. When another process keeps one of the 2 cores
#: busy, long-spinning threads fight it for the core: chapter 11 from an empty cache took over
#: 21 minutes instead of 104 s. Training steps on a quiet machine / beside a one-core busy loop
#: (ms per step of the CNN, ResNet-18 (28x28) and text twins, timed by hand for issue 16, each
#: setting in a fresh process): default spinning 95 / 192 / 65 and 234 / 783 / 234; 1,000 spins
#: 89 / 197 / 76 and 183 / 417 / 126; never spinning (``OMP_WAIT_POLICY=PASSIVE``) 104 / 278 /
#: 92 and 159 / 352 / 95, which made the quiet book about 15% slower. Other OpenMP runtimes
#: ignore the variable. A variable already set in the environment wins.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "4000000000", "MALLOC_TRIM_THRESHOLD_": "4000000000"}
KERNEL_ENV = {**MALLOC_ENV, "GOMP_SPINCOUNT": "1000"}


def run(nb: nbformat.NotebookNode, folder: Path, timeout: int = 1200) -> float:
    """Execute ``nb`` in place (outputs added) in a fresh kernel, in ``folder``; return the seconds.

    The kernel runs with :data:`KERNEL_ENV` added to this process's environment.
    """
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}})
    t0 = time.perf_counter()
    client.execute(env={**KERNEL_ENV, **os.environ})
    return time.perf_counter() - t0


def execute(path: Path, timeout: int = 1200) -> tuple[nbformat.NotebookNode, float]:
    """Execute one notebook in its own folder; return it with outputs and the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    return nb, run(nb, path.parent, timeout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--save", type=Path, help="folder to write executed copies into")
    args = parser.parse_args()
    paths = args.notebooks or toc_notebooks()
    total, failed = 0.0, 0
    for path in paths:
        try:
            nb, secs = execute(path)
        except Exception as err:  # report and go on with the next notebook
            failed += 1
            print(f"FAILED {path.name}: {str(err)[-2000:]}", flush=True)
            continue
        total += secs
        print(f"{secs:7.1f} s  {path.name}", flush=True)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, args.save / path.name)
    print(f"{total:7.1f} s  total ({len(paths) - failed} ran, {failed} failed)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
