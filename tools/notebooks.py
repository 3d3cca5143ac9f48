"""Re-execute the course notebooks in place, and check that their stored outputs are honest.

    python3 tools/notebooks.py run            # every notebook, full mode, on the CPU
    python3 tools/notebooks.py run notebooks/01_vanilla_autoencoder.ipynb
    python3 tools/notebooks.py check          # what the tests check, without running anything
    python3 tools/notebooks.py readme         # README's lesson table, from the notebooks and tools/lessons.py
    python3 tools/notebooks.py set-repo OWNER/NAME   # the GitHub repository the Colab links name

Run it from a checkout (it is not part of the installed package). ``run`` trains every model afresh
(checkpoints go to a temporary folder), so the stored outputs show real training logs;
``--use-checkpoints`` loads the classroom cache of ``data/checkpoints/`` instead.

``run`` executes each notebook top to bottom in a fresh ``python3`` kernel, in
full mode (``AUTOENC_SMOKE=0``), and records in the notebook's metadata a digest
of its code cells. ``check`` (and the test suite) then flags a notebook whose
code changed after its outputs were made, a stored error, a smoke-mode run,
execution counts that are not 1..n, and paths of the machine that ran it;
and, for Colab, a badge link or install line not built from :data:`REPOSITORY`.

``set-repo`` rewrites, in one go, :data:`REPOSITORY` (in this file), every
notebook's "Open in Colab" badge and Colab install line, and README.md.
Outputs stay valid: the digest does not depend on that repository (see
:func:`code_digest`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:          # run as a script from a checkout: the package and tools/ import from it
    sys.path.insert(0, str(ROOT))

from autoenc_helpers.checks import FAIL  # noqa: E402  (what every exercise check prints when a hidden test fails)

__all__ = ["REPOSITORY", "BRANCH", "NOTEBOOK_DIR",
           "code_digest", "problems", "execute", "STUDY_TIME", "computing_time", "write_computing_time",
           "colab_url", "install_line", "colab_problems", "set_repository", "main"]

REPOSITORY = "autoencoder-course/autoencoders"
"""GitHub ``owner/name`` of the course. Change it everywhere with ``python3 tools/notebooks.py set-repo OWNER/NAME``."""

BRANCH = "main"
"""The branch the Colab badges open."""

NOTEBOOK_DIR = ROOT / "notebooks"
META_KEY = "autoenc"

# GitHub's rule for owner names (letters, digits, inner hyphens, at most 39) and a repository name.
_REPOSITORY_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}/[A-Za-z0-9._-]{1,100}$")
# The repository in a pip-installable git URL, and in a Colab link to a notebook on GitHub.
_GIT_URL = re.compile(r"git\+https://github\.com/([^\s\"'@]+?)\.git\b")
_COLAB_URL = re.compile(r"https://colab\.research\.google\.com/github/([^/\s]+/[^/\s]+)/[^\s)\"'>\]]*")
# What the Colab install line's repository is hashed as (the placeholder the first digests were made with).
_DIGEST_REPOSITORY = "autoencoder-course/autoencoders"


def _install_repository_normalised(source: str) -> str:
    """``source`` with the repository of every ``%pip install ... git+https://github.com/...`` line made fixed."""
    lines = source.split("\n")
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("%pip install", "!pip install")):
            lines[i] = _GIT_URL.sub(f"git+https://github.com/{_DIGEST_REPOSITORY}.git", line)
    return "\n".join(lines)


def code_digest(nb) -> str:
    """SHA-256 of the notebook's code cells, in order (outputs and markdown excluded).

    One thing is left out: the repository named in the setup cell's Colab install line
    (``%pip install ... git+https://github.com/OWNER/NAME.git``) is hashed as a fixed string,
    ``autoencoder-course/autoencoders``, whatever it is. That line runs only on Colab, never
    where the stored outputs are made, so it cannot change them; and ``set-repo`` can then
    rewrite it in every notebook without making every notebook's outputs look stale. Any
    other change to that line (the package, the flags, the URL scheme) still changes the digest.
    """
    h = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            h.update(_install_repository_normalised(cell.source.strip()).encode())
            h.update(b"\n\x00cell\x00\n")
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Colab: the badge and the install line, built from REPOSITORY


def colab_url(notebook: str, repository: str = REPOSITORY, branch: str = BRANCH) -> str:
    """The "Open in Colab" link of ``notebooks/<notebook>`` in the course's repository."""
    return f"https://colab.research.google.com/github/{repository}/blob/{branch}/notebooks/{notebook}"


def install_line(repository: str = REPOSITORY) -> str:
    """The setup cell's line that installs the course package on Colab (and only there)."""
    return f'%pip install -q "autoenc-helpers @ git+https://github.com/{repository}.git"'


def colab_problems(path: str | os.PathLike, repository: str = REPOSITORY) -> list[str]:
    """What keeps a notebook from opening and installing on Colab from ``repository``; empty when fine.

    The first cell links the notebook's Colab URL exactly once; the first code cell holds the install
    line exactly once; and no cell names the course's Colab or git URL with another repository.
    """
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    found = []
    first = nb.cells[0] if nb.cells else None
    links = [m.group(0) for m in _COLAB_URL.finditer(first.source)] if first is not None else []
    if first is None or first.cell_type != "markdown" or links != [colab_url(path.name, repository)]:
        found.append(f"the first cell's Colab badge links {links or 'nothing'}, "
                     f"not [{colab_url(path.name, repository)!r}]")
    code = [c for c in nb.cells if c.cell_type == "code"]
    installs = [ln.strip() for ln in code[0].source.splitlines() if "pip install" in ln] if code else []
    if installs != [install_line(repository)]:
        found.append(f"the setup cell installs with {installs or 'no line'}, not [{install_line(repository)!r}]")
    for i, cell in enumerate(nb.cells):
        named = {m.group(1) for m in _COLAB_URL.finditer(cell.source)} | set(_GIT_URL.findall(cell.source))
        for other in sorted(named - {repository}):
            found.append(f"cell {i} names the repository {other!r}, not {repository!r}")
    return found


def set_repository(repository: str, root: str | os.PathLike = ROOT) -> list[Path]:
    """Name ``repository`` (``OWNER/NAME`` on GitHub) everywhere the course names its repository.

    Rewrites :data:`REPOSITORY` in ``tools/notebooks.py`` (this file), the Colab links and git URLs of the
    previous repository in every cell of ``notebooks/*.ipynb`` (the badge and the install line), and
    the same URLs and ``github.com/OWNER/NAME`` links in README.md. Outputs and digests are left as
    they are (the digest does not depend on the repository). Returns the files it changed.
    """
    import nbformat

    if not _REPOSITORY_NAME.match(repository):
        raise ValueError(f"{repository!r} is not a GitHub repository name; expected OWNER/NAME, "
                         "e.g. set-repo my-university/autoencoders")
    root = Path(root)
    this_file = root / "tools" / "notebooks.py"
    text = this_file.read_text(encoding="utf-8")
    current = re.search(r'^REPOSITORY = "([^"]+)"', text, re.M)
    if current is None:
        raise ValueError(f"no line `REPOSITORY = \"OWNER/NAME\"` in {this_file}")
    old = current.group(1)
    if old == repository:
        return []
    colab = re.compile(r"(colab\.research\.google\.com/github/)" + re.escape(old) + r"(?=/)")
    github = re.compile(r"(github\.com/)" + re.escape(old) + r"(?=\.git\b|[/\s)\"'#>\]]|$)", re.M)

    def swap(source: str) -> str:
        return github.sub(rf"\g<1>{repository}", colab.sub(rf"\g<1>{repository}", source))

    changed = []
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        sources = [cell.source for cell in nb.cells]
        for cell in nb.cells:
            cell.source = swap(cell.source)
        if [cell.source for cell in nb.cells] != sources:
            nbformat.write(nb, path)
            changed.append(path)
    readme = root / "README.md"
    if readme.is_file():
        before = readme.read_text(encoding="utf-8")
        if swap(before) != before:
            readme.write_text(swap(before), encoding="utf-8")
            changed.append(readme)
    this_file.write_text(text[:current.start(1)] + repository + text[current.end(1):], encoding="utf-8")
    changed.append(this_file)
    return changed


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
        found.append("no record of an execution: run `python3 tools/notebooks.py run notebooks/" + path.name + "`")
    elif meta["code_digest"] != code_digest(nb):
        found.append("code cells changed after the outputs were made: re-run it with "
                     "`python3 tools/notebooks.py run notebooks/" + path.name + "`")
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
        shown = "\n".join(_output_text(out) for out in cell.get("outputs", []))
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"cell {i} stores an error: {out.get('ename')}: {str(out.get('evalue'))[:100]}")
            elif out.get("name") == "stderr" and "Traceback (most recent call last)" in out.get("text", ""):
                found.append(f"cell {i} printed a traceback to stderr")
        foreign = _FOREIGN_PATH.search(shown)
        if foreign:
            found.append(f"cell {i} shows a path of some machine ({foreign.group(0)}...): outputs must not depend on "
                         "where the lesson ran")
        if "solution" in cell.get("metadata", {}).get("tags", []) and (FAIL in shown or "not written yet" in shown):
            found.append(f"cell {i} is a worked solution whose check did not pass in the stored run")
    return found


# A path that belongs to one machine: a home folder, a temporary folder, Colab's working folder, a Windows profile.
_FOREIGN_PATH = re.compile(r"(?:/home/|/Users/|C:\\+Users\\+)[^/\\\s'\"]+|/root/|/tmp/|/var/folders/|/private/var/|"
                           r"/content/|/work/")


def _output_text(out) -> str:
    """Everything an output shows as text: a stream, a result's plain text or HTML, an error's traceback."""
    if out.get("output_type") == "stream":
        return out.get("text", "")
    if out.get("output_type") == "error":
        return "\n".join(out.get("traceback", []))
    data = out.get("data", {})
    return "\n".join(str(data.get(kind, "")) for kind in ("text/plain", "text/html", "text/markdown"))


# The lesson header's study-time line. The author writes the study time (a judgement); the run writes
# the computing time it measured, so no wall time in a lesson is ever written by hand.
STUDY_TIME = re.compile(r"^\*\*Study time:\*\* about (?P<minutes>\d+) minutes\."
                        r"(?P<computing> \*\*Computing time:\*\*[^\n]*)?$",
                        re.M)


def computing_time(seconds: float, threads: int) -> str:
    """The sentence the run writes after the study time: its own wall time, rounded, and the cores it had."""
    minutes = round(seconds / 60)
    took = "under a minute" if minutes < 1 else f"about {minutes} minute{'s' * (minutes != 1)}"
    return (f"**Computing time:** {took} to run top to bottom on {threads} CPU core{'s' * (threads != 1)}, "
            "measured by the run that made these outputs.")


def run_threads() -> int:
    """How many cores a notebook kernel started from here computes on (``OMP_NUM_THREADS``, else all)."""
    raw = os.environ.get("OMP_NUM_THREADS", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else (os.cpu_count() or 1)


def write_computing_time(nb, seconds: float, threads: int) -> bool:
    """Put the measured computing time into the first cell's study-time line; False when it has none."""
    first = nb.cells[0] if nb.cells else None
    if first is None or first.cell_type != "markdown" or not STUDY_TIME.search(first.source):
        return False
    first.source = STUDY_TIME.sub(lambda m: f"**Study time:** about {m['minutes']} minutes. "
                                            f"{computing_time(seconds, threads)}", first.source, count=1)
    return True


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
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    with tempfile.TemporaryDirectory(prefix="autoenc-run-") as scratch:
        # the kernel's own environment: this process's variables are left as they are
        env = {**os.environ, "AUTOENC_SMOKE": "1" if smoke else "0", "AUTOENC_DEVICE": device,
               "AUTOENC_CLAIMS": "raise"}                      # a false claim fails the run
        if not use_checkpoints:
            env["AUTOENC_CHECKPOINTS"] = str(Path(scratch) / "checkpoints")
        start = time.perf_counter()
        client.execute(env=env)
        seconds = time.perf_counter() - start
    threads = run_threads()
    nb.metadata[META_KEY] = {"code_digest": code_digest(nb), "mode": "smoke" if smoke else "full",
                             "device": device, "seconds": round(seconds, 1), "threads": threads}
    if not smoke:
        write_computing_time(nb, seconds, threads)
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 tools/notebooks.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("run", "check", "readme", "set-repo"))
    parser.add_argument("paths", nargs="*", help="notebooks (default: every notebooks/*.ipynb); "
                                                 "for set-repo, the GitHub repository as OWNER/NAME")
    parser.add_argument("--smoke", action="store_true", help="execute in smoke mode (outputs then fail `check`)")
    parser.add_argument("--device", default="cpu", help="AUTOENC_DEVICE for the run (default: cpu)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds one cell may run (default: 1800)")
    parser.add_argument("--use-checkpoints", action="store_true",
                        help="load models saved in data/checkpoints/ instead of training them afresh")
    args = parser.parse_args(argv)
    if args.action == "set-repo":
        if len(args.paths) != 1:
            parser.error("set-repo takes one argument: the GitHub repository as OWNER/NAME")
        try:
            changed = set_repository(args.paths[0])
        except ValueError as err:
            parser.error(str(err))
        for path in changed:
            print(f"rewrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        print(f"the course now names {args.paths[0]}" + ("" if changed else " already: nothing to change"))
        return 0
    if args.action == "readme":
        from tools.lessons import write_readme

        if args.paths:
            parser.error("readme takes no arguments: it writes the table of every notebook")
        try:
            changed = write_readme()
        except ValueError as err:
            parser.error(str(err))
        print("README.md: lesson table " + ("rewritten" if changed else "already up to date"))
        return 0
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
            try:
                found = problems(path) + colab_problems(path)
            except Exception as err:          # not JSON, not a notebook, missing keys: one line, then the rest
                message = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
                found = [f"cannot be read as a notebook ({type(err).__name__}{': ' + message if message else ''})"]
            bad += bool(found)
            print(f"{path.name}: " + ("ok" if not found else "\n  - " + "\n  - ".join(found)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
