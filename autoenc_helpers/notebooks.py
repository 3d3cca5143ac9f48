"""Re-execute the course notebooks in place, and check that their stored outputs are honest.

    python -m autoenc_helpers.notebooks run            # every notebook, full mode, on the CPU
    python -m autoenc_helpers.notebooks run notebooks/01_vanilla_autoencoder.ipynb
    python -m autoenc_helpers.notebooks check          # what the tests check, without running anything

``run`` trains every model afresh (checkpoints go to a temporary folder), so the stored outputs show
real training logs; ``--use-checkpoints`` loads the classroom cache of ``data/checkpoints/`` instead.

``run`` executes each notebook top to bottom in a fresh ``python3`` kernel, in
full mode (``AUTOENC_SMOKE=0``), and records in the notebook's metadata a digest
of its code cells. ``check`` (and the test suite) then flags a notebook whose
code changed after its outputs were made, a stored error, a smoke-mode run,
execution counts that are not 1..n, and paths of the machine that ran it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["NOTEBOOK_DIR", "code_digest", "problems", "execute", "main"]

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
META_KEY = "autoenc"


def code_digest(nb) -> str:
    """SHA-256 of the notebook's code cells, in order (outputs and markdown excluded)."""
    h = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            h.update(cell.source.strip().encode())
            h.update(b"\n\x00cell\x00\n")
    return h.hexdigest()


def _machine_paths() -> list[str]:
    """Absolute paths that would give away (and break on) the machine that ran the notebook."""
    paths = {str(Path(__file__).resolve().parent.parent), str(Path.home())}
    return sorted(p for p in paths if len(p) > 1)


def problems(path: str | os.PathLike) -> list[str]:
    """Everything wrong with a committed notebook's stored outputs; empty when it is fine."""
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    found = []
    meta = nb.metadata.get(META_KEY, {})
    if nb.metadata.get("kernelspec", {}).get("name") != "python3":
        found.append("kernelspec name is not 'python3'")
    if "code_digest" not in meta:
        found.append("no record of an execution: run `python -m autoenc_helpers.notebooks run " + path.name + "`")
    elif meta["code_digest"] != code_digest(nb):
        found.append("code cells changed after the outputs were made: re-run it with "
                     "`python -m autoenc_helpers.notebooks run " + path.name + "`")
    if meta.get("mode") != "full":
        found.append(f"outputs come from a {meta.get('mode', 'unknown')!r} run, not a full-mode run")
    counts = [c.get("execution_count") for c in nb.cells if c.cell_type == "code"]
    if counts != list(range(1, len(counts) + 1)):
        found.append("execution counts are not 1..n: the outputs were not made by one top-to-bottom run")
    text = path.read_text(encoding="utf-8")
    for machine_path in _machine_paths():
        if machine_path in text:
            found.append(f"contains a path of the machine that ran it ({machine_path})")
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"cell {i} stores an error: {out.get('ename')}: {str(out.get('evalue'))[:100]}")
            elif out.get("name") == "stderr" and "Traceback (most recent call last)" in out.get("text", ""):
                found.append(f"cell {i} printed a traceback to stderr")
    return found


def execute(path: str | os.PathLike, *, smoke: bool = False, device: str = "cpu", timeout: int = 1800,
            use_checkpoints: bool = False) -> float:
    """Run one notebook top to bottom in place; return its wall time in seconds.

    Unless ``use_checkpoints``, the kernel gets an empty temporary checkpoint folder, so every
    ``cached_fit`` trains (what a learner's first run shows).
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    os.environ["AUTOENC_SMOKE"] = "1" if smoke else "0"
    os.environ["AUTOENC_DEVICE"] = device
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    with tempfile.TemporaryDirectory(prefix="autoenc-run-") as scratch:
        saved = os.environ.get("AUTOENC_CHECKPOINTS")
        if not use_checkpoints:
            os.environ["AUTOENC_CHECKPOINTS"] = str(Path(scratch) / "checkpoints")
        try:
            start = time.perf_counter()
            client.execute()
            seconds = time.perf_counter() - start
        finally:
            if saved is None:
                os.environ.pop("AUTOENC_CHECKPOINTS", None)
            else:
                os.environ["AUTOENC_CHECKPOINTS"] = saved
    nb.metadata[META_KEY] = {"code_digest": code_digest(nb), "mode": "smoke" if smoke else "full",
                             "device": device, "seconds": round(seconds, 1)}
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autoenc_helpers.notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("run", "check"))
    parser.add_argument("paths", nargs="*", help="notebooks (default: every notebooks/*.ipynb)")
    parser.add_argument("--smoke", action="store_true", help="execute in smoke mode (outputs then fail `check`)")
    parser.add_argument("--device", default="cpu", help="AUTOENC_DEVICE for the run (default: cpu)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds one cell may run (default: 1800)")
    parser.add_argument("--use-checkpoints", action="store_true",
                        help="load models saved in data/checkpoints/ instead of training them afresh")
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.paths] or sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    if not paths:
        parser.error(f"no notebooks found in {NOTEBOOK_DIR}")
    bad = 0
    for path in paths:
        if args.action == "run":
            print(f"running {path.name} ({'smoke' if args.smoke else 'full'} mode, {args.device}) ...", flush=True)
            seconds = execute(path, smoke=args.smoke, device=args.device, timeout=args.timeout,
                              use_checkpoints=args.use_checkpoints)
            print(f"  done in {seconds:.0f} s", flush=True)
        else:
            found = problems(path)
            bad += bool(found)
            print(f"{path.name}: " + ("ok" if not found else "\n  - " + "\n  - ".join(found)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
