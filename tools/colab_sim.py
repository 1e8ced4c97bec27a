"""Run chapters as Colab would: from the installed package alone, each in an empty
folder.

    python tools/colab_sim.py notebooks/01_fooling_attack.ipynb  # the CI's check
    python tools/colab_sim.py --all            # every notebook of _toc.yml
    python tools/colab_sim.py --all --python ~/.pyenv/versions/3.12.1/bin/python
                                               # with Colab's Python

1. A wheel is built from the last commit (``git archive HEAD``: nothing uncommitted can
   leak in).
2. A fresh virtual environment gets that wheel with its base dependencies only (no
   ``[book,test]`` extras; versions pinned by ``constraints.txt``), plus what Colab
   itself provides to run a notebook (``ipykernel``, ``nbclient``).
3. Each chapter, as committed, is copied alone into an empty folder and executed there.
   No file of the repository is reachable: data come from ``$OOD_DATA_ROOT`` (this
   machine has no internet; Colab downloads them), models and results go to fresh
   folders.

Prints each chapter's time; exits non-zero if one fails. ``--venv DIR`` reuses an
environment made before (step 2 is the slow one: it installs torch); this commit's wheel
replaces the package in it."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from run_notebooks import kernel_env, others_share, toc_notebooks  # noqa: E402

#: Executed inside the simulated environment: one notebook, in its folder, with that
#: Python's kernel.
RUNNER = """
import sys, time, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
t0 = time.perf_counter()
resources = {"metadata": {"path": sys.argv[2]}}
NotebookClient(nb, timeout=3600, kernel_name="python3", resources=resources).execute()
print(f"{time.perf_counter() - t0:.1f}")
"""


def build_wheel(work: Path) -> Path:
    """A wheel of the last commit, built from ``git archive HEAD``."""
    src, dist = work / "src", work / "dist"
    src.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    pip(sys.executable, "wheel", "--no-deps", "-w", str(dist), str(src))
    (wheel,) = dist.glob("ood_utils-*.whl")
    return wheel


def pip(python: str | Path, command: str, *args: str) -> None:
    """``python -m pip <command> --quiet <args>``; raises if it fails."""
    subprocess.run([str(python), "-m", "pip", command, "--quiet", *args], check=True)


def make_env(python: str, venv: Path, wheel: Path) -> Path:
    """A fresh virtual environment with ``wheel``'s base dependencies; returns its
    Python."""
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    pip(py, "install", "--upgrade", "pip")
    constraints = str(ROOT / "constraints.txt")
    pip(
        py,
        "install",
        "-c",
        constraints,
        str(wheel),
        "ipykernel",
        "nbclient",
        "nbformat",
    )
    return py


def run_alone(py: Path, notebook: Path, work: Path, env: dict[str, str]) -> float:
    """Execute ``notebook`` copied alone into an empty folder; return its seconds."""
    folder = work / "run" / notebook.stem
    folder.mkdir(parents=True)
    copy = folder / notebook.name
    shutil.copy2(notebook, copy)
    out = subprocess.run(
        [str(py), "-c", RUNNER, str(copy), str(folder)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(
            f"{notebook.name} failed in the simulated Colab:\n{out.stderr[-4000:]}"
        )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--all", action="store_true", help="every notebook of _toc.yml")
    parser.add_argument(
        "--python", default=sys.executable, help="the Python of the environment"
    )
    parser.add_argument(
        "--venv", type=Path, help="reuse (or create and keep) this environment"
    )
    args = parser.parse_args()
    notebooks = (
        toc_notebooks(ROOT) if args.all else [p.resolve() for p in args.notebooks]
    )
    if not notebooks:
        parser.error("name notebooks, or --all")
    outside = [str(p) for p in notebooks if not p.is_relative_to(ROOT)]
    if outside:
        parser.error(f"not notebooks of this repository: {', '.join(outside)}")
    with tempfile.TemporaryDirectory(prefix="colab-sim-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        venv = args.venv or work / "venv"
        py = venv / "bin" / "python"
        wheel = build_wheel(work)
        # a reused environment gets this commit's package, its dependencies as they are
        if py.exists():
            pip(py, "install", "--no-deps", "--force-reinstall", str(wheel))
        else:
            py = make_env(args.python, venv, wheel)
        version = subprocess.run(
            [
                str(py),
                "-c",
                "import sys, ood_utils; print(sys.version.split()[0], "
                "ood_utils.__version__, ood_utils.__file__)",
            ],
            cwd=work,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        print(
            f"environment ready in {time.perf_counter() - t0:.0f} s: Python, "
            f"ood-utils, location: {version}",
            flush=True,
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OOD_", "PYTHONPATH", "VIRTUAL_ENV"))
        }
        env.update(
            {
                **kernel_env(others_share()),
                "OOD_CACHE_DIR": str(work / "models"),
                "OOD_RESULTS_DIR": str(work / "results"),
                "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}",
            }
        )
        if os.environ.get("OOD_DATA_ROOT"):
            env["OOD_DATA_ROOT"] = os.environ["OOD_DATA_ROOT"]
        failed = 0
        for nb in notebooks:  # the chapter as committed, like the package
            try:
                seconds = run_alone(py, work / "src" / nb.relative_to(ROOT), work, env)
                print(f"{seconds:7.1f} s  {nb.name}", flush=True)
            except RuntimeError as err:
                failed += 1
                print(f"FAILED {err}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
