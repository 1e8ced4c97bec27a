"""Execute the book's notebooks with nbclient and report each one's time.

    python tools/run_notebooks.py                 # every notebook in _toc.yml, in order
    python tools/run_notebooks.py notebooks/01_fooling_attack.ipynb --save /tmp/out

Runs with the environment as it is (set OOD_PROFILE, OOD_DATA_ROOT, OOD_CACHE_DIR).
Exits non-zero if any cell fails.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import nbformat
import yaml
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def toc_files(root: Path = ROOT) -> list[str]:
    """Every page of ``_toc.yml`` (its root first), as source paths without suffix, in
    reading order."""
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
    return [
        root / f"{f}.ipynb" for f in toc_files(root) if (root / f"{f}.ipynb").exists()
    ]


#: Memory-allocator settings for the kernels (glibc; ignored elsewhere). By default
#: glibc hands every block larger than its mmap threshold back to the system when it is
#: freed, so each large tensor (a batch's activations) is allocated afresh and every one
#: of its pages faults again. Keeping freed memory in the heap makes scoring in batches
#: of 1,000 about twice as fast on this book's 2-core CPU (performance appendix,
#: comparison (e)).
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": "4000000000",
    "MALLOC_TRIM_THRESHOLD_": "4000000000",
}
#: Added for a kernel that starts while other processes keep the CPUs busy
#: (:func:`kernel_env`): an OpenMP thread that waits for the other then sleeps instead
#: of spinning. Beside a one-core busy loop, spinning threads fight the loop for its
#: core: chapter 11 from an empty cache took over 21 minutes, against 138 s with passive
#: threads. On a quiet machine spinning is faster (issue 16): a whole quiet build with
#: passive threads took about 15% longer, and one with a short spin
#: (``GOMP_SPINCOUNT=1000``) longer still (chapter 5: 187 s, against 133 s spinning).
BUSY_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
#: The share of the CPUs that others must be using, as a kernel starts, for it to get
#: BUSY_ENV: one busy core of two is 0.5, a quiet machine about 0.01.
BUSY_SHARE = 0.25


def cpu_counters() -> dict[str, float] | None:
    """CPU seconds so far: the whole machine's busy and stolen time (``/proc/stat``, all
    CPUs) and this process tree's (this process and its finished kernels); ``None`` off
    Linux."""
    try:
        fields = [
            float(v)
            for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0.0] * 8)[:8]
    ours = sum(
        r.ru_utime + r.ru_stime
        for r in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )
    return {
        "busy": (user + nice + system + irq + softirq) / hz,
        "steal": steal / hz,
        "ours": ours,
    }


def contention(
    before: dict[str, float] | None, after: dict[str, float] | None, seconds: float
) -> dict:
    """How much of the machine others took between two :func:`cpu_counters` readings:
    CPU seconds used by other processes, stolen by the hypervisor, and their share of
    the ``seconds x CPUs`` there were."""
    if before is None or after is None or seconds <= 0:
        return {"other_s": None, "steal_s": None, "share": None}
    other = max(
        0.0, (after["busy"] - before["busy"]) - (after["ours"] - before["ours"])
    )
    steal = after["steal"] - before["steal"]
    return {
        "other_s": round(other, 1),
        "steal_s": round(steal, 1),
        "share": round((other + steal) / (seconds * (os.cpu_count() or 1)), 3),
    }


def others_share(seconds: float = 0.5) -> float | None:
    """The share of the CPUs that other processes use, sampled over the next ``seconds``
    (:func:`contention`); ``None`` off Linux."""
    before = cpu_counters()
    time.sleep(seconds)
    return contention(before, cpu_counters(), seconds)["share"]


def kernel_env(share: float | None) -> dict[str, str]:
    """The variables a kernel starts with: :data:`MALLOC_ENV`, and :data:`BUSY_ENV`
    where others use at least :data:`BUSY_SHARE` of the CPUs (``share``, e.g. from
    :func:`others_share`)."""
    return {
        **MALLOC_ENV,
        **(BUSY_ENV if share is not None and share >= BUSY_SHARE else {}),
    }


def run(
    nb: nbformat.NotebookNode,
    folder: Path,
    timeout: int = 1200,
    env: dict[str, str] | None = None,
) -> float:
    """Execute ``nb`` in place (outputs added) in a fresh kernel, in ``folder``; return
    the seconds.

    The kernel runs with :func:`kernel_env` (measured as it starts) added to this
    process's environment (a variable already set there wins), then ``env`` (which wins
    over both: how a tool sets the chapters' run context, e.g. ``{"OOD_PROFILE":
    "full"}``)."""
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    t0 = time.perf_counter()
    client.execute(env={**kernel_env(others_share()), **os.environ, **(env or {})})
    return time.perf_counter() - t0


def execute(
    path: Path, timeout: int = 1200, env: dict[str, str] | None = None
) -> tuple[nbformat.NotebookNode, float]:
    """Execute one notebook in its own folder (``env`` as in :func:`run`); return it
    with outputs and the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    return nb, run(nb, path.parent, timeout, env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument(
        "--save", type=Path, help="folder to write executed copies into"
    )
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
