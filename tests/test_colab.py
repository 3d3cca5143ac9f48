"""Google Colab, simulated: the badge and install line come from one constant, the setup cell takes its Colab
branch, and every widget is a core ipywidgets model (Colab renders those with no custom widget manager).

Colab's data path (no Debian copy, no checkout: torchvision's download) is tested in test_data.py.
"""

import ast
import re
import shutil
import sys
import types

import matplotlib.pyplot as plt
import nbformat
import pytest
import torch

import autoenc_helpers as ah
from autoenc_helpers import widgets
from tools import notebooks

NOTEBOOKS = sorted(notebooks.NOTEBOOK_DIR.glob("*.ipynb"))
CORE_MODULES = {"@jupyter-widgets/controls", "@jupyter-widgets/base", "@jupyter-widgets/output"}


def test_the_repository_is_one_github_name():
    assert re.fullmatch(r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+", notebooks.REPOSITORY)
    assert notebooks.install_line() == (f'%pip install -q "autoenc-helpers @ '
                                        f'git+https://github.com/{notebooks.REPOSITORY}.git"')


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_badge_and_install_line_are_built_from_the_repository(path):
    nb = nbformat.read(path, as_version=4)
    assert f"]({notebooks.colab_url(path.name)})" in nb.cells[0].source          # the badge's link, exactly
    setup = next(c for c in nb.cells if c.cell_type == "code")
    assert notebooks.install_line() in [line.strip() for line in setup.source.splitlines()]
    assert notebooks.colab_problems(path) == []


def test_colab_problems_are_named(tmp_path):
    path = tmp_path / NOTEBOOKS[0].name
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace(notebooks.REPOSITORY, "someone/else")
    setup = next(c for c in nb.cells if c.cell_type == "code")
    setup.source = setup.source.replace(notebooks.install_line(), "%pip install -q autoenc-helpers")
    nbformat.write(nb, path)
    found = notebooks.colab_problems(path)
    assert any("Colab badge links" in p and "someone/else" in p for p in found)
    assert any("the setup cell installs with ['%pip install -q autoenc-helpers']" in p for p in found)
    assert any("cell 0 names the repository 'someone/else'" in p for p in found)


# -- set-repo: one command renames the repository everywhere ------------------------------------

@pytest.fixture
def course_copy(tmp_path):
    """The files set-repo touches, copied; the README gains the Colab mentions a README may have."""
    shutil.copytree(notebooks.NOTEBOOK_DIR, tmp_path / "notebooks")
    (tmp_path / "tools").mkdir()
    shutil.copy(notebooks.ROOT / "tools" / "notebooks.py", tmp_path / "tools")
    readme = (notebooks.ROOT / "README.md").read_text()
    readme += (f"\n[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
               f"({notebooks.colab_url('01_vanilla_autoencoder.ipynb')})\n"
               f"`pip install git+https://github.com/{notebooks.REPOSITORY}.git`, "
               f"or clone https://github.com/{notebooks.REPOSITORY}\n"
               f"(not to be confused with https://github.com/{notebooks.REPOSITORY}-extra)\n")
    (tmp_path / "README.md").write_text(readme)
    return tmp_path


def test_set_repo_rewrites_badges_install_lines_readme_and_the_constant(course_copy):
    originals = {p: p.read_bytes() for p in course_copy.rglob("*") if p.is_file()}
    changed = notebooks.set_repository("my-university/deep-learning.autoencoders", root=course_copy)
    assert sorted(changed) == sorted(originals)                  # every notebook, README.md and tools/notebooks.py
    new = "my-university/deep-learning.autoencoders"
    for path in sorted((course_copy / "notebooks").glob("*.ipynb")):
        assert notebooks.colab_problems(path, repository=new) == []
        text = path.read_text()
        assert notebooks.REPOSITORY not in text                     # no cell, output or metadata names the old one
        assert not [p for p in notebooks.problems(path) if "code cells changed" in p]   # outputs still current
    assert f'REPOSITORY = "{new}"' in (course_copy / "tools" / "notebooks.py").read_text()
    readme = (course_copy / "README.md").read_text()
    assert f"colab.research.google.com/github/{new}/blob/main/notebooks/01_vanilla_autoencoder.ipynb" in readme
    assert f"git+https://github.com/{new}.git" in readme and f"clone https://github.com/{new}\n" in readme
    assert f"https://github.com/{notebooks.REPOSITORY}-extra" in readme       # another repository stays
    # and back: the files are byte for byte what they were
    assert notebooks.set_repository(notebooks.REPOSITORY, root=course_copy)
    assert {p: p.read_bytes() for p in originals} == originals
    assert notebooks.set_repository(notebooks.REPOSITORY, root=course_copy) == []


@pytest.mark.parametrize("bad", ["autoencoders", "a/b/c", "https://github.com/a/b", "-a/b", "a/b c", ""])
def test_set_repo_rejects_what_is_not_owner_slash_name(bad, course_copy):
    with pytest.raises(ValueError, match="is not a GitHub repository name; expected OWNER/NAME"):
        notebooks.set_repository(bad, root=course_copy)


def test_set_repo_command_line(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(notebooks, "set_repository", lambda repo: calls.append(repo) or [])
    assert notebooks.main(["set-repo", "someone/course"]) == 0
    assert calls == ["someone/course"] and "nothing to change" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        notebooks.main(["set-repo"])
    with pytest.raises(SystemExit):
        notebooks.main(["set-repo", "a/b", "c/d"])


def test_the_digest_ignores_the_install_lines_repository_only():
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    setup = next(c for c in nb.cells if c.cell_type == "code")
    before = notebooks.code_digest(nb)
    original = setup.source
    setup.source = original.replace(notebooks.install_line(), notebooks.install_line("someone/else"))
    assert setup.source != original and notebooks.code_digest(nb) == before
    setup.source = original.replace("autoenc-helpers @", "autoenc-helpers[dev] @")
    assert notebooks.code_digest(nb) != before                   # the rest of the line still counts
    setup.source = original.replace("ah.set_seed(0)", "ah.set_seed(1)")
    assert notebooks.code_digest(nb) != before


# -- the setup cell's Colab branch, run in an IPython shell with a fake google.colab --------------

@pytest.fixture
def shell(monkeypatch):
    """An IPython shell whose %pip records its command instead of installing anything."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    pip_calls = []
    real_pip = ip.magics_manager.magics["line"]["pip"]
    ip.register_magic_function(lambda line: pip_calls.append(line), magic_kind="line", magic_name="pip")
    ip.reset(new_session=False)
    ip.pip_calls = pip_calls
    try:
        yield ip
    finally:
        ip.magics_manager.magics["line"]["pip"] = real_pip
        ip.reset(new_session=False)
        plt.close("all")


def _run(ip, source: str, where: str) -> None:
    result = ip.run_cell(source, store_history=False)
    assert result.success, f"{where} failed on simulated Colab: {result.error_before_exec or result.error_in_exec!r}"


def _assigned_names(source: str) -> list[str]:
    return [t.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)]


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")   # matplotlib given tensors
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_takes_the_colab_branch(path, shell, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))   # what Colab has
    code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    _run(shell, code[0], "the setup cell")
    assert shell.pip_calls == [f'install -q "autoenc-helpers @ git+https://github.com/{notebooks.REPOSITORY}.git"']
    assert shell.user_ns["ah"] is ah
    _run(shell, code[1], "the settings cell")
    assert shell.user_ns["DEVICE"] == torch.device("cpu")       # AUTOENC_DEVICE=cpu (conftest)
    settings = _assigned_names(code[1])
    assert "DEVICE" in settings and all(name in shell.user_ns for name in settings)
    if "ah.load_dataset(" in code[2]:                             # the data cell, when it comes next
        _run(shell, code[2], "the data cell")
    assert shell.pip_calls == [shell.pip_calls[0]]                # installed once, nothing else


def test_setup_does_not_install_outside_colab(shell):
    assert "google.colab" not in sys.modules
    setup = next(c for c in nbformat.read(NOTEBOOKS[0], as_version=4).cells if c.cell_type == "code")
    _run(shell, setup.source, "the setup cell")
    assert shell.pip_calls == [] and shell.user_ns["ah"] is ah


# -- widgets: core ipywidgets models only -----------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_widget_state_uses_core_models_only(path):
    nb = nbformat.read(path, as_version=4)
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    modules = {(m["model_module"], m["state"].get("_view_module") or "@jupyter-widgets/base") for m in state.values()}
    models = {m["model_name"] for m in state.values()}
    assert {module for pair in modules for module in pair} <= CORE_MODULES, modules
    if "ah.widgets." in "".join(c.source for c in nb.cells if c.cell_type == "code"):
        assert "OutputModel" in models                      # a widget lesson stores its widgets' state


def _widget_tree(widget, seen=None) -> list:
    """The widget and every widget it holds (children, layouts, styles), each once."""
    import ipywidgets as W

    seen = {} if seen is None else seen
    if widget.model_id in seen:
        return []
    seen[widget.model_id] = widget
    for name in widget.keys:
        value = getattr(widget, name)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, W.Widget):
                _widget_tree(item, seen)
    return list(seen.values())


def test_the_course_widgets_are_core_ipywidgets_models():
    ah.set_seed(0)
    images = torch.rand(6, 1, 28, 28)
    ae, vae = ah.MLPAutoencoder(latent_dim=3, hidden=(16,)), ah.MLPVAE(latent_dim=2, hidden=(16,))
    built = {
        "LatentExplorer": widgets.LatentExplorer(ae.decode, torch.randn(6, 3), images=images),
        "NoiseExplorer": widgets.NoiseExplorer(ae, images),
        "LossFactorExplorer": widgets.LossFactorExplorer(
            [{"factor": f, "model": vae, "recon": 1.0 * f, "kl": 2.0} for f in (0.5, 1.0)], images),
    }
    if hasattr(widgets, "ConditionalExplorer"):                   # lesson 10's, where it has landed
        cvae = ah.models.ConditionalVAE(latent_dim=2, n_classes=3, hidden=(16,))
        built["ConditionalExplorer"] = widgets.ConditionalExplorer(cvae, ["a", "b", "c"])
    if hasattr(widgets, "CodeGridExplorer"):                      # lesson 11's
        built["CodeGridExplorer"] = widgets.CodeGridExplorer(ah.vq.VQVAE(n_codes=8, code_dim=2), images)
    # every factory: a new widget fails here until it is built above
    assert set(built) == {name for name in widgets.__all__ if name.endswith("Explorer") and name != "Explorer"}
    for name, explorer in built.items():
        tree = _widget_tree(explorer.widget)
        assert len(tree) > 5, name
        for w in tree:
            assert w._model_module in CORE_MODULES and w._view_module in CORE_MODULES | {None}, \
                f"{name}: {type(w).__name__} comes from {w._model_module} / {w._view_module}"
