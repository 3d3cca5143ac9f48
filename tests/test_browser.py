"""Every widget of the course, used like a learner uses it: JupyterLab in headless Chromium.

The headless widget tests (test_widgets.py) prove that the callbacks work. This test proves what a learner
sees: JupyterLab opens the lesson, runs it, draws the widget, and a real mouse drag on a slider handle (or a
new choice in a drop-down, or a click on a button) makes the picture change.

For every notebook whose code builds a widget (``ah.widgets.SomethingExplorer(...)`` or ipywidgets directly;
found automatically, so new lessons are included when they land):

1. open a copy of it (outputs and saved widget state stripped) in JupyterLab, served on 127.0.0.1 with no
   token, in smoke mode on the CPU;
2. run all cells and wait until every code cell has run and the kernel is idle;
3. in every output that holds interactive controls: drag each slider's handle with the mouse, click each
   button, pick another option in each drop-down (in a widget with buttons, a drop-down only chooses and a
   button applies the choice, so the buttons are clicked after it), and after each action wait until the
   image in the widget's Output differs from the one before (a drop-down is a native <select>, whose popup
   a headless browser does not draw: Playwright's select_option fires the input and change events that a
   learner's choice fires);
4. check that the kernel sent no error (from a cell or from a widget callback), did not die, and that no
   output on the page shows a traceback.

The test of the test runs small notebooks whose widget does not redraw, whose callback raises, whose cell
raises or kills the kernel, and checks that each one fails.

Only loopback traffic: the browser aborts every request that is not for the test's own server. Every wait
is on a condition with a time limit. The server (and its kernels) are stopped at the end, also on failure.
On failure a screenshot, the server log and the browser console land in ``browser-failures/`` (ignored by
git) and the test prints where.

Needs Chromium (Debian's ``chromium`` package; ``AUTOENC_CHROMIUM`` names another binary) and the Python
package ``playwright``; Playwright's own browser download is never used. Without them the test is skipped,
except under CI (``CI`` set), where a missing browser is a failure.

    python3 -m pytest tests/test_browser.py -v
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
FAILURES = ROOT / "browser-failures"

# --disable-dev-shm-usage: Docker's default 64 MB /dev/shm is too small for Chromium's shared memory;
# --host-resolver-rules: no name resolves except the loopback address (the page's requests are also routed).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]

# time limits, in seconds (smoke mode on a 2-core CPU needs a fraction of each)
SERVER_START_S = 90
OPEN_S = 120          # JupyterLab loaded, the notebook open, its kernel idle
RUN_ALL_S = 420       # every cell of one lesson run
REDRAW_S = 60         # one widget redraw after one action
STOP_S = 20           # the server's own shutdown, before it is killed

# A notebook has widgets when its code builds one of the course's widgets or uses ipywidgets directly.
WIDGET_CODE = re.compile(r"\bah\.widgets\.[A-Z]\w*\s*\(|\bimport ipywidgets\b|\bfrom ipywidgets\b|\binteract\(")

# The controls this test knows how to operate, and the ones it does not know yet (a lesson that adds one
# fails here with a message, rather than being tested less than it looks).
SLIDER, DROPDOWN, BUTTON = ".widget-slider", ".widget-dropdown select", "button.widget-button"
UNSUPPORTED = (".widget-vslider", ".widget-checkbox", ".widget-toggle-button", ".widget-toggle-buttons",
               ".widget-radio", ".widget-select", ".widget-select-multiple", ".widget-text", ".widget-textarea",
               ".widget-play", ".widget-colorpicker", ".widget-datepicker", ".widget-tagsinput", ".widget-upload",
               ".widget-combobox")
# the top-level outputs of the notebook's cells (not the outputs nested inside an Output widget)
CELL_OUTPUT = ".jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output"


def widget_notebooks() -> list[Path]:
    """The lessons whose code builds a widget."""
    found = []
    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if any(c.cell_type == "code" and WIDGET_CODE.search(c.source) for c in nb.cells):
            found.append(path)
    return found


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str):
    """Outside CI a missing browser skips the test; in CI it is a failure (the test must not vanish)."""
    if _in_ci():
        pytest.fail(f"{reason}. CI must run the browser test: install Debian's `chromium` package "
                    "(.ci/run does) and `pip install -r requirements.txt`", pytrace=False)
    pytest.skip(reason)


def _chromium() -> str | None:
    names = [os.environ["AUTOENC_CHROMIUM"]] if os.environ.get("AUTOENC_CHROMIUM") else []
    names += ["chromium", "chromium-browser", "google-chrome"]
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


# ---------------------------------------------------------------------------------------------
# The JupyterLab server


def _server_config(base: Path) -> dict[str, str]:
    """Write a private Jupyter configuration under ``base``; return the environment that selects it."""
    config, runtime, data, settings = (base / d for d in ("config", "runtime", "data", "settings"))
    for folder in (config / "labconfig", runtime, data / "kernels" / "python3", base / "workspaces"):
        folder.mkdir(parents=True, exist_ok=True)
    # The kernel is this Python (the one running the tests), whatever other python3 kernels the machine has.
    kernel = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
              "display_name": "Python 3 (ipykernel)", "language": "python"}
    (data / "kernels" / "python3" / "kernel.json").write_text(json.dumps(kernel))
    # No "build recommended" dialog, no news or update notifications, no autosave, every cell in the DOM.
    (config / "labconfig" / "page_config.json").write_text(json.dumps({"buildCheck": False, "buildAvailable": False}))
    for plugin, values in {"apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
                           "docmanager-extension/plugin": {"autosave": False},
                           "notebook-extension/tracker": {"windowingMode": "none"}}.items():
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    (config / "jupyter_server_config.py").write_text(f"""
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = 0                      # a free port, chosen by the OS; read back from the runtime file
c.ServerApp.port_retries = 0
c.ServerApp.open_browser = False
c.ServerApp.allow_root = True             # CI containers run as root
c.IdentityProvider.token = ""
c.ServerApp.password = ""
c.ServerApp.root_dir = {str(base / "notebooks")!r}
c.ServerApp.terminals_enabled = False
c.ServerApp.jpserver_extensions = {{"jupyter_server_terminals": False}}
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.handlers.announcements.NeverCheckForUpdate"
c.LabApp.extension_manager = "readonly"
c.LabApp.expose_app_in_browser = True     # window.jupyterapp: run all cells, read kernel status and outputs
c.LabApp.user_settings_dir = {str(settings)!r}
c.LabApp.workspaces_dir = {str(base / "workspaces")!r}
""")
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)           # the kernel's inline backend draws the figures
    env.pop("JUPYTER_PATH", None)
    env.update(AUTOENC_SMOKE="1", AUTOENC_DEVICE="cpu", JUPYTER_CONFIG_DIR=str(config),
               JUPYTER_RUNTIME_DIR=str(runtime), JUPYTER_DATA_DIR=str(data),
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    return env


def _copy_notebooks(folder: Path) -> None:
    """The lessons without their stored outputs and widget state: the browser shows only what this run makes.

    The repository's notebooks are never opened, so nothing the browser does can write to them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for path in NOTEBOOK_DIR.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, folder / path.name)


class LabServer:
    """A JupyterLab server in its own process group, with its log in a file."""

    def __init__(self, base: Path):
        self.base = base
        self.log_path = base / "server.log"
        _copy_notebooks(base / "notebooks")
        env = _server_config(base)
        self.runtime = Path(env["JUPYTER_RUNTIME_DIR"])
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "jupyterlab"], cwd=base / "notebooks", env=env,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.url = ""

    def wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_S
        info = self.runtime / f"jpserver-{self.process.pid}.json"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.process.returncode}:\n{self.log()[-3000:]}")
            if info.is_file():
                try:
                    self.url = json.loads(info.read_text())["url"]
                    with urllib.request.urlopen(self.url + "api/status", timeout=5) as reply:
                        if reply.status == 200:
                            return
                except (ValueError, KeyError, OSError):
                    pass                       # the file is being written, or the server is not listening yet
            time.sleep(0.2)
        raise RuntimeError(f"JupyterLab did not answer within {SERVER_START_S} s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""

    def stop(self) -> None:
        """Stop the server's process group (on SIGTERM it shuts its kernels down); kill whatever is left."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=STOP_S)
                break
            except subprocess.TimeoutExpired:
                continue
        # Kernels run in process groups of their own; ours are the ones whose connection file is in our runtime dir.
        for pid in _pids_mentioning(str(self.runtime)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _pids_mentioning(text: str) -> list[int]:
    """The processes whose command line contains ``text`` (here: this test's private runtime folder)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if text in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                pids.append(int(proc.name))
        except OSError:
            pass
    return [pid for pid in pids if pid != os.getpid()]


@pytest.fixture(scope="module")
def chromium_path():
    path = _chromium()
    if path is None:
        _unavailable("no Chromium found (install Debian's `chromium` package, or set AUTOENC_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the Python package `playwright` is not installed (it is in requirements.txt)")
    return path


@pytest.fixture(scope="module")
def lab(chromium_path, tmp_path_factory):
    server = LabServer(tmp_path_factory.mktemp("jupyterlab"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


# ---------------------------------------------------------------------------------------------
# The page: JupyterLab's own state, read through window.jupyterapp

# Every wait below polls one of these functions. Each returns a string: "" while it should keep waiting,
# else the outcome ("ok", or what went wrong), so that a dialog, a dead kernel or an error stops the wait at once.
JS_HELPERS = r"""
window.__t = {
  panel: null,
  kernelErrors: [],      // every error the kernel sent: in a cell, in a widget callback, anywhere
  listen(w) {
    if (this.panel === w) return;
    this.panel = w;
    const plain = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
    w.sessionContext.statusChanged.connect((_, status) => {      // a crash, even one followed by a restart
      if (status === 'dead' || status === 'autorestarting') this.kernelErrors.push(`the kernel died (${status})`);
    });
    w.sessionContext.iopubMessage.connect((_, m) => {
      const t = m.header.msg_type, c = m.content;
      if (t === 'error') {
        const where = `(after a ${m.parent_header.msg_type})\n`;
        this.kernelErrors.push(`the kernel reported an error: ${c.ename}: ${c.evalue} ${where}`
                               + plain(c.traceback.join('\n')).slice(-2000));
      } else if (t === 'stream' && c.name === 'stderr' && c.text.includes('Traceback')) {
        this.kernelErrors.push('the kernel printed a traceback:\n' + plain(c.text).slice(-2000));
      }
    });
  },
  bad() {       // what stops every wait at once: an error or crash of the kernel, a dialog
    if (this.kernelErrors.length) return this.kernelErrors[0];
    const k = this.kernel();
    if (k && k.status === 'dead') return 'the kernel died (dead)';
    const d = document.querySelector('.jp-Dialog');
    return d ? 'a dialog: ' + d.innerText.slice(0, 300) : '';
  },
  kernel() { const s = this.panel && this.panel.sessionContext.session; return s && s.kernel; },
  opened(name) {
    const b = this.bad(); if (b) return b;
    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    if (!w || !w.context || !w.context.isReady || w.context.path !== name || !w.content) return '';
    this.listen(w);
    const k = this.kernel();
    return k && k.status === 'idle' ? 'ok' : '';
  },
  codeCells() {
    const cells = this.panel.content.model.cells, out = [];
    for (let i = 0; i < cells.length; i++) { const c = cells.get(i); if (c.type === 'code') out.push([i, c]); }
    return out;
  },
  errors() {    // the kernel's errors, error outputs stored in cells, tracebacks shown anywhere on the page
    const found = [...this.kernelErrors];
    for (const [i, c] of this.codeCells()) {
      for (let j = 0; j < c.outputs.length; j++) {
        const o = c.outputs.get(j).toJSON();
        if (o.output_type === 'error') found.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
        const text = Array.isArray(o.text) ? o.text.join('') : (o.text || '');
        if (o.name === 'stderr' && text.includes('Traceback')) found.push(`cell ${i} stderr: ${text.slice(-500)}`);
      }
    }
    const shown = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]';
    for (const el of document.querySelectorAll(shown)) {
      if (el.innerText.includes('Traceback')) found.push('shown: ' + el.innerText.slice(-500));
    }
    return found;
  },
  ranAll() {
    const b = this.bad(); if (b) return b;
    const k = this.kernel();
    if (!k || k.status !== 'idle') return '';
    return this.codeCells().every(([i, c]) => c.executionCount) ? 'ok' : '';
  },
  idle() {
    const b = this.bad(); if (b) return b;
    return this.kernel().status === 'idle' ? 'ok' : '';
  },
  picture(root) { return Array.from(root.querySelectorAll('.widget-output img')).map(i => i.src).join('|'); },
  changed(root, before) {
    const b = this.bad(); if (b) return b;
    const now = this.picture(root);
    return now && now !== before ? 'ok' : '';
  },
};
"""


class Lesson:
    """One notebook open in JupyterLab, with the waits and actions of the test."""

    def __init__(self, page, lab: LabServer, name: str, redraw_s: float = REDRAW_S):
        self.page, self.lab, self.name, self.redraw_s = page, lab, name, redraw_s
        self.console: list[str] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.seconds: dict[str, float] = {}

    def wait(self, condition: str, arg, seconds: float, what: str) -> None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            handle = self.page.wait_for_function(f"(a) => window.__t.{condition}", arg=arg, timeout=seconds * 1000)
        except PlaywrightTimeout:
            raise AssertionError(f"{self.name}: {what}: not within {seconds} s") from None
        outcome = handle.json_value()
        assert outcome == "ok", f"{self.name}: {what}: {outcome}"

    def open_and_run(self) -> None:
        start = time.monotonic()
        self.page.add_init_script(JS_HELPERS)
        self.page.goto(f"{self.lab.url}lab/tree/{self.name}?reset", timeout=OPEN_S * 1000)
        self.wait("opened(a)", self.name, OPEN_S, "open the notebook and start its kernel")
        self.seconds["open"] = time.monotonic() - start
        self.page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        self.wait("ranAll()", None, RUN_ALL_S, "run all cells")
        self.seconds["run all"] = time.monotonic() - start - self.seconds["open"]
        self.assert_no_errors("after running all cells")

    def assert_no_errors(self, when: str) -> None:
        errors = self.page.evaluate("() => window.__t.errors()")
        assert not errors, f"{self.name}: error output {when}:\n" + "\n".join(errors)

    def widget_roots(self) -> list:
        """The top-level outputs that hold interactive controls (progress bars alone do not count)."""
        controls = ", ".join((SLIDER, DROPDOWN, BUTTON) + UNSUPPORTED)
        return [root for root in self.page.locator(CELL_OUTPUT).element_handles() if root.query_selector(controls)]

    def picture(self, root) -> str:
        return self.page.evaluate("(r) => window.__t.picture(r)", root)

    def expect_change(self, root, before: str, what: str) -> str:
        self.wait("changed(a[0], a[1])", [root, before], self.redraw_s, f"{what}: the picture did not change")
        self.wait("idle()", None, self.redraw_s, f"{what}: the kernel did not get idle")
        self.assert_no_errors(what)
        return self.picture(root)

    def drag(self, slider, what: str) -> None:
        """Press the mouse on the slider's handle and move it most of the way to the farther end."""
        handles = slider.query_selector_all(".noUi-handle")
        assert len(handles) == 1, f"{self.name}: {what}: {len(handles)} handles; only 1-handle sliders are operated"
        handle = handles[0]
        handle.scroll_into_view_if_needed()
        track, box = slider.query_selector(".noUi-target").bounding_box(), handle.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        left, right = track["x"], track["x"] + track["width"]
        target = left + 0.1 * track["width"] if x - left > right - x else left + 0.9 * track["width"]
        on_top = self.page.evaluate("([x, y, h]) => { const e = document.elementFromPoint(x, y); "
                                    "return !!e && (e === h || h.contains(e)); }", [x, y, handle])
        assert on_top, f"{self.name}: {what}: the handle is covered by another element at ({x:.0f}, {y:.0f})"
        value = handle.get_attribute("aria-valuenow")
        self.page.mouse.move(x, y)
        self.page.mouse.down()
        self.page.mouse.move(target, y, steps=12)
        self.page.mouse.up()
        moved = handle.get_attribute("aria-valuenow")
        assert moved != value, f"{self.name}: {what}: the handle did not move (value {value} before and after)"

    def operate(self, root, index: int) -> list[str]:
        """Use every control of one widget; return what was done."""
        unknown = [sel for sel in UNSUPPORTED if root.query_selector(sel)]
        assert not unknown, (f"{self.name}: widget {index} has controls this test cannot operate yet "
                             f"({', '.join(unknown)}): teach tests/test_browser.py to use them")
        sliders, buttons = root.query_selector_all(SLIDER), root.query_selector_all(BUTTON)
        dropdowns = root.query_selector_all(DROPDOWN)
        before = self.picture(root)
        assert before, f"{self.name}: widget {index} shows no image in its Output"
        done = []
        for s, slider in enumerate(sliders):
            label = slider.query_selector(".widget-label")
            what = f"widget {index}, slider {label.inner_text() if label else s!r}"
            self.drag(slider, what)
            before = self.expect_change(root, before, what)
            done.append(f"dragged {what}")
        for button in buttons:            # after the drags, a reset-like button has something to undo
            what = f"widget {index}, button {button.inner_text()!r}"
            button.scroll_into_view_if_needed()
            button.click()
            before = self.expect_change(root, before, what)
            done.append(f"clicked {what}")
        for d, select in enumerate(dropdowns):
            options = select.eval_on_selector_all("option", "os => os.map(o => o.value)")
            assert len(options) > 1, f"{self.name}: widget {index}, drop-down {d} has {len(options)} option(s)"
            choice = (select.evaluate("s => s.selectedIndex") + 1) % len(options)
            what = f"widget {index}, drop-down {d} -> option {choice}"
            select.scroll_into_view_if_needed()
            select.select_option(index=choice)
            for button in buttons:        # a chooser next to an apply button: the button applies the choice
                button.click()
            before = self.expect_change(root, before, what)
            done.append(f"picked {what}" + (" and applied it" if buttons else ""))
        return done

    def shut_down_kernels(self) -> None:
        """One lesson's kernel at a time (2 cores, a few GB of memory). Never fails the test: a kernel caught
        restarting can refuse, and the server's own shutdown at the end stops whatever is left."""
        for manager in ("sessions", "kernels"):
            try:
                self.page.evaluate(f"() => window.jupyterapp.serviceManager.{manager}.shutdownAll()")
            except Exception as err:  # noqa: BLE001 - reported with the failure artifacts, not raised
                self.console.append(f"shutting down the {manager} failed: {err}")

    def save_failure(self) -> Path:
        FAILURES.mkdir(exist_ok=True)
        stem = FAILURES / f"{Path(self.name).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            self.page.screenshot(path=f"{stem}.png")
        except Exception as err:  # the page may be gone; the logs still help
            Path(f"{stem}.png.txt").write_text(f"no screenshot: {err}\n")
        Path(f"{stem}-server.log").write_text(self.lab.log())
        Path(f"{stem}-console.log").write_text("\n".join(self.console) + "\n")
        return stem


WIDGET_NOTEBOOKS = widget_notebooks()


def test_lessons_with_widgets_are_found():
    names = [p.name for p in WIDGET_NOTEBOOKS]
    for expected in ("01_vanilla_autoencoder.ipynb", "02_denoising_autoencoder.ipynb",
                     "04_variational_autoencoder.ipynb", "07_beta_and_posterior_collapse.ipynb",
                     "10_conditional_vae.ipynb"):
        assert expected in names
    assert "05_reparameterization_trick.ipynb" not in names     # progress bars only: nothing to operate
    assert "09_applications.ipynb" not in names                 # its class selector moved to lesson 10


@contextlib.contextmanager
def opened(lab: LabServer, browser, name: str, redraw_s: float = REDRAW_S):
    """A fresh browser page with ``name`` open in it; on failure, the screenshot and logs; then its kernel is shut."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    # loopback only: whatever the page asks of another host (the Colab badge image, fonts) is aborted
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(lab.url) else route.abort())
    lesson = Lesson(context.new_page(), lab, name, redraw_s)
    try:
        yield lesson
    except BaseException:
        stem = lesson.save_failure()
        print(f"\nbrowser test failed on {name}: screenshot and logs in {stem}*")
        raise
    finally:
        try:
            lesson.shut_down_kernels()
        finally:
            context.close()


@pytest.mark.parametrize("path", WIDGET_NOTEBOOKS, ids=lambda p: p.name)
def test_widgets_in_jupyterlab(path, lab, browser):
    with opened(lab, browser, path.name) as lesson:
        lesson.open_and_run()
        nb = nbformat.read(path, as_version=4)
        builders = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and WIDGET_CODE.search(c.source)]
        roots = lesson.widget_roots()
        assert len(roots) >= len(builders), (f"{path.name}: {len(builders)} cell(s) build a widget (cells {builders})"
                                             f", but the browser shows {len(roots)} widget(s) with controls")
        done, start = [], time.monotonic()
        for index, root in enumerate(roots):
            done += lesson.operate(root, index)
        lesson.seconds["widgets"] = time.monotonic() - start
        print(f"\n{path.name}: " + "; ".join(done))
        print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in lesson.seconds.items()))
        lesson.assert_no_errors("at the end")


# ---------------------------------------------------------------------------------------------
# The test of the test: it fails on a widget that does not redraw, one whose callback raises, a cell that
# raises, a kernel that dies

SELF_TEST_SETUP = """\
import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import clear_output, display

def explorer(name, on_change):
    out = W.Output()
    def draw(v):
        with out:
            clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(1, 1))
            ax.imshow([[v]], vmin=0, vmax=10)
            display(fig)
            plt.close(fig)
    slider = W.FloatSlider(0, min=0, max=10, continuous_update=False, description=name)
    slider.observe(lambda change: on_change(draw, change["new"]), names="value")
    draw(0)
    return W.VBox([slider, out])
"""


def _write_notebook(lab: LabServer, name: str, *sources: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, lab.base / "notebooks" / name)


def test_the_browser_test_catches_broken_widgets(lab, browser):
    _write_notebook(lab, "selftest_widgets.ipynb", SELF_TEST_SETUP,
                    'explorer("working", lambda draw, v: draw(v))',
                    'explorer("frozen", lambda draw, v: None)          # forgets to redraw',
                    'def fail(draw, v):\n    raise RuntimeError("a bug in the callback")\n\nexplorer("broken", fail)')
    with opened(lab, browser, "selftest_widgets.ipynb", redraw_s=5) as lesson:
        lesson.open_and_run()
        working, frozen, broken = lesson.widget_roots()
        assert lesson.operate(working, 0) == ["dragged widget 0, slider 'working'"]
        with pytest.raises(AssertionError, match="slider 'frozen': the picture did not change: not within 5 s"):
            lesson.operate(frozen, 1)
        with pytest.raises(AssertionError, match="(?s)slider 'broken'.*RuntimeError: a bug in the callback"):
            lesson.operate(broken, 2)


@pytest.mark.parametrize("cell, message", [("1 / 0", "the kernel reported an error: ZeroDivisionError"),
                                           ("import os\nos._exit(1)", "the kernel died")],
                         ids=["error", "crash"])
def test_the_browser_test_catches_a_failing_cell(cell, message, lab, browser):
    name = f"selftest_{'error' if '/' in cell else 'crash'}.ipynb"
    _write_notebook(lab, name, "x = 1", cell, "y = 2")
    with opened(lab, browser, name) as lesson:
        with pytest.raises(AssertionError, match=f"run all cells: {message}"):
            lesson.open_and_run()


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), ("1", pytest.fail.Exception),
                                         ("", pytest.skip.Exception), ("false", pytest.skip.Exception)])
def test_a_missing_browser_fails_in_ci_and_skips_elsewhere(ci, outcome, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("AUTOENC_CHROMIUM", raising=False)
    assert _chromium() is None
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="no Chromium"):
        _unavailable("no Chromium found")
