"""Lesson 11's package code: the VQ-VAE, its quantiser and perplexity, the prior over code grids, ah.fit's
after_step hook, the code-grid widget and the exercise checks (right and wrong answers)."""

import math

import numpy as np
import pytest
import torch

import autoenc_helpers as ah
from autoenc_helpers import checks, vq, widgets

# -- the lookup, by hand ---------------------------------------------------------------------------

BOOK = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])           # three codes in 2-D


def test_nearest_code_by_hand():
    z = torch.tensor([[0.1, 0.1], [0.9, -0.2], [0.2, 1.5], [0.5, 0.0], [-3.0, 0.9]])
    # distances to (0,0), (1,0), (0,2): the last two are a tie (0.25, 0.25) and a far point nearest to (0,0)
    assert vq.nearest_code(z, BOOK).tolist() == [0, 1, 2, 0, 0]
    assert vq.nearest_code(z.reshape(5, 1, 2), BOOK).shape == (5, 1)          # any leading shape
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        vq.nearest_code(torch.zeros(4, 3), BOOK)
    with pytest.raises(ValueError, match=r"codebook of shape \(K, D\)"):
        vq.nearest_code(torch.zeros(4, 2), torch.zeros(3))


def test_nearest_code_is_not_the_largest_dot_product():
    book = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    assert vq.nearest_code(torch.tensor([[1.2, 0.0]]), book).item() == 0    # (1.2, 0) . (3, 0) is larger


def test_quantize_forward_is_the_codes_and_backward_the_identity():
    z_e = torch.tensor([[0.1, 0.1], [0.9, -0.2], [0.2, 1.5]]).T.reshape(1, 2, 1, 3).requires_grad_()
    book = BOOK.clone().requires_grad_()
    z_q, idx = vq.quantize(z_e, book)
    assert idx.tolist() == [[[0, 1, 2]]]
    assert torch.allclose(z_q.detach(), BOOK[[0, 1, 2]].T.reshape(1, 2, 1, 3))
    weights = torch.arange(6.0).reshape(1, 2, 1, 3)
    (z_q * weights).sum().backward()
    assert torch.equal(z_e.grad, weights)                                # straight through, unchanged
    assert book.grad is None                                             # the codebook learns from its own loss
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\), channels first"):
        vq.quantize(torch.zeros(1, 1, 3, 2), BOOK)


def test_a_plain_lookup_has_no_gradient_to_the_encoder():
    z_e = torch.randn(2, 2, 3, 3, requires_grad=True)
    idx = vq.nearest_code(z_e.permute(0, 2, 3, 1), BOOK)
    assert not BOOK[idx].requires_grad                                   # argmin cuts the graph


def test_usage_and_perplexity_by_hand():
    assert vq.code_usage(torch.tensor([[0, 0], [2, 0]]), 4).tolist() == [3, 0, 1, 0]
    assert vq.perplexity(torch.tensor([3, 3, 3, 3]), 8).item() == pytest.approx(1.0)
    assert vq.perplexity(torch.tensor([0, 1, 2, 3]), 4).item() == pytest.approx(4.0)
    assert vq.perplexity(torch.tensor([0, 0, 1, 1]), 8).item() == pytest.approx(2.0)     # unused codes add 0
    assert vq.perplexity(torch.tensor([0, 0, 0, 1]), 4).item() == pytest.approx(
        math.exp(0.75 * math.log(4 / 3) + 0.25 * math.log(4)), rel=1e-6)                 # 1.7548
    assert vq.grid_bits(49, 128) == pytest.approx(343.0) and vq.grid_bits(49, 64) == pytest.approx(294.0)
    with pytest.raises(ValueError, match="code index 5 is out of range; the codebook has entries 0..3"):
        vq.perplexity(torch.tensor([0, 5]), 4)
    with pytest.raises(TypeError, match="whole numbers"):
        vq.code_usage(torch.tensor([0.0, 1.0]), 4)
    with pytest.raises(ValueError, match="at least one chosen code"):
        vq.perplexity(torch.tensor([], dtype=torch.long), 4)


# -- the codebook module and its dead-code restarts ------------------------------------------------

def test_dead_codes_are_restarted_at_encoder_outputs():
    torch.manual_seed(0)
    quantizer = vq.VectorQuantizer(4, 2, restart_dead=True, dead_after=2)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[0.0, 0.0], [50.0, 50.0], [60.0, 60.0], [70.0, 70.0]]))
    z_e = torch.randn(3, 2, 2, 2) * 0.1 + torch.tensor([5.0, -5.0]).reshape(1, 2, 1, 1)   # all nearest code 0
    quantizer.train()
    quantizer(z_e)
    assert quantizer.after_step() == 0 and quantizer.idle_batches.tolist() == [0, 1, 1, 1]
    quantizer(z_e)
    assert quantizer.after_step() == 3                                  # codes 1-3 idle for 2 batches
    outputs = z_e.permute(0, 2, 3, 1).reshape(-1, 2)
    for k in (1, 2, 3):                                                 # each now sits on an encoder output
        assert (outputs - quantizer.codebook[k]).norm(dim=1).min() < 1e-6
    assert quantizer.restarts.item() == 3 and quantizer.idle_batches.tolist() == [0, 0, 0, 0]
    assert quantizer(z_e).indices.unique().numel() > 1                  # the restarted codes get chosen


def test_no_restarts_without_the_remedy_and_no_bookkeeping_in_eval():
    quantizer = vq.VectorQuantizer(4, 2, restart_dead=False, dead_after=1)
    before = quantizer.codebook.detach().clone()
    quantizer.train()
    quantizer(torch.full((1, 2, 2, 2), 3.0))
    assert quantizer.after_step() == 0 and torch.equal(quantizer.codebook.detach(), before)
    assert (quantizer.idle_batches == 1).sum() == 3                      # still counted
    quantizer.eval()
    quantizer(torch.zeros(1, 2, 2, 2))
    assert quantizer.after_step() == 0 and (quantizer.idle_batches == 1).sum() == 3   # eval records nothing


def test_fit_calls_after_step_once_per_optimiser_step():
    class Counted(ah.MLPAutoencoder):
        calls = 0

        def after_step(self):
            self.calls += 1

    model = Counted(latent_dim=2, hidden=(8,))
    ah.fit(model, torch.rand(250, 1, 28, 28), torch.rand(50, 1, 28, 28), epochs=2, batch_size=100,
           progress=False, log=False, device="cpu")
    assert model.calls == 2 * 3                                          # 3 batches per epoch, not the evaluation
    plain = ah.MLPAutoencoder(latent_dim=2, hidden=(8,))                 # a model without the method trains as before
    ah.fit(plain, torch.rand(50, 1, 28, 28), epochs=1, progress=False, log=False, device="cpu")


# -- the VQ-VAE ---------------------------------------------------------------------------------

def test_vqvae_shapes_at_every_layer():
    model = vq.VQVAE(n_codes=32, code_dim=6, channels=(4, 8, 8, 8))
    x = torch.rand(3, 1, 28, 28)
    shapes = []
    h = x
    for layer in model.encoder:
        h = layer(h)
        shapes.append(tuple(h.shape))
    assert shapes[::2] == [(3, 4, 28, 28), (3, 8, 14, 14), (3, 8, 7, 7), (3, 8, 7, 7), (3, 6, 7, 7)]
    out = model(x)
    assert tuple(out.logits.shape) == (3, 1, 28, 28) and tuple(out.indices.shape) == (3, 7, 7)
    assert tuple(out.z_e.shape) == tuple(out.e.shape) == (3, 6, 7, 7)
    grids = model.encode(x)
    assert grids.dtype == torch.long and torch.equal(grids, out.indices)
    images = model.decode(grids)
    assert images.shape == (3, 1, 28, 28) and 0 < images.min() and images.max() < 1
    assert torch.allclose(model.reconstruct(x), images)
    assert model.positions == 49 and model.bits_per_image() == pytest.approx(49 * 5)


def test_vqvae_bad_inputs_are_named():
    model = vq.VQVAE(n_codes=16, code_dim=4, channels=(4, 4, 4, 4))
    with pytest.raises(ValueError, match=r"code grids of shape \(batch, 7, 7\), got \(2, 49\)"):
        model.decode(torch.zeros(2, 49, dtype=torch.long))
    with pytest.raises(ValueError, match="code index 16 is out of range"):
        model.decode(torch.full((1, 7, 7), 16))
    with pytest.raises(TypeError, match="whole numbers"):
        model.decode(torch.zeros(1, 7, 7))
    with pytest.raises(ValueError, match=r"\(batch, 1, 28, 28\)"):
        model(torch.zeros(2, 28, 28))
    with pytest.raises(ValueError, match="n_codes must be an int >= 2"):
        vq.VQVAE(n_codes=1)
    with pytest.raises(ValueError, match=r"channels \(c1, c2, c3, c4\) must be 4 positive ints"):
        vq.VQVAE(channels=(4, 4))


def test_the_objective_and_its_settings():
    torch.manual_seed(0)
    model = vq.VQVAE(n_codes=16, code_dim=4, channels=(4, 4, 4, 4))
    x = torch.rand(5, 1, 28, 28)
    terms = vq.vq_objective(beta=0.5)(model, x, x)
    assert list(terms) == ["total_loss", "recon_nats_per_image", "codebook_loss_per_image",
                           "commitment_loss_per_image", "perplexity", "codes_used"]
    assert terms["codebook_loss_per_image"].item() == pytest.approx(terms["commitment_loss_per_image"].item())
    assert terms["total_loss"].item() == pytest.approx(terms["recon_nats_per_image"].item()
                                                       + 1.5 * terms["codebook_loss_per_image"].item(), rel=1e-5)
    assert 1 <= terms["perplexity"].item() <= terms["codes_used"].item() <= 16
    assert vq.vq_objective(beta=0.5).settings == {"beta": 0.5, "codebook_weight": 1.0}
    with pytest.raises(ValueError, match=r"beta must be a finite number in \[0, inf\)"):
        vq.vq_objective(beta=-1)
    with pytest.raises(TypeError, match="VQVAEOutput"):
        vq.vq_objective()(ah.MLPAutoencoder(), x, x)


def test_codebook_loss_moves_only_the_codebook_and_commitment_only_the_encoder():
    torch.manual_seed(0)
    model = vq.VQVAE(n_codes=16, code_dim=4, channels=(4, 4, 4, 4))
    x = torch.rand(4, 1, 28, 28)
    out = model(x)
    codebook = (out.z_e.detach() - out.e).pow(2).sum()
    commitment = (out.z_e - out.e.detach()).pow(2).sum()
    book_grad = torch.autograd.grad(codebook, [model.quantizer.codebook, model.encoder[0].weight], allow_unused=True,
                                    retain_graph=True)
    assert book_grad[0].abs().sum() > 0 and book_grad[1] is None
    commit_grad = torch.autograd.grad(commitment, [model.quantizer.codebook, model.encoder[0].weight],
                                      allow_unused=True, retain_graph=True)
    assert commit_grad[0] is None and commit_grad[1].abs().sum() > 0
    recon = ah.bce_with_logits(out.logits, x, pixels="sum", batch="mean")
    recon_grad = torch.autograd.grad(recon, [model.quantizer.codebook, model.encoder[0].weight], allow_unused=True)
    assert recon_grad[0] is None and recon_grad[1].abs().sum() > 0      # straight-through reaches the encoder


def test_cached_fit_keys_the_objective_and_the_remedy():
    train = torch.rand(20, 1, 28, 28)
    torch.manual_seed(0)
    key = ah.cache.settings_of(vq.VQVAE(n_codes=8, code_dim=2), train, objective=vq.vq_objective())
    torch.manual_seed(0)
    other_beta = ah.cache.settings_of(vq.VQVAE(n_codes=8, code_dim=2), train, objective=vq.vq_objective(beta=0))
    torch.manual_seed(0)
    restart = ah.cache.settings_of(vq.VQVAE(n_codes=8, code_dim=2, restart_dead=True), train,
                                   objective=vq.vq_objective())
    objective = key["fit"]["objective"]
    assert objective["name"] == "vq_objective" and set(objective["settings"]) == {"beta", "codebook_weight"}
    assert float(objective["settings"]["beta"]) == 0.25 and float(objective["settings"]["codebook_weight"]) == 1.0
    assert len({ah.cache._digest(s) for s in (key, other_beta, restart)}) == 3


FASHION_SIZES = (4_000, 500)          # the fashion fixture (tests/conftest.py): training and held-out images


@pytest.fixture(scope="module")
def trained(fashion):
    train, test = fashion
    ah.set_seed(0)
    model = vq.VQVAE(n_codes=32, code_dim=8, channels=(8, 16, 16, 16), restart_dead=True)
    ah.fit(model, train, epochs=8, lr=2e-3, objective=vq.vq_objective(), progress=False, log=False, device="cpu")
    return model


def test_the_vqvae_learns_better_than_the_mean_image(fashion, trained):
    train, test = fashion
    error = ((trained.reconstruct(test.images) - test.images) ** 2).flatten(1).sum(1).mean()
    mean_image = train.images.mean(0, keepdim=True)
    baseline = ((mean_image - test.images) ** 2).flatten(1).sum(1).mean()
    assert error < 0.6 * baseline, (error, baseline)
    assert (vq.code_usage(trained.encode(test.images), 32) > 0).sum() >= 16       # restarts keep codes in use


# -- the prior ---------------------------------------------------------------------------------

def test_masked_convolutions_see_only_earlier_positions():
    torch.manual_seed(0)
    prior = vq.CodePrior(n_codes=10, channels=8, layers=3)
    grids = torch.randint(0, 10, (1, 7, 7))
    base = prior(grids)
    for r, c in [(0, 0), (3, 4), (6, 6), (2, 0)]:
        changed = grids.clone()
        changed[0, r, c] = (changed[0, r, c] + 1) % 10
        diff = (prior(changed) - base).abs().amax(1)[0]                 # (7, 7): which logits moved
        order = torch.arange(49).reshape(7, 7)
        i = r * 7 + c
        assert diff[order <= i].max() == 0                              # itself and everything before: untouched
        if i < 48:
            assert diff[order == i + 1].max() > 0                       # the next position sees it
    mask_a = vq.MaskedConv2d("A", 1, 1, 3).mask
    assert mask_a.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert vq.MaskedConv2d("B", 1, 1, 3).mask.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="kind must be 'A' or 'B'"):
        vq.MaskedConv2d("C", 1, 1, 3)


def test_prior_bits_sample_and_bad_grids():
    prior = vq.CodePrior(n_codes=10, channels=8, layers=1)
    grids = torch.randint(0, 10, (4, 7, 7))
    bits = prior.bits(grids)
    nats = torch.nn.functional.cross_entropy(prior(grids), grids, reduction="none").sum((1, 2))
    assert torch.allclose(bits, nats / math.log(2))
    assert torch.allclose(prior.bits(grids.unsqueeze(1).float()), bits)          # the (B, 1, 7, 7) float form
    draws = prior.sample(5, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (5, 7, 7) and draws.dtype == torch.long and 0 <= draws.min() and draws.max() < 10
    assert torch.equal(draws, prior.sample(5, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="whole numbers"):
        prior(torch.rand(2, 1, 7, 7))
    with pytest.raises(ValueError, match=r"\(batch, 7, 7\) or \(batch, 1, 7, 7\), got \(2, 8, 8\)"):
        prior(torch.zeros(2, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"temperature must be a finite number in \(0, inf\)"):
        prior.sample(2, temperature=0)


def test_the_prior_learns_better_than_code_frequencies(fashion, trained):
    train, test = fashion
    grids, held = vq.code_grids(trained, train), vq.code_grids(trained, test)
    assert grids.shape == (4_000, 1, 7, 7) and torch.equal(grids, grids.round())
    ah.set_seed(0)
    prior = vq.CodePrior(n_codes=32, channels=32, layers=3)
    history = ah.fit(prior, grids, held, objective=vq.prior_objective(), epochs=4, progress=False, log=False,
                     device="cpu")
    bits = history.last("test", "bits_per_grid")
    # the baseline: each position's code drawn independently from the training grids' code frequencies
    p = vq.code_usage(grids.long(), 32).double().clamp_min(1) / grids.numel()
    independent = float(-(p.log2()[held.long().flatten()]).sum() / held.shape[0])
    assert bits < independent < vq.grid_bits(49, 32), (bits, independent)


# -- the widget ---------------------------------------------------------------------------------

def test_code_grid_panels_is_a_pure_function(fashion, trained):
    _, test = fashion
    grid = trained.encode(test.images[:1])[0]
    edited = grid.clone()
    edited[0, 0] = (edited[0, 0] + 1) % 32
    a = widgets.code_grid_panels(trained, grid, edited)
    assert {k: v.shape for k, v in a.items()} == {"original": (28, 28), "edited": (28, 28), "change": (28, 28)}
    assert np.array_equal(a["original"], widgets.code_grid_panels(trained, grid, grid)["edited"])
    assert np.allclose(a["change"], np.abs(a["edited"] - a["original"]))
    assert a["change"][20:, 20:].max() == 0                             # a corner edit stays away from the far corner
    with pytest.raises(ValueError, match=r"grid must be one code grid of shape \(7, 7\)"):
        widgets.code_grid_panels(trained, grid[None], edited)


def test_editing_one_position_changes_the_image_locally(fashion, trained):
    _, test = fashion
    explorer = widgets.CodeGridExplorer(trained, test.images, labels=test.labels, classes=test.classes)
    assert explorer.renders == 1 and explorer.position == (3, 3)
    assert explorer.entry.value == int(explorer.grid[3, 3]) and explorer.entry.continuous_update is False
    first = explorer.panels["edited"].copy()
    explorer.entry.value = (explorer.entry.value + 7) % 32              # another codebook entry at (3, 3)
    assert explorer.renders == 2 and int(explorer.edited[3, 3]) == explorer.entry.value
    assert (explorer.edited != explorer.grid).sum() == 1
    assert not np.allclose(explorer.panels["edited"], first)
    assert np.array_equal(explorer.panels["original"], first)
    panels = widgets.code_grid_panels(trained, explorer.grid, explorer.edited)
    assert np.allclose(explorer.panels["edited"], panels["edited"])
    shown = explorer.figure.axes[2].images[0].get_array()
    assert np.allclose(shown, explorer.panels["edited"])                # the figure shows the state
    assert "1 position(s) edited" in explorer.readout.value


def test_moving_the_position_moves_the_outline_and_keeps_edits(fashion, trained):
    _, test = fashion
    explorer = widgets.CodeGridExplorer(trained, test.images)
    explorer.set_code(1, 2, (int(explorer.grid[1, 2]) + 3) % 32)
    explorer.row.value = 5
    assert explorer.position == (5, 2) and explorer.entry.value == int(explorer.edited[5, 2])
    assert explorer._cell.get_xy() == (1.5, 4.5)                        # the red square sits on (5, 2)
    assert (explorer.edited != explorer.grid).sum() == 1                # the edit at (1, 2) is kept
    explorer.col.value = 0
    explorer.entry.value = (explorer.entry.value + 1) % 32
    assert (explorer.edited != explorer.grid).sum() == 2
    renders = explorer.renders
    explorer.reset_button.click()
    assert explorer.renders == renders + 1 and torch.equal(explorer.edited, explorer.grid)
    assert explorer.panels["change"].max() == 0
    explorer.picker.value = 4
    assert explorer.index == 4 and torch.equal(explorer.grid, trained.encode(test.images[4:5])[0])


def test_code_grid_explorer_bad_inputs_are_named(fashion, trained):
    _, test = fashion
    with pytest.raises(TypeError, match="needs a VQ-VAE"):
        widgets.CodeGridExplorer(ah.MLPAutoencoder(), test.images)
    with pytest.raises(ValueError, match=r"row must be an int in 0..6, got 7"):
        widgets.CodeGridExplorer(trained, test.images, row=7)
    explorer = widgets.CodeGridExplorer(trained, test.images)
    with pytest.raises(ValueError, match=r"entry must be in 0..31, got 32"):
        explorer.set_code(0, 0, 32)


# -- the exercise checks ------------------------------------------------------------------------

def good_quantize(z_e, codebook):
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])                   # (B*H*W, D)
    idx = torch.cdist(flat, codebook).argmin(1).reshape(z_e.shape[0], *z_e.shape[2:])
    e = codebook[idx].permute(0, 3, 1, 2)
    return z_e + (e - z_e).detach(), idx


def _quantize_variant(pick, straight_through=True, channels_last=False, flat=False):
    def fn(z_e, codebook):
        b, d, h, w = z_e.shape
        idx = pick(z_e, codebook).reshape(b, h, w)
        e = codebook[idx].permute(0, 3, 1, 2)
        z_q = z_e + (e - z_e).detach() if straight_through else e
        if channels_last:
            z_q = z_q.permute(0, 2, 3, 1)
        return z_q, idx.flatten() if flat else idx
    return fn


def _nearest(z_e, codebook):
    return vq.nearest_code(z_e.permute(0, 2, 3, 1), codebook)


def test_quantize_check_accepts_right_answers(capsys):
    assert checks.check_quantize(vq.quantize)
    assert checks.check_quantize(good_quantize)
    assert "all 6 hidden tests pass" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (_quantize_variant(_nearest, straight_through=False), "codebook[indices] alone"),
    (_quantize_variant(lambda z, cb: (z.permute(0, 2, 3, 1) @ cb.T).argmax(-1)), "largest dot product"),
    (_quantize_variant(lambda z, cb: (z.permute(0, 2, 3, 1).unsqueeze(-2) - cb).pow(2).sum(-1).argmax(-1)),
     "farthest"),
    (_quantize_variant(lambda z, cb: vq.nearest_code(z.reshape(-1, z.shape[1]), cb)), "permute(0, 2, 3, 1)"),
    (_quantize_variant(_nearest, channels_last=True), "channels last"),
    (_quantize_variant(_nearest, flat=True), "one per position"),
    (lambda z, cb: (z, _nearest(z, cb)), "z_q equals z_e"),
    (lambda z, cb: (z + (cb[_nearest(z, cb)].permute(0, 3, 1, 2) - z).detach() * 1.0 + z * 1.0 - z.detach(),
                    _nearest(z, cb)), "changed on the way"),
    (lambda z, cb: "codes", "return two tensors"),
])
def test_quantize_check_names_each_slip(wrong, words, capsys):
    assert not checks.check_quantize(wrong)
    assert words in capsys.readouterr().out


def test_checks_handle_a_stub_and_a_crash(capsys):
    def stub(*args):
        raise NotImplementedError
    assert not checks.check_quantize(stub) and not checks.check_perplexity(stub)
    assert capsys.readouterr().out.count("not written yet") == 2
    assert not checks.check_quantize(lambda z, cb: 1 / 0) and not checks.check_perplexity(lambda i, k: 1 / 0)
    assert "raised ZeroDivisionError" in capsys.readouterr().out


def _shares(indices, k):
    counts = torch.bincount(indices.flatten(), minlength=k).double()
    return counts / counts.sum(), counts


def test_perplexity_check_accepts_right_answers(capsys):
    assert checks.check_perplexity(vq.perplexity)

    def by_hand(indices, k):
        p, _ = _shares(indices, k)
        p = p[p > 0]
        return float(2 ** -(p * p.log2()).sum())                          # bits and 2 ** bits: also right
    assert checks.check_perplexity(by_hand)
    assert "all 7 hidden tests pass" in capsys.readouterr().out


def _entropy(indices, k):
    p, _ = _shares(indices, k)
    p = p[p > 0]
    return float(-(p * p.log()).sum())


@pytest.mark.parametrize("wrong, words", [
    (_entropy, "that is the entropy in nats"),
    (lambda i, k: _entropy(i, k) / math.log(2), "entropy in bits"),
    (lambda i, k: math.exp(_entropy(i, k) / math.log(2)), "raised e to it"),
    (lambda i, k: float((_shares(i, k)[1] > 0).sum()), "distinct codes"),
    (lambda i, k: float(torch.exp(-(_shares(i, k)[0] * _shares(i, k)[0].log()).sum())), "NaN"),
    (lambda i, k: float(torch.exp(-((_shares(i, k)[1] / k)[_shares(i, k)[1] > 0]
                                    * (_shares(i, k)[1] / k)[_shares(i, k)[1] > 0].log()).sum())), "not by K"),
    (lambda i, k: torch.ones(k), "return one number"),
])
def test_perplexity_check_names_each_slip(wrong, words, capsys):
    assert not checks.check_perplexity(wrong)
    assert words in capsys.readouterr().out


def test_fit_checks_a_code_prior_s_inputs_against_its_codes_not_against_pixel_values():
    prior = vq.CodePrior(n_codes=4, channels=8, layers=1)
    grids = torch.randint(0, 4, (6, 1, 7, 7)).float()
    ah.fit(prior, grids, objective=vq.prior_objective(), epochs=1, progress=False, log=False, device="cpu")
    with pytest.raises(ValueError, match="values run from 0 to 9; CodePrior takes values from 0 to 3"):
        ah.fit(prior, grids * 3, objective=vq.prior_objective(), epochs=1, progress=False, log=False, device="cpu")


def test_picking_another_image_changes_the_picture_even_when_two_grids_are_the_same():
    """An untrained VQ-VAE (as in smoke mode) may give every image the same code grid: the panel still says
    which image's grid it shows, so picking another image never leaves the learner looking at an unchanged figure."""
    torch.manual_seed(0)
    model = vq.VQVAE(n_codes=8, code_dim=2)
    images = torch.zeros(3, 1, 28, 28)                                         # identical images: identical grids
    explorer = widgets.CodeGridExplorer(model, images)
    assert explorer.figure.axes[0].get_title().startswith("code grid of image 0")
    explorer.picker.value = 2
    assert explorer.figure.axes[0].get_title().startswith("code grid of image 2")
    assert torch.equal(explorer.grids[0], explorer.grids[2])
