"""Corruptions (lesson 02), PSNR, the noise widget and the lesson's exercise checks."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import autoenc_helpers as ah
from baselines import beats_mean_image, mean_image_mse
from autoenc_helpers import checks, noise, widgets

KINDS = tuple(noise.NOISE_KINDS)


def images(n=32, seed=0):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", KINDS)
def test_corruption_keeps_shape_and_range_and_leaves_the_input_alone(kind):
    x = images()
    before = x.clone()
    for level in (0.0, 0.3, 1.0):
        y = ah.corrupt(x, kind, level)
        assert y.shape == x.shape and y.dtype == x.dtype
        assert 0 <= float(y.min()) and float(y.max()) <= 1
    assert torch.equal(x, before)


@pytest.mark.parametrize("kind", KINDS)
def test_a_corruption_keeps_the_shape_and_precision_of_any_input(kind):
    # one pixel as a 0-dim tensor, one image, a batch: the copy has the input's shape
    for x in (torch.tensor(0.5), images(1)[0, 0], images(3)):
        assert ah.corrupt(x, kind, 0.3).shape == x.shape
    # half precision with one level per image: the levels meet the images' precision, not the other way
    x = images(3).half()
    levels = torch.tensor([0.1, 0.2, 0.3])
    assert ah.corrupt(x, kind, levels, generator=torch.Generator().manual_seed(0)).dtype == torch.float16


@pytest.mark.parametrize("kind", KINDS)
def test_level_zero_is_the_identity_and_a_seed_repeats_the_noise(kind):
    x = images()
    assert torch.equal(ah.corrupt(x, kind, 0.0), x)
    a = ah.corrupt(x, kind, 0.4, generator=torch.Generator().manual_seed(5))
    b = ah.corrupt(x, kind, 0.4, generator=torch.Generator().manual_seed(5))
    c = ah.corrupt(x, kind, 0.4, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_gaussian_noise_has_the_asked_standard_deviation():
    grey = torch.full((200, 1, 28, 28), 0.5)
    diff = noise.gaussian_noise(grey, 0.08, generator=torch.Generator().manual_seed(0)) - grey
    assert abs(float(diff.std()) - 0.08) < 0.002 and abs(float(diff.mean())) < 0.002


def test_masking_drops_a_fraction_p_to_black_and_keeps_the_rest():
    x = images(200) * 0.5 + 0.5                                  # no pixel is 0 before masking
    y = noise.masking_noise(x, 0.3, generator=torch.Generator().manual_seed(0))
    dropped = y == 0
    assert abs(float(dropped.float().mean()) - 0.3) < 0.01
    assert torch.equal(y[~dropped], x[~dropped])


def test_salt_and_pepper_replaces_a_fraction_p_half_white_half_black():
    x = torch.full((200, 1, 28, 28), 0.5)
    y = noise.salt_and_pepper(x, 0.2, generator=torch.Generator().manual_seed(0))
    assert abs(float((y == 1).float().mean()) - 0.1) < 0.005
    assert abs(float((y == 0).float().mean()) - 0.1) < 0.005
    assert set(torch.unique(y).tolist()) == {0.0, 0.5, 1.0}


def test_one_level_per_image():
    x = torch.full((3, 1, 28, 28), 0.5)
    y = noise.masking_noise(x, torch.tensor([0.0, 1.0, 0.5]), generator=torch.Generator().manual_seed(0))
    assert torch.equal(y[0], x[0]) and float(y[1].max()) == 0
    with pytest.raises(ValueError, match=r"one per image, got shape \(2,\)"):
        noise.masking_noise(x, torch.tensor([0.1, 0.2]))


@pytest.mark.parametrize("kind, level, message", [
    ("gaussian", -0.1, r"sigma must lie in \[0, inf\), finite, got -0.1"),
    ("gaussian", math.nan, r"sigma must lie in .* got nan"),
    ("masking", 1.5, r"p must lie in \[0, 1\], got 1.5"),
    ("salt_and_pepper", -0.2, r"p must lie in \[0, 1\], got -0.2"),
])
def test_levels_out_of_range_are_rejected_with_the_value(kind, level, message):
    with pytest.raises(ValueError, match=message):
        ah.corrupt(images(2), kind, level)
    with pytest.raises(ValueError, match=message.split(" got")[0]):
        ah.Corruption(kind, level)


def test_bad_kind_images_and_level_type_are_named():
    with pytest.raises(ValueError, match=r"'speckle' is not one of \('gaussian', 'masking', 'salt_and_pepper'\)"):
        ah.corrupt(images(2), "speckle", 0.1)
    with pytest.raises(ValueError, match=r"values in \[0, 1\], got values from -1 to 1"):
        ah.corrupt(images(2) * 2 - 1, "gaussian", 0.1)
    with pytest.raises(TypeError, match="floating-point"):
        ah.corrupt(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), "masking", 0.1)
    with pytest.raises(TypeError, match="must be a number"):
        ah.corrupt(images(2), "masking", "0.1")
    with pytest.raises(ValueError, match="at least one noise kind"):
        ah.RandomCorruption({})


def test_two_corruption_objects_alike_give_the_same_noise_and_continue_their_stream():
    x = images()
    a, b = ah.Corruption("salt_and_pepper", 0.3, seed=1), ah.Corruption("salt_and_pepper", 0.3, seed=1)
    first = a(x)
    assert torch.equal(first, b(x))
    assert not torch.equal(first, a(x))                             # the next batch gets new noise
    assert "p=0.3" in repr(a)


def test_random_corruption_mixes_kinds_within_a_batch_and_stays_in_range():
    x = torch.full((300, 1, 28, 28), 0.5)
    y = ah.RandomCorruption({"gaussian": 0.5, "masking": 0.7, "salt_and_pepper": 0.3}, seed=0)(x)
    assert 0 <= float(y.min()) and float(y.max()) <= 1
    has_white = (y == 1).flatten(1).any(1)                           # salt (gaussian rarely reaches 1 from 0.5)
    gaussian_like = ((y != 0) & (y != 0.5) & (y != 1)).flatten(1).any(1)
    masked_only = ~has_white & ~gaussian_like & (y == 0).flatten(1).any(1)
    assert has_white.sum() > 50 and gaussian_like.sum() > 50 and masked_only.sum() > 50


@pytest.mark.parametrize("kind, level", [("masking", 0.4), ("salt_and_pepper", 0.3), ("gaussian", 0.05)])
def test_expected_mse_matches_the_measured_one(kind, level):
    x = images(500) * 0.8 + 0.1                 # away from 0 and 1, so Gaussian noise at 0.05 is rarely clipped
    noisy = ah.corrupt(x, kind, level, generator=torch.Generator().manual_seed(1))   # not the images' seed
    measured = float(((noisy - x) ** 2).mean())
    assert measured == pytest.approx(noise.expected_mse(x, kind, level), rel=0.03)


# --- exact behaviour (these tests kill mutants that statistics cannot tell apart; see tests/MUTATION.md) ---

def _formula(x, kind, level, u):
    """What each corruption must return for the uniform (or, for Gaussian, normal) draws u.

    The level is held as a float32 number (as the package does) and then meets the images' dtype."""
    level = torch.tensor(float(level)).to(x.dtype)
    if kind == "gaussian":
        return (x + level * u).clamp(0, 1)
    if kind == "masking":
        return x * (u >= level)
    return torch.where(u < level, (u < level / 2).to(x.dtype), x)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_each_corruption_is_its_formula_on_the_same_random_draws(kind, dtype):
    x = images(4).to(dtype)
    draw = torch.randn if kind == "gaussian" else torch.rand
    u = draw(x.shape, generator=torch.Generator().manual_seed(3), dtype=dtype)
    got = ah.corrupt(x, kind, 0.3, generator=torch.Generator().manual_seed(3))
    assert got.dtype == dtype
    assert torch.equal(got, _formula(x, kind, 0.3, u))                    # exact: same draws, same precision
    torch.manual_seed(11)                                                 # without a generator: torch's own
    u = draw(x.shape, dtype=dtype)
    torch.manual_seed(11)
    assert torch.equal(ah.corrupt(x, kind, 0.3), _formula(x, kind, 0.3, u))


def test_gaussian_noise_adds_the_draw_rather_than_subtracting_it(fixed_draws):
    x = torch.full((1, 1, 2, 2), 0.5)
    z = torch.tensor([0.1, -0.2, 0.3, -0.4]).reshape(1, 1, 2, 2)
    assert torch.allclose(noise.gaussian_noise(x, 0.5, generator=_FixedDraws(z)), x + 0.5 * z)


class _FixedDraws:
    """Stands in for a generator: the corruption's draws are these numbers (through a patched ``torch``)."""
    device = torch.device("cpu")

    def __init__(self, values):
        self.values = values


@pytest.fixture
def fixed_draws(monkeypatch):
    real_rand, real_randn = torch.rand, torch.randn

    def fixed(real):
        def draw(*args, generator=None, **kwargs):
            if isinstance(generator, _FixedDraws):
                return generator.values.to(kwargs.get("dtype") or generator.values.dtype)
            return real(*args, generator=generator, **kwargs)
        return draw
    monkeypatch.setattr(torch, "rand", fixed(real_rand))
    monkeypatch.setattr(torch, "randn", fixed(real_randn))


def test_the_boundaries_of_masking_and_salt_and_pepper(fixed_draws):
    x = torch.full((1, 1, 1, 5), 0.5)
    u = torch.tensor([0.0, 0.25, 0.5, 0.75, 0.999]).reshape(1, 1, 1, 5)
    # p = 0 changes nothing, even for a draw of exactly 0 (a pixel is hit when u < p)
    assert torch.equal(noise.masking_noise(x, 0.0, generator=_FixedDraws(u)), x)
    assert torch.equal(noise.salt_and_pepper(x, 0.0, generator=_FixedDraws(u)), x)
    # p = 0.5: u in [0, 0.25) white, [0.25, 0.5) black, from 0.5 on kept; masking keeps u >= 0.5
    assert noise.salt_and_pepper(x, 0.5, generator=_FixedDraws(u)).flatten().tolist() == [1.0, 0.0, 0.5, 0.5, 0.5]
    assert noise.masking_noise(x, 0.5, generator=_FixedDraws(u)).flatten().tolist() == [0.0, 0.0, 0.5, 0.5, 0.5]


@pytest.mark.parametrize("fn", [noise.gaussian_noise, noise.masking_noise, noise.salt_and_pepper])
def test_every_error_names_the_function_and_the_value(fn):
    name = fn.__name__
    level = "sigma" if name == "gaussian_noise" else "p"
    with pytest.raises(ValueError, match=rf"^{name} expects pixel values in \[0, 1\], got values from 0 to 1.5$"):
        fn(torch.tensor([[0.0, 1.5]]), 0.1)
    with pytest.raises(ValueError, match=rf"^{name}: {level} must lie in \[0, "):
        fn(images(2), -1.0)
    with pytest.raises(TypeError, match=rf"^{name} expects a floating-point tensor .* got dtype torch.int64$"):
        fn(torch.zeros(2, 3, dtype=torch.int64), 0.1)
    with pytest.raises(TypeError, match=rf"^{name} expects a floating-point tensor .* got list$"):
        fn([[0.5]], 0.1)
    with pytest.raises(ValueError, match=rf"^{name}: {level} must be a number or a \(3,\) tensor, one per image, "
                                         r"got shape \(3, 1\)$"):
        fn(images(3), torch.full((3, 1), 0.1))
    with pytest.raises(TypeError, match=rf"^{name}: {level} must be a number in \[0, .*got True$"):
        fn(images(3), True)


def test_expected_mse_errors_and_formulas_on_images_that_are_not_symmetric_about_one_half():
    x = images(50) ** 3                                  # mostly dark: mean(x^2) is far from mean((1-x)^2)
    assert noise.expected_mse(x, "gaussian", 1.5) == 1.5 ** 2   # sigma has no upper bound
    assert noise.expected_mse(x, "masking", 0.4) == pytest.approx(0.4 * float((x ** 2).mean()), rel=1e-6)
    assert noise.expected_mse(x, "salt_and_pepper", 0.4) == pytest.approx(
        0.4 * float(((x ** 2 + (1 - x) ** 2) / 2).mean()), rel=1e-6)
    with pytest.raises(ValueError, match=r"^expected_mse: p must lie in \[0, 1\], got 1.5$"):
        noise.expected_mse(x, "masking", 1.5)
    with pytest.raises(ValueError, match=r"^expected_mse expects pixel values"):
        noise.expected_mse(x * 2, "masking", 0.1)


def test_corruption_objects_name_themselves_in_errors_and_default_to_seed_zero():
    with pytest.raises(ValueError, match=r"^Corruption\('masking'\): p must lie in \[0, 1\], got 1.5$"):
        ah.Corruption("masking", 1.5)
    expected = r"^RandomCorruption: the maximum p of 'masking' must lie in \[0, 1\], got 1.5$"
    with pytest.raises(ValueError, match=expected):
        ah.RandomCorruption({"masking": 1.5})
    with pytest.raises(ValueError, match=r"^max_levels must name at least one noise kind, e.g. \{'gaussian': 0.5\}$"):
        ah.RandomCorruption({})
    with pytest.raises(TypeError, match=r"^seed must be an int, got '3'$"):
        ah.Corruption("masking", 0.1, seed="3")
    ah.RandomCorruption({"gaussian": 1.5})                       # sigma has no upper bound
    x = images(8)
    assert torch.equal(ah.Corruption("gaussian", 0.3)(x), ah.Corruption("gaussian", 0.3, seed=0)(x))
    levels = {"gaussian": 0.5, "masking": 0.5}
    assert torch.equal(ah.RandomCorruption(levels)(x), ah.RandomCorruption(levels, seed=0)(x))


def test_random_corruption_draws_only_from_its_own_seed():
    x = images(16)
    levels = {"gaussian": 0.5, "masking": 0.5, "salt_and_pepper": 0.5}
    torch.manual_seed(0)
    a = ah.RandomCorruption(levels, seed=3)(x)
    torch.manual_seed(1)                                      # torch's global stream must not matter
    b = ah.RandomCorruption(levels, seed=3)(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, ah.RandomCorruption(levels, seed=4)(x))


def test_the_stream_setting_says_fresh_then_where_the_generator_stands():
    a, b = ah.Corruption("masking", 0.2, seed=1), ah.Corruption("masking", 0.2, seed=1)
    assert a.settings["stream"] == "fresh"
    a(images(2))
    used = a.settings["stream"]
    assert used != "fresh" and len(used) == 16 and int(used, 16) >= 0
    b(images(2))
    assert b.settings["stream"] == used                      # the same use reaches the same state
    a(images(2))
    assert a.settings["stream"] != used


def test_psnr_db():
    assert ah.psnr_db(0.01) == pytest.approx(20.0)
    assert ah.psnr_db(0.001) == pytest.approx(30.0)
    assert ah.psnr_db(0.04, peak=2.0) == pytest.approx(20.0)
    assert ah.psnr_db(0.0) == math.inf
    assert torch.allclose(ah.psnr_db(torch.tensor([0.1, 0.01])), torch.tensor([10.0, 20.0]))
    with pytest.raises(ValueError, match="cannot be negative, got -0.1"):
        ah.psnr_db(-0.1)


def test_a_denoising_autoencoder_really_denoises():
    """Trained on masked inputs, it beats both the noisy input and a plain AE on held-out masked images."""
    train = ah.load_dataset("fashion_mnist", "train", n=6_000, verbose=False, device="cpu")
    test = ah.load_dataset("fashion_mnist", "test", n=500, verbose=False, device="cpu")
    models = {}
    for name, corrupt in (("plain", None), ("denoising", ah.Corruption("masking", 0.5, seed=0))):
        ah.set_seed(0)
        models[name] = ah.MLPAutoencoder(latent_dim=32, hidden=(128,))
        ah.fit(models[name], train, epochs=5, corrupt=corrupt, progress=False, log=False, device="cpu")
    scores = {name: ah.evaluate(m, test, corrupt=ah.Corruption("masking", 0.5, seed=9))["mse_per_pixel"]
              for name, m in {"noisy": nn.Identity(), **models}.items()}
    assert scores["denoising"] < 0.6 * scores["noisy"]
    assert scores["denoising"] < 0.8 * scores["plain"]
    assert beats_mean_image(scores["denoising"], mean_image_mse(train.images, test.images), margin=0.8)


# -- the widget ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def explorer():
    ah.set_seed(0)
    model = ah.MLPAutoencoder(latent_dim=16, hidden=(64,))
    return widgets.NoiseExplorer({"denoising AE": model, "plain AE": nn.Identity()}, images(5),
                                 max_levels={"gaussian": 1.0, "masking": 0.9, "salt_and_pepper": 0.5})


def test_denoise_panels_is_pure_and_ordered():
    model = nn.Identity()
    a = widgets.denoise_panels({"m": model}, images(1)[0], "gaussian", 0.3, seed=1)
    b = widgets.denoise_panels({"m": model}, images(1)[0], "gaussian", 0.3, seed=1)
    assert list(a) == ["corrupted", "m", "clean"]
    assert all(np.array_equal(a[k], b[k]) and a[k].shape == (28, 28) for k in a)
    with pytest.raises(ValueError, match=r"one \(1, 28, 28\) image, got \(2, 1, 28, 28\)"):
        widgets.denoise_panels({"m": model}, images(2), "gaussian", 0.3)


def test_moving_the_noise_slider_redraws_a_noisier_image(explorer):
    explorer.level.value = 0.1
    renders, before = explorer.renders, explorer.panels["corrupted"].copy()
    explorer.level.value = 0.8
    assert explorer.renders == renders + 1
    clean = explorer.panels["clean"]
    assert ((explorer.panels["corrupted"] - clean) ** 2).mean() > 4 * ((before - clean) ** 2).mean()
    assert explorer.level.continuous_update is False


def test_changing_the_noise_type_relabels_and_caps_the_slider(explorer):
    explorer.level.value = 0.8
    renders = explorer.renders
    explorer.kind.value = "salt_and_pepper"
    assert explorer.renders == renders + 1                   # one redraw, not one per changed trait
    assert explorer.level.max == 0.5 and explorer.level.value == 0.5 and explorer.level.description == "p"
    changed = explorer.panels["corrupted"] != explorer.panels["clean"]
    assert set(np.unique(explorer.panels["corrupted"][changed])) <= {0.0, 1.0}        # salt or pepper, nothing else
    assert 0.3 < changed.mean() < 0.6         # p = 0.5 replaces about half the pixels; a few already had that value
    explorer.kind.value = "gaussian"
    assert explorer.level.description == "sigma"


def test_picking_another_image_redraws_it(explorer):
    explorer.picker.value = 0
    first = explorer.panels["clean"].copy()
    explorer.picker.value = 3
    assert not np.array_equal(first, explorer.panels["clean"])


# -- exercise checks -------------------------------------------------------------------------------


def right_noise(x, sigma, generator):
    return (x + sigma * torch.randn(x.shape, generator=generator)).clamp(0, 1)


@pytest.mark.parametrize("fn, ok", [
    (right_noise, True),
    (lambda x, s, g: (x + s * s * torch.randn(x.shape, generator=g)).clamp(0, 1), False),     # variance
    (lambda x, s, g: (x + s * torch.rand(x.shape, generator=g)).clamp(0, 1), False),          # uniform
    (lambda x, s, g: x + s * torch.randn(x.shape, generator=g), False),                       # not clipped
    (lambda x, s, g: x.add_(s * torch.randn(x.shape, generator=g)).clamp_(0, 1), False),      # in place
    (lambda x, s, g: (x + s * torch.randn(x.shape)).clamp(0, 1), False),                      # ignores the seed
])
def test_check_gaussian_noise(fn, ok, capsys):
    assert checks.check_gaussian_noise(fn) is ok
    assert ("✅" in capsys.readouterr().out) is ok


@pytest.mark.parametrize("fn, ok, words", [
    (lambda m: 10 * math.log10(1 / m), True, "all 5"),
    (lambda m: 20 * math.log10(1 / m), False, "20·log10 is for an amplitude"),
    (lambda m: 10 * math.log(1 / m), False, "natural logarithm"),
    (lambda m: 10 * math.log10(m), False, "sign is flipped"),
    (lambda m: "20 dB", False, "return a number"),
])
def test_check_psnr(fn, ok, words, capsys):
    assert checks.check_psnr(fn) is ok
    assert words in capsys.readouterr().out


def test_checks_say_not_written_yet(capsys):
    def stub(*args):
        raise NotImplementedError

    assert checks.check_gaussian_noise(stub) is False and checks.check_psnr(stub) is False
    assert capsys.readouterr().out.count("not written yet") == 2


# -- the corruption pipeline exercise (check_random_corruption) ------------------------------------


def refuse_unknown_kinds(max_levels):
    unknown = [k for k in max_levels if k not in noise.NOISE_KINDS]
    if unknown:
        raise ValueError(f"unknown noise kind(s) {unknown}")


def _draw_and_corrupt(images, max_levels, generator):
    """The right answer's drawing and corrupting, without its check of the kinds."""
    kinds = list(max_levels)
    which = torch.randint(len(kinds), (images.shape[0],), generator=generator)
    fraction = torch.rand(images.shape[0], generator=generator)
    out = images.clone()
    for k, kind in enumerate(kinds):
        rows = which == k
        if rows.any():
            out[rows] = ah.corrupt(images[rows], kind, fraction[rows] * max_levels[kind], generator=generator)
    return out


def right_pipeline(images, max_levels, generator):
    refuse_unknown_kinds(max_levels)
    return _draw_and_corrupt(images, max_levels, generator)


def right_pipeline_one_image_at_a_time(images, max_levels, generator):
    refuse_unknown_kinds(max_levels)
    kinds = list(max_levels)
    rows = []
    for image in images:
        kind = kinds[int(torch.randint(len(kinds), (1,), generator=generator))]
        level = float(torch.rand(1, generator=generator)) * max_levels[kind]
        rows.append(ah.corrupt(image[None], kind, level, generator=generator))
    return torch.cat(rows)


def one_level_for_the_batch(images, max_levels, generator):
    kinds = list(max_levels)
    which = torch.randint(len(kinds), (images.shape[0],), generator=generator)
    level = float(torch.rand(1, generator=generator))
    out = images.clone()
    for k, kind in enumerate(kinds):
        rows = which == k
        if rows.any():
            out[rows] = ah.corrupt(images[rows], kind, level * max_levels[kind], generator=generator)
    return out


def one_kind_for_the_batch(images, max_levels, generator):
    kinds = list(max_levels)
    kind = kinds[int(torch.randint(len(kinds), (1,), generator=generator))]
    levels = torch.rand(images.shape[0], generator=generator) * max_levels[kind]
    return ah.corrupt(images, kind, levels, generator=generator)


def levels_ignore_the_maximum(images, max_levels, generator):
    kinds = list(max_levels)
    which = torch.randint(len(kinds), (images.shape[0],), generator=generator)
    fraction = torch.rand(images.shape[0], generator=generator)
    out = images.clone()
    for k, kind in enumerate(kinds):
        rows = which == k
        if rows.any():
            out[rows] = ah.corrupt(images[rows], kind, fraction[rows], generator=generator)
    return out


def global_random_state(images, max_levels, generator):
    kinds = list(max_levels)
    which = torch.randint(len(kinds), (images.shape[0],))                 # no generator
    fraction = torch.rand(images.shape[0])
    out = images.clone()
    for k, kind in enumerate(kinds):
        rows = which == k
        if rows.any():
            out[rows] = ah.corrupt(images[rows], kind, fraction[rows] * max_levels[kind])
    return out


def in_place(images, max_levels, generator):
    out = right_pipeline(images, max_levels, generator)
    images.copy_(out)
    return images


def unclipped_gaussian(images, max_levels, generator):
    kinds = list(max_levels)
    which = torch.randint(len(kinds), (images.shape[0],), generator=generator)
    fraction = torch.rand(images.shape[0], generator=generator)
    out = images.clone()
    for k, kind in enumerate(kinds):
        rows = which == k
        if not rows.any():
            continue
        levels = fraction[rows] * max_levels[kind]
        if kind == "gaussian":                                             # hand-written, without the clamp
            out[rows] = images[rows] + levels.view(-1, 1, 1, 1) * torch.randn(images[rows].shape, generator=generator)
        elif kind in noise.NOISE_KINDS:
            out[rows] = ah.corrupt(images[rows], kind, levels, generator=generator)
    return out


def refuses_unknown_kinds_only_when_drawn(images, max_levels, generator):
    return _draw_and_corrupt(images, max_levels, generator)               # ah.corrupt raises, but only if drawn


def silent_on_unknown_kinds(images, max_levels, generator):
    known = {k: v for k, v in max_levels.items() if k in noise.NOISE_KINDS}
    return right_pipeline(images, known, generator) if known else images.clone()


@pytest.mark.parametrize("fn", [right_pipeline, right_pipeline_one_image_at_a_time])
def test_check_random_corruption_accepts_right_answers(fn, capsys):
    state = torch.get_rng_state()
    assert checks.check_random_corruption(fn) is True
    assert "all 9 hidden tests pass" in capsys.readouterr().out
    assert torch.equal(torch.get_rng_state(), state)          # the hidden tests leave the learner's seed alone


def test_the_package_pipeline_passes_the_same_check(capsys):
    def with_the_package(images, max_levels, generator):   # RandomCorruption, handed the learner's generator
        corruption = ah.RandomCorruption(max_levels)
        corruption.generator = generator
        return corruption(images)

    assert checks.check_random_corruption(with_the_package) is True


@pytest.mark.parametrize("fn, words", [
    (one_level_for_the_batch, "every image got about the same level"),
    (one_kind_for_the_batch, "every image got the same kind"),
    (levels_ignore_the_maximum, "above the maximum"),
    (global_random_state, "generators seeded alike gave different results"),
    (in_place, "changed its input number 1 in place"),
    (unclipped_gaussian, "keep them in [0, 1]"),
    (silent_on_unknown_kinds, "accepted silently"),
    (refuses_unknown_kinds_only_when_drawn, "check every key of max_levels before drawing"),
    (lambda images, max_levels, generator: images[:, :, :14], "the input's shape"),
])
def test_check_random_corruption_names_each_slip(fn, words, capsys):
    assert checks.check_random_corruption(fn) is False
    out = capsys.readouterr().out
    assert words in out, out


def test_check_random_corruption_handles_stubs_and_crashes(capsys):
    def stub(images, max_levels, generator):
        raise NotImplementedError

    assert checks.check_random_corruption(stub) is False
    assert "not written yet" in capsys.readouterr().out
    assert checks.check_random_corruption(lambda images, max_levels, generator: images + images[:3]) is False
    assert "raised RuntimeError" in capsys.readouterr().out


# -- classical filters: the learned denoiser's non-learned baselines ------------------------------


@pytest.mark.parametrize("sigma", [0.5, 0.7, 1.0, 1.4, 2.0])
def test_gaussian_blur_matches_scipy(sigma):
    from scipy import ndimage

    x = images(4)
    ours = noise.gaussian_blur(x, sigma).numpy()
    reference = np.stack([ndimage.gaussian_filter(im[0].double().numpy(), sigma, mode="constant", truncate=3.0)
                          for im in x])[:, None]
    assert np.abs(ours - reference).max() < 1e-5


@pytest.mark.parametrize("size", [1, 3, 5])
def test_median_filter_matches_scipy(size):
    from scipy import ndimage

    x = images(4)
    ours = noise.median_filter(x, size).numpy()
    reference = ndimage.median_filter(x.numpy(), size=(1, 1, size, size), mode="constant")
    assert np.array_equal(ours, reference)


def test_the_median_filter_removes_isolated_salt_and_the_blur_keeps_the_mean():
    grey = torch.full((2, 1, 28, 28), 0.5)
    salted = grey.clone()
    salted[:, :, 10, 10] = 1.0                                               # one white pixel
    assert torch.equal(noise.median_filter(salted, 3), noise.median_filter(grey, 3))
    inner = noise.gaussian_blur(grey, 1.0)[..., 5:-5, 5:-5]                  # away from the black border
    assert torch.allclose(inner, torch.full_like(inner, 0.5))


def test_image_filter_is_a_model_for_evaluate():
    x = images(8)
    f = noise.ImageFilter("median", 3)
    assert torch.equal(f(x), noise.median_filter(x, 3)) and not list(f.parameters())
    assert "size=3" in repr(f)
    mse = ah.evaluate(noise.ImageFilter("gaussian_blur", 1.0), x, device="cpu")["mse_per_pixel"]
    assert mse == pytest.approx(float(((noise.gaussian_blur(x, 1.0) - x) ** 2).mean()), rel=1e-5)


def test_the_filters_treat_each_colour_channel_on_its_own_and_keep_float64():
    from scipy import ndimage

    x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    blurred = noise.gaussian_blur(x, 1.0)
    assert blurred.dtype == torch.float64
    reference = ndimage.gaussian_filter(x.numpy(), (0, 0, 1.0, 1.0), mode="constant", truncate=3.0)
    assert np.abs(blurred.numpy() - reference).max() < 1e-12               # float64 all the way
    median = noise.median_filter(x, 3)
    for c in range(3):
        assert median.dtype == torch.float64 and torch.equal(median[:, c:c + 1], noise.median_filter(x[:, c:c + 1], 3))


@pytest.mark.parametrize("fn", [noise.gaussian_blur, noise.median_filter])
def test_the_filters_name_themselves_and_what_they_got(fn):
    start = rf"^{fn.__name__} expects a \(B, C, H, W\) floating-point tensor of images, got "
    with pytest.raises(ValueError, match=start + r"shape \(1, 28, 28\), dtype torch.float32$"):
        fn(images(1)[0], 1)                                                  # one image without its batch axis
    with pytest.raises(ValueError, match=start + r"shape \(2, 1, 4, 4\), dtype torch.uint8$"):
        fn(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), 1)                    # bytes 0..255, not [0, 1]
    with pytest.raises(ValueError, match=start + "list$"):
        fn([[0.5]], 1)


@pytest.mark.parametrize("call, words", [
    (lambda: noise.gaussian_blur(images(2), 0.0), "sigma must be a finite number in (0, inf) (in pixels)"),
    (lambda: noise.gaussian_blur(images(2)[0], 1.0), "(B, C, H, W)"),
    (lambda: noise.median_filter(images(2), 4), "odd whole number"),
    (lambda: noise.median_filter(images(2), 3.0), "size must be an int >= 1 (an odd number of pixels), got 3.0"),
    (lambda: noise.ImageFilter("bilateral", 3), "not one of"),
    (lambda: noise.ImageFilter("median", 2), "odd whole number"),
])
def test_filters_refuse_bad_settings(call, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        call()
