"""The benchmark command runs end to end on tiny sizes and writes its tables.

No timing assertions: timings are noisy.
"""

import json
import os

import nbformat
import pytest
import torch

import autoenc_helpers as ah
from benchmarks import benchmark
from tools import lessons


@pytest.fixture
def one_thread(monkeypatch):
    """One torch thread here and in the subprocesses: on a busy machine, two threads can wait on each other
    for seconds per step; the structure of the tables does not depend on it."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_cheap_parts_write_every_table(tmp_path, one_thread):
    out = tmp_path / "t.md"
    results = benchmark.main(["--smoke", "--images", "256", "--epochs", "1", "--models", "mlp_vae",
                              "--parts", "training,quality,ablation,memory,widgets", "--no-compile",
                              "--out", str(out)])
    text = out.read_text(encoding="utf-8")
    for header in (benchmark.TRAINING_HEADER, benchmark.ABLATION_HEADER, benchmark.MEMORY_HEADER,
                   benchmark.WIDGETS_HEADER):
        assert header in text
    assert "| model | way | after 1 epoch |" in text
    assert "256 training images" in text and "speed-up" in text

    run = results["training"]["mlp_vae"]
    assert results["quality"] is results["training"]                 # the same runs give both parts
    assert [len(run["seconds"][w]) for w in ("a", "b")] == [1, 1]
    assert set(run["elbo"]["a"]) == set(run["elbo"]["b"]) == {1}
    assert 100 < run["elbo"]["a"][1] < 800                           # nats per image after a tiny epoch

    variants = [row["variant"] for row in results["ablation"]]
    assert variants[0] == "a" and {"a_plain_adam", "b_in_memory", "b"} <= set(variants)
    assert "a_default_layout" not in variants                         # the MLP has no convolutions

    assert [row["way"] for row in results["memory"]] == ["(a) course", "(b) classic"]
    assert all(row["peak_mb"] > row["after_imports_mb"] > 0 for row in results["memory"])

    measured = {row["widget"] for row in results["widgets"] if "error" not in row}
    assert measured == set(benchmark.widget_classes())
    for row in results["widgets"]:
        if "error" not in row:
            assert row["pngs"] == row["moves"] > 0 and row["png_kb"] > 1   # each move drew a real PNG


def test_every_widget_class_has_a_benchmark_case():
    missing = [name for name in benchmark.widget_classes() if not benchmark.WIDGET_CASES.get(name)]
    assert not missing, f"add these widgets to benchmark.WIDGET_CASES so that their latency is measured: {missing}"


def test_conv_model_is_lesson_08s():
    """The benchmark times the conv VAE that notebook 08 trains: read the widths from the notebook's settings."""
    import ast
    import re

    from tools import notebooks

    nb = nbformat.read(notebooks.ROOT / "notebooks" / "08_convolutional_vae.ipynb", as_version=4)
    settings = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    match = re.search(r"^CHANNELS = (\([^)]*\))", settings, re.M)
    assert match, "notebook 08 no longer sets CHANNELS = (...): update the benchmark and this test"
    assert ast.literal_eval(match.group(1)) == benchmark.CONV_VAE_CHANNELS
    assert benchmark.MODELS["conv_vae"][1]().channels == benchmark.CONV_VAE_CHANNELS


PROBE = """
import json, os, pathlib
folder = pathlib.Path(os.environ["AUTOENC_CHECKPOINTS"])
seen = {"smoke": os.environ["AUTOENC_SMOKE"], "checkpoints": str(folder),
        "checkpoints_empty": not folder.exists() or not any(folder.iterdir()), "cwd": os.getcwd()}
pathlib.Path(os.environ["PROBE_OUT"], "mode" + seen["smoke"] + ".json").write_text(json.dumps(seen))
"""


def test_notebooks_run_on_a_copy_with_an_empty_checkpoint_folder(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "01_vanilla_autoencoder.ipynb"                  # a lesson's name: its budget is read
    nbformat.write(nb, path)
    before = path.read_bytes()
    monkeypatch.setenv("PROBE_OUT", str(tmp_path))
    monkeypatch.setenv("AUTOENC_CHECKPOINTS", str(tmp_path / "classroom-cache"))
    (tmp_path / "classroom-cache").mkdir()
    (tmp_path / "classroom-cache" / "model.pt").write_text("a trained model")

    out = tmp_path / "t.md"
    results = benchmark.main(["--parts", "notebooks", "--notebooks", str(path), "--out", str(out)])

    assert path.read_bytes() == before                                  # the original is never rewritten
    (row,) = results["notebooks"]
    assert row["notebook"] == "01_vanilla_autoencoder.ipynb"
    assert row["budget_s"] == lessons.LESSONS["01_vanilla_autoencoder"].budget_s
    assert row["full"] > 0 and row["smoke"] > 0
    for mode in ("0", "1"):                                             # full mode, then smoke mode
        seen = json.loads((tmp_path / f"mode{mode}.json").read_text())
        assert seen["checkpoints_empty"] and "classroom-cache" not in seen["checkpoints"]
        assert seen["cwd"] != str(tmp_path)                             # ran in a temporary folder
    text = out.read_text(encoding="utf-8")
    assert benchmark.NOTEBOOKS_HEADER in text and f"| **all 1** | {lessons.TOTAL_BUDGET_S} |" in text
    assert os.environ["AUTOENC_CHECKPOINTS"] == str(tmp_path / "classroom-cache")   # given back after the run


@pytest.mark.parametrize("argv, message", [(["--parts", "speed"], "unknown part"),
                                           (["--models", "resnet"], "unknown model"),
                                           (["--images", "10"], "--images must be at least 128")])
def test_bad_arguments_are_named(argv, message, tmp_path):
    with pytest.raises(SystemExit, match=message):
        benchmark.main([*argv, "--out", str(tmp_path / "t.md")])


# -- the arithmetic behind the verdicts ---------------------------------------------------------------------------


def _run(a, b, elbo_a=(250.0,), elbo_b=(250.0,)):
    return {"seconds": {"a": list(a), "b": list(b)}, "cpu_seconds": {"a": list(a), "b": list(b)},
            "elbo": {"a": dict(zip((1, 5, 10), elbo_a)), "b": dict(zip((1, 5, 10), elbo_b))}}


def test_the_speed_up_is_the_ratio_of_median_epochs_and_the_verdict_follows_the_target():
    runs = {"mlp_vae": _run([1.0, 9.0, 1.2], [3.3, 3.0, 40.0]),        # medians 1.2 and 3.3: 2.75x, not 3x
            "conv_vae": _run([2.0, 2.0, 2.0], [3.2, 3.0, 3.1])}         # 1.55x against a 1.5x target
    text = benchmark.training_table(runs, 60_000)
    assert "speed-up **2.75x** (target >= 3x: **NOT met**)" in text
    assert "speed-up **1.55x** (target >= 1.5x: met)" in text
    assert "| 50,000 |" in text                                         # 60,000 images / 1.2 s median


def test_the_quality_gap_is_relative_to_the_classic_way_and_flags_more_than_one_percent():
    run = _run([1], [1], elbo_a=(250.0, 245.0, 240.0), elbo_b=(248.0, 245.0, 243.0))
    assert benchmark._quality_gaps(run) == {1: pytest.approx(2 / 248), 5: 0.0, 10: pytest.approx(3 / 243)}
    settings = benchmark.FULL
    table = benchmark.quality_table({"mlp_vae": run}, settings)
    assert "0.81% ok" in table and "0.00% ok" in table and "1.23% **over 1%**" in table


def test_torchvision_layout_export_matches_the_course_data(tmp_path):
    import torchvision

    raw = benchmark.export_torchvision_layout(tmp_path)
    assert raw == tmp_path / "FashionMNIST" / "raw"
    tv = torchvision.datasets.FashionMNIST(str(tmp_path), train=False, download=False)
    ours = ah.load_dataset("fashion_mnist", "test", verbose=False)
    assert torch.equal(tv.data.float() / 255, ours.images[:, 0])
    assert torch.equal(tv.targets, ours.labels)


def test_the_ablation_switches_the_fast_layout_off_and_back():
    from autoenc_helpers import training

    conv = benchmark.MODELS["conv_vae"][1]()
    weight = next(m.weight for m in conv.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    assert not weight.is_contiguous(memory_format=torch.channels_last)
    with benchmark._fast_layout(False):
        assert not training.FAST_LAYOUT
        training.use_fast_layout(conv, torch.device("cpu"))
        assert not weight.is_contiguous(memory_format=torch.channels_last)
    assert training.FAST_LAYOUT
    training.use_fast_layout(conv, torch.device("cpu"))
    weight = next(m.weight for m in conv.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    assert weight.is_contiguous(memory_format=torch.channels_last)


def test_every_lesson_has_a_budget():
    from tools import notebooks

    for path in sorted(notebooks.NOTEBOOK_DIR.glob("*.ipynb")):
        assert benchmark.notebook_budget(path) == lessons.LESSONS[path.stem].budget_s > 0
