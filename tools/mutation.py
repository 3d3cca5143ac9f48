"""Mutation testing of the package's core modules with mutmut (a development tool, not a CI step).

    python3 tools/mutation.py                    # every core module, up to 300 mutants of each (meant: < 1 h)
    python3 tools/mutation.py --all              # every mutant of every module (the census; hours)
    python3 tools/mutation.py losses noise       # only these
    python3 tools/mutation.py --jobs 1 models    # one module at a time
    python3 tools/mutation.py --survivors checks # after new tests: only what the last run left alive
    python3 tools/mutation.py --changed checks   # after a code change: only the changed functions' mutants
    python3 tools/mutation.py --list             # the modules and the test files that cover each

For each module it builds a scratch copy of the package and the tests in ``.mutmut/<module>/``
(git-ignored; the checkout itself, notebooks included, is never written to), writes mutmut's
settings for that module into the copy's ``pyproject.toml`` (mutate only ``autoenc_helpers/<module>.py``;
run only the test files listed in ``MODULES``), and runs ``mutmut run`` there with one worker, in
smoke mode, on the CPU, with one thread. ``--jobs`` modules run at once (default 2, one per core of
the course's development machine), the modules with the most mutants first. mutmut then runs, for
each mutant, only the tests that reached the mutated function in its first clean run.

By default a module with more than ``--sample`` mutants (300) is measured on that many of them, drawn
at random (the same draw while the module's code is the same): the nine modules have about 12,700
mutants, and a census of all of them takes hours on the course's 2-core machine (checks alone ran for
139 minutes), while 300 per module are meant to finish in under an hour (tests/MUTATION.md gives the
estimate and what has been timed) and give each score to within about 2.5 points (the line prints its
95% interval). ``--all`` runs the census; the survivors it leaves are the ones tests/MUTATION.md
explains one by one, and a survivor of a sampled run that is not on those lists is new.

At the end it prints one line per module: killed, survived, timeouts, mutants no test reached,
and the mutation score, ``killed / (killed + survived + no tests)`` in percent (a timeout counts
as killed: the mutant changed what the tests saw). The survivors' names are written to
``.mutmut/<module>/survivors.txt``; ``cd .mutmut/<module> && mutmut show NAME`` shows a mutant's diff.
The results of a run are recorded in tests/MUTATION.md by hand, with the date. To end a long run
early without losing the module under way, create the file ``.mutmut/stop``: no further module starts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutmut"

# Each core module and the test files that exercise it. Only these run for the module's mutants
# (and of these, only the tests that call the mutated function). Lesson, notebook, browser, GPU and
# distributed tests are left out: they execute notebooks or need hardware, and the unit tests here
# reach the same code.
MODULES: dict[str, list[str]] = {
    "losses": ["tests/test_losses.py", "tests/test_models_losses.py", "tests/test_noise.py",
               "tests/test_models_vae.py", "tests/test_models_sparse.py", "tests/test_losses_log_likelihood_iw.py",
               "tests/test_losses_kl_warmup.py",
               "tests/test_models_conditional.py", "tests/test_models_conv_vae.py", "tests/test_models_completion.py"],
    "noise": ["tests/test_noise.py", "tests/test_models_losses.py"],
    "checks": ["tests/test_checks.py", "tests/test_checks_lesson01.py", "tests/test_checks_lesson03.py",
               "tests/test_checks_lesson04.py", "tests/test_checks_lesson07.py", "tests/test_checks_lesson08.py",
               "tests/test_models_completion.py", "tests/test_noise.py", "tests/test_applications.py",
               "tests/test_vq.py", "tests/test_distributed.py", "tests/test_checks_transcript.py"],
    "cache": ["tests/test_cache.py"],
    "training": ["tests/test_training.py", "tests/test_models_losses.py"],
    "models": ["tests/test_models_losses.py", "tests/test_models_vae.py", "tests/test_models_conv_vae.py",
               "tests/test_models_conditional.py", "tests/test_models_sparse.py", "tests/test_models_completion.py"],
    "applications": ["tests/test_applications.py"],
    "data": ["tests/test_data.py"],
    # Not the widget tests of test_vq.py and test_models_conditional.py: they train a model in a module fixture,
    # seconds that mutmut does not count in a test's time, so a surviving mutant ran past its CPU limit and was
    # counted as a timeout (killed). test_widgets*.py test the same widgets with untrained stand-in models.
    "widgets": ["tests/test_widgets.py", "tests/test_widgets_display.py", "tests/test_widgets_latent.py",
                "tests/test_widgets_parts.py", "tests/test_widgets_code_grid.py", "tests/test_widgets_conditional.py",
                "tests/test_widgets_noise.py", "tests/test_widgets_loss_factor.py", "tests/test_noise.py",
                "tests/test_vq.py::test_picking_another_image_changes_the_picture_even_when_two_grids_are_the_same",
                "tests/test_colab.py::test_the_course_widgets_are_core_ipywidgets_models"],   # its widget test only
}

# About how many mutants each module has (mutmut 3.8.1, 2026-11-30): the order in which modules start.
SIZE = {"checks": 5941, "widgets": 1937, "models": 1440, "losses": 782, "cache": 665, "noise": 568,
        "training": 462}


# Appended to the scratch copy's conftest.py.
# - Under mutmut every call of the package goes through a trampoline, and several runs may share the machine, so
#   the exercise checks' time limit per hidden test (5 s, for a learner's loop that never ends) gets room; the
#   test of the limit itself sets its own.
# - tqdm's bars share one lock, by default a multiprocessing lock: a semaphore in memory that every process forked
#   from mutmut's runner shares. A mutant stopped for its time while a bar held that lock (a bar takes it to
#   redraw) left it taken for good, and from then on every later mutant's fit() waited for it until its own time
#   ran out: counted as a timeout, that is as killed, survivors included (seen on 2026-11-30: 28 of training's
#   mutants in a row). A thread lock lives in each process's own memory, so a stopped mutant takes it along;
#   without tqdm's monitor thread, no thread of the runner can hold it at the moment of a fork.
CONFTEST_EXTRA = """

import threading as _threading  # noqa: E402  (added by tools/mutation.py)

import autoenc_helpers.checks as _checks  # noqa: E402
from tqdm import tqdm as _tqdm  # noqa: E402

_checks.TIME_LIMIT_S = 60
_tqdm.monitor_interval = 0
_tqdm.set_lock(_threading.RLock())
"""


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def workspace(module: str, sampled: bool = False) -> Path:
    """Where a module's run lives: ``.mutmut/<module>/`` for a census, ``.mutmut/sample/<module>/`` for a sample,
    so that a sampled run never overwrites the census that ``--survivors`` builds on."""
    return WORK / "sample" / module if sampled else WORK / module


def prepare(module: str, keep_results: bool = False, sampled: bool = False) -> Path:
    """A fresh copy of the package and the tests, with mutmut's settings for ``module``.

    keep_results: keep mutmut's results (``mutants/``) from the module's last run and refresh only the
    copied sources, for ``--survivors``.
    """
    work = workspace(module, sampled)
    if work.exists() and not keep_results:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    # tools, benchmarks: imported by tests; notebooks: read by test_colab (the copy's, never the checkout's)
    for folder in ("autoenc_helpers", "tests", "tools", "benchmarks", "notebooks"):
        if (work / folder).exists():
            shutil.rmtree(work / folder)
        shutil.copytree(ROOT / folder, work / folder, ignore=ignore)
    shutil.copy2(ROOT / "conftest.py", work / "conftest.py")
    with open(work / "conftest.py", "a") as conftest:
        conftest.write(CONFTEST_EXTRA)
    settings = "\n".join([
        "",
        "[tool.mutmut]",
        'source_paths = ["autoenc_helpers"]',
        f'only_mutate = ["autoenc_helpers/{module}.py"]',
        'also_copy = ["conftest.py", "tools", "benchmarks", "notebooks"]',
        f"pytest_add_cli_args_test_selection = {_toml_list(MODULES[module])}",
        # A mutant whose tests use more than 10x their clean run's CPU time (plus 1 s) is stopped as a timeout
        # (killed). mutmut's default, 30x, spent over three minutes on each of training's slow kills.
        "timeout_multiplier = 5.0",
        "",
    ])
    (work / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + settings)
    return work


def environment() -> dict[str, str]:
    env = dict(os.environ)
    # The copy's package must be the one imported: never the checkout's through PYTHONPATH.
    env.pop("PYTHONPATH", None)
    env.update(AUTOENC_SMOKE="1", AUTOENC_DEVICE="cpu", MPLBACKEND="Agg",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return env


def _mutmut(work: Path, args: list[str], log) -> int:
    return subprocess.call([sys.executable, "-m", "mutmut", *args], cwd=work, env=environment(),
                           stdout=log, stderr=subprocess.STDOUT)


def _listing(work: Path) -> dict[str, str]:
    """mutmut's verdict for each mutant that has one: {name: "killed" | "survived" | "no tests" | ...}."""
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=work,
                         env=environment(), capture_output=True, text=True).stdout
    return dict(line.strip().rsplit(": ", 1) for line in out.splitlines() if ": " in line)


UNKILLED = ("survived", "no tests")
SAMPLE = 300                  # mutants per module in the default run: see the module's docstring
# mutmut has no command that only generates the mutants and records which tests reach which function: a run
# asked for a mutant that does not exist does both, then stops ("nothing matches") before testing any mutant
NO_SUCH_MUTANT = "autoenc_helpers.no_such_function__mutmut_0"


def draw(names: list[str], size: int, module: str) -> list[str]:
    """``size`` of ``names`` at random, the same ones for the same names and module; all of them if fewer."""
    if len(names) <= size:
        return sorted(names)
    return sorted(random.Random(f"tools/mutation.py {module}").sample(sorted(names), size))


def count(verdicts: dict[str, str], names: list[str]) -> dict:
    """mutmut's verdicts of ``names`` counted as its export-cicd-stats counts them."""
    keys = {"killed": "killed", "timeout": "timeout", "survived": "survived", "no tests": "no_tests",
            "suspicious": "suspicious", "skipped": "skipped", "not checked": "not_checked", "segfault": "segfault",
            "caught by type check": "caught_by_type_check"}
    stats = {key: 0 for key in keys.values()}
    for name in names:
        verdict = verdicts.get(name, "not checked")
        stats[keys.get(verdict, "suspicious")] += 1
    stats["total"] = len(names)
    return stats


def interval(killed: int, counted: int) -> tuple[float, float]:
    """The 95% Wilson interval of a share killed / counted, in percent."""
    if counted == 0:
        return (0.0, 100.0)
    z, p = 1.96, killed / counted
    centre = (p + z * z / (2 * counted)) / (1 + z * z / counted)
    half = z * math.sqrt(p * (1 - p) / counted + z * z / (4 * counted * counted)) / (1 + z * z / counted)
    return (100 * max(0.0, centre - half), 100 * min(1.0, centre + half))


def run(module: str, survivors: bool = False, sample: int | None = None, changed: bool = False) -> dict:
    """Run mutmut on ``module``; with ``survivors``, only what the module's last run left alive.

    A survivors run keeps the last run's verdicts, copies the current package and tests, collects afresh
    which tests reach which function, and runs again (1) every mutant of a function whose code changed
    (mutmut resets those) and (2) every mutant that survived or had no tests. A killed mutant of an
    unchanged function stays killed: the tests it failed are still there.

    sample: run only this many of the module's mutants, drawn at random (all of them if it has no more);
    None runs every mutant.

    changed: like ``survivors`` but without running the earlier survivors again: only the mutants of the
    functions whose code changed since the last census (for a change of code whose tests changed with it).
    """
    if survivors or changed:
        before = WORK / module / "survivors.txt"
        if not before.exists():
            raise SystemExit(f"{module}: no earlier census in {before.parent.relative_to(ROOT)}: --survivors builds on "
                             f"a run of every mutant; run `python3 tools/mutation.py --all {module}` first")
        alive = [line.strip().rsplit(": ", 1)[0] for line in before.read_text().splitlines()
                 if line.strip().endswith(UNKILLED)]
    work = prepare(module, keep_results=survivors or changed, sampled=sample is not None)
    start = time.monotonic()
    log_path = work / "mutmut.log"
    with open(log_path, "a" if survivors or changed else "w") as log:
        if survivors or changed:
            (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)   # which tests reach what: afresh
            code = _mutmut(work, ["run", "--max-children", "1"], log)          # the changed functions' mutants
            verdicts = _listing(work)
            again = [name for name in alive if verdicts.get(name) in UNKILLED]
            if code == 0 and again and survivors:
                code = _mutmut(work, ["run", "--max-children", "1", *again], log)
        elif sample is not None:
            _mutmut(work, ["run", "--max-children", "1", NO_SUCH_MUTANT], log)          # generate, map the tests
            everything = list(_listing(work))
            chosen = draw(everything, sample, module)
            code = _mutmut(work, ["run", "--max-children", "1", *chosen], log) if chosen else 1
        else:
            code = _mutmut(work, ["run", "--max-children", "1"], log)
    minutes = (time.monotonic() - start) / 60
    if code != 0:
        print(f"{module}: mutmut exited with {code}; see {log_path.relative_to(ROOT)}", file=sys.stderr)
    verdicts = _listing(work)
    names = chosen if sample is not None else list(verdicts)
    stats = count(verdicts, names)
    if sample is not None:
        stats["sampled_from"] = len(verdicts)
    (work / "survivors.txt").write_text("".join(f"    {name}: {verdicts.get(name, 'not checked')}\n"
                                                for name in names if verdicts.get(name) != "killed"))
    stats["minutes"] = round(minutes, 1)
    stats["exit_code"] = code
    return stats


def _counted(stats: dict) -> int:
    return sum(stats.get(key, 0) for key in ("killed", "timeout", "survived", "no_tests"))


def score(stats: dict) -> float | None:
    killed = stats.get("killed", 0) + stats.get("timeout", 0)
    counted = _counted(stats)
    return 100 * killed / counted if counted else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"modules to mutate (default: all of {', '.join(MODULES)})")
    parser.add_argument("--list", action="store_true", help="print the modules and their test files")
    parser.add_argument("--survivors", action="store_true",
                        help="run again only what each module's last run left alive (and the mutants of changed code)")
    parser.add_argument("--changed", action="store_true",
                        help="run again only the mutants of functions whose code changed since the last census")
    parser.add_argument("--jobs", type=int, default=2, metavar="N",
                        help="modules to run at once, each on one core (default 2)")
    parser.add_argument("--sample", type=int, default=SAMPLE, metavar="N",
                        help=f"mutants per module, drawn at random (default {SAMPLE}); a module with fewer runs all")
    parser.add_argument("--all", action="store_true", help="every mutant of each module (the census; hours)")
    args = parser.parse_args(argv)
    if args.list:
        for module, tests in MODULES.items():
            print(f"{module}: {' '.join(tests)}")
        return 0
    if args.jobs < 1:
        parser.error(f"--jobs must be a positive int, got {args.jobs}")
    if args.sample < 1:
        parser.error(f"--sample must be a positive int, got {args.sample}")
    if args.survivors and args.changed:
        parser.error("--survivors already runs the changed functions' mutants: give one of --survivors, --changed")
    sample = None if args.all or args.survivors or args.changed else args.sample
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; expected some of {list(MODULES)}")
    if subprocess.call([sys.executable, "-c", "import mutmut"], stderr=subprocess.DEVNULL) != 0:
        print("mutmut is not installed for this Python: pip install -e '.[dev]' (or pip install 'mutmut>=3.8,<4')",
              file=sys.stderr)
        return 2
    (WORK / "stop").unlink(missing_ok=True)
    modules = args.modules or list(MODULES)
    modules.sort(key=lambda m: -SIZE.get(m, 0))      # the longest first, so two jobs end close together
    lock = threading.Lock()

    def one(module: str) -> bool:
        """Run one module, print and record its line; True when it failed."""
        if (WORK / "stop").exists():                 # touch .mutmut/stop: no module starts after that
            print(f"{module}: not run (.mutmut/stop exists)", flush=True)
            return False
        stats = run(module, survivors=args.survivors, sample=sample, changed=args.changed)
        s = score(stats)
        line = (f"{module}: killed {stats.get('killed')}, timeout {stats.get('timeout')}, "
                f"survived {stats.get('survived')}, no tests {stats.get('no_tests')}, "
                f"suspicious {stats.get('suspicious')}, total {stats.get('total')}")
        if s is None:
            line += ", score n/a"
        elif stats.get("sampled_from", 0) > stats["total"]:
            low, high = interval(stats["killed"] + stats["timeout"], _counted(stats))
            line += (f" drawn from {stats['sampled_from']}, score {s:.1f}% (95% interval {low:.1f}% to "
                     f"{high:.1f}%)")
        else:
            line += f", score {s:.1f}%"
        line += f", {stats['minutes']} min"
        with lock:
            print(line, flush=True)
            with open(WORK / "summary.txt", "a") as f:
                f.write(time.strftime("%Y-%m-%d %H:%M UTC ", time.gmtime()) + line + "\n")
        return stats["exit_code"] != 0 or s is None

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        failed = any(list(pool.map(one, modules)))
    print(f"{len(modules)} module(s), {args.jobs} at a time: {(time.monotonic() - start) / 60:.1f} min", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
