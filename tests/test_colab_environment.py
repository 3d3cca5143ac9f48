"""Colab as it really is: installing the course keeps Colab's ipywidgets 7.7.1, and the widgets work with it.

Google Colab ships ipywidgets 7.7.1 (widgetsnbextension 3.6.x); its frontend does not show widgets of
ipywidgets 8 (googlecolab/colabtools #3020 and #4525). So the setup cell's install must plan no change to
the packages Colab already has, and the course's widgets and progress bars must work under 7.7.1.

Colab's widget stack is laid over this environment with ``pip install --target`` and ``PYTHONPATH``
(no second torch is downloaded). Fetching those few wheels needs the package index: without it the tests
are skipped here, but fail in CI.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
COLAB_WIDGETS = ["ipywidgets==7.7.1", "widgetsnbextension==3.6.10", "ipython_genutils==0.2.0"]
# The headless widget tests: every widget class is built and driven in these files; of the last two, only the
# tests of their lesson's widget are run (selected by name).
WIDGET_TESTS = ["tests/test_widgets.py", "tests/test_widgets_display.py", "tests/test_models_conditional.py",
                "tests/test_noise.py"]
WIDGET_KEYWORDS = "test_widgets or explorer or slider or picking or panels or conditional_image"


def _pip(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.fixture(scope="module")
def colab_env(tmp_path_factory):
    """Environment variables under which Python sees Colab's ipywidgets 7.7.1 first."""
    overlay = tmp_path_factory.mktemp("colab-widgets")
    done = _pip("install", "--quiet", "--no-deps", "--target", str(overlay), *COLAB_WIDGETS)
    if done.returncode != 0:
        message = (f"could not fetch Colab's widget packages {COLAB_WIDGETS} from the package index:\n"
                   f"{done.stderr[-1500:]}")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(overlay), str(ROOT)])}
    seen = subprocess.run([sys.executable, "-c", "import ipywidgets; print(ipywidgets.__version__)"],
                          capture_output=True, text=True, env=env)
    assert seen.stdout.strip() == "7.7.1", f"the overlay must put ipywidgets 7.7.1 first, got {seen.stdout!r}"
    return env


def _installed(env) -> dict[str, str]:
    """The distributions this Python sees (the overlay first), by normalised name."""
    listed = subprocess.run([sys.executable, "-c", "import importlib.metadata as m, json; print(json.dumps("
                             "{d.metadata['Name'].lower().replace('_', '-'): d.version for d in m.distributions()}))"],
                            capture_output=True, text=True, env=env, check=True)
    return json.loads(listed.stdout)


def test_installing_the_course_changes_none_of_the_packages_colab_has(colab_env, tmp_path):
    report = tmp_path / "report.json"
    # What the Colab setup cell does (`%pip install "autoenc-helpers @ git+https://..."`), from this checkout.
    done = _pip("install", "--dry-run", "--quiet", "--no-build-isolation", "--report", str(report),
                f"autoenc-helpers @ {ROOT.as_uri()}", env=colab_env)
    assert done.returncode == 0, done.stderr[-2000:]
    planned = {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
               for item in json.loads(report.read_text())["install"]}
    assert "ipywidgets" not in planned and "widgetsnbextension" not in planned, planned
    have = _installed(colab_env)
    replaced = {name: f"{have[name]} -> {version}" for name, version in planned.items()
                if name in have and name != "autoenc-helpers"}
    assert not replaced, f"the install would upgrade or downgrade packages the environment has: {replaced}"


def test_the_headless_widget_tests_pass_under_ipywidgets_7(colab_env):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", WIDGET_KEYWORDS,
                           *WIDGET_TESTS], capture_output=True, text=True, env=colab_env, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    selected = re.search(r"(\d+) passed", done.stdout)
    assert selected and int(selected.group(1)) >= 40, f"the keywords selected too few tests: {done.stdout[-300:]}"
    sources = "".join((ROOT / f).read_text() for f in WIDGET_TESTS)
    from autoenc_helpers import widgets
    for name in (n for n in widgets.__all__ if n.endswith("Explorer") and n != "Explorer"):
        assert f"{name}(" in sources, f"no headless test file in WIDGET_TESTS builds {name}"


def test_progress_bars_and_widgets_show_in_a_kernel_with_ipywidgets_7(colab_env):
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import ipywidgets, torch\n"
        "import autoenc_helpers as ah\n"
        "print('ipywidgets', ipywidgets.__version__)\n"
        "images = torch.rand(64, 1, 28, 28)\n"
        "model = ah.MLPAutoencoder(latent_dim=2, hidden=(16,))\n"
        "history = ah.fit(model, images, epochs=1, batch_size=32, progress=True, log=False)\n"
        "explorer = ah.widgets.LatentExplorer(model.decode, ah.encode(model, images), images=images)\n"
        "explorer")]
    NotebookClient(nb, kernel_name="python3", timeout=120).execute(env={**colab_env, "AUTOENC_DEVICE": "cpu"})
    outputs = nb.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr" and "Traceback" in o.get("text", "")]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "ipywidgets 7.7.1" in text
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) >= 2, "the progress bar (tqdm.auto) and the explorer both display as widgets"
