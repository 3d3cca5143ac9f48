"""The course's lessons in one table, and README's lesson table written from it.

A lesson's title and study time live in its notebook's first cell, and nowhere else; what README says it
teaches and the seconds its full-mode run may take (on a quiet 2-core CPU, ``python3 benchmarks/benchmark.py
--parts notebooks`` measures it) live here. A new lesson is one notebook and one row below, then::

    python3 tools/notebooks.py readme      # rewrites the table between README's LESSONS markers

``tests/test_repository.py`` fails when README's table is not what this writes, and when a notebook has no
row here (or a row has no notebook).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

__all__ = ["Lesson", "LESSONS", "TOTAL_BUDGET_S", "title", "study_minutes", "readme_table", "write_readme"]

ROOT = Path(__file__).resolve().parent.parent


class Lesson(NamedTuple):
    budget_s: int   # full mode, 2-core CPU, top to bottom: what the benchmark's notebook part holds the run to
    teaches: str    # README's "what it teaches" cell


LESSONS: dict[str, Lesson] = {
    "01_vanilla_autoencoder": Lesson(
        budget_s=180,
        teaches=('encoder, code and decoder built by hand, the training loop written out once; the output activation '
                 'against the pixel range; a 3-number code that sorts clothing without labels; the autoencoder against'
                 ' PCA as the code grows; why codes drawn from a fitted Gaussian decode poorly as the code grows, '
                 'which leads to the VAE')),
    "02_denoising_autoencoder": Lesson(
        budget_s=180,
        teaches=('Gaussian, masking and salt-and-pepper corruption written by hand; a denoiser against the noisy '
                 'input, a plain AE and tuned blur and median filters, PSNR against noise level; where learning pays '
                 'and why texture is lost; denoising, scores and diffusion; a live noise widget')),
    "03_sparse_autoencoder": Lesson(
        budget_s=180,
        teaches=('an over-complete layer with L1 and KL sparsity penalties: what each constrains (KL the mean '
                 'activation, L1 the size, which means something only with unit-length decoder columns); sparsity '
                 'measures that rescaling cannot fool; where dead units come from; what sparsity costs in '
                 'reconstruction error')),
    "04_variational_autoencoder": Lesson(
        budget_s=240,
        teaches=('the latent-variable model and the ELBO derived; the VAE built by hand; the negative ELBO in nats per'
                 ' image and its importance-weighted gap to log p(x); a plain AE with a fitted Gaussian against the '
                 'VAE in 2-D and 20-D; prior samples, the latent grid, a traversal widget')),
    "05_reparameterization_trick": Lesson(
        budget_s=240,
        teaches=("why `sample()` blocks the encoder's gradient and, in a VAE, silently trains it on the KL alone; z = "
                 'μ + σε; the log-variance head against a σ head over seeds; pathwise against score-function gradient '
                 'variance: closed forms, baselines, and a case where the score function wins')),
    "06_kl_and_loss_scaling": Lesson(
        budget_s=240,
        teaches=("the closed-form KL checked against `torch.distributions`; what the KL charges for; the loss's "
                 'reductions on one batch; the same VAE under four conventions; why KL / (batch x pixels) weakens the '
                 'KL; the reductions in public code')),
    "07_beta_and_posterior_collapse": Lesson(
        budget_s=240,
        teaches=('the reconstruction factor as 1/β; the rate-distortion curve of six trained VAEs with a slider; '
                 'posterior collapse under the true ELBO; KL warm-up over two seeds; free bits and how it fails; what '
                 "β > 1 buys; latent diffusion's weak KL")),
    "08_convolutional_vae": Lesson(
        budget_s=300,
        teaches=('transposed convolutions, output sizes and the checkerboard; the conv VAE layer by layer; on circles,'
                 ' the code against the true radius over three seeds and where a plain AE fails; MLP against conv VAE '
                 'on Fashion-MNIST with run-to-run noise; a traversal widget')),
    "09_applications": Lesson(
        budget_s=300,
        teaches=('anomaly detection by reconstruction error: a threshold chosen on validation images for a false-alarm'
                 ' rate, ROC and AUC, easy and hard classes; why dark, low-ink images look normal; frozen features '
                 'compared fairly (pixels, PCA, codes, VAE means; tuned penalty, 10 paired draws)')),
    "10_conditional_vae": Lesson(
        budget_s=300,
        teaches=('the class-conditional VAE: its code space, ELBO against the importance-weighted log-likelihood, a '
                 "class selector with sliders; Sohn et al.'s structured-output CVAE completing bottom halves against a"
                 " deterministic network's blurry mean; the course's ending and a reading list")),
    "11_vq_vae": Lesson(
        budget_s=300,
        teaches=('discrete codes: a codebook and the straight-through gradient; what the codebook and commitment '
                 'losses each do; codebook collapse and dead-code restarts; bits against the conv VAE; why generating '
                 'needs a prior over code grids (a small PixelCNN), as in VQGAN and latent diffusion; a widget that '
                 'edits one code')),
    "12_distributed_training": Lesson(
        budget_s=300,
        teaches=('appendix: `DistributedDataParallel` under `torchrun` with two CPU processes: sharding, the '
                 "all-reduce checked by hand, the global batch, rank 0's checkpoint; several machines")),
}
"""notebooks/<key>.ipynb -> its row."""

TOTAL_BUDGET_S = 25 * 60
"""All lessons' full-mode runs together, in seconds."""

BEGIN, END = "<!-- LESSONS: written by `python3 tools/notebooks.py readme` -->", "<!-- /LESSONS -->"
_HEADING = re.compile(r"^# (?P<number>\d\d) · (?P<title>.+)$", re.M)


def _first_cell(path: Path) -> str:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return nb.cells[0].source if nb.cells and nb.cells[0].cell_type == "markdown" else ""


def title(path: str | Path) -> str:
    """The lesson's title, from its first cell's heading ``# NN · Title``."""
    match = _HEADING.search(_first_cell(Path(path)))
    if match is None:
        raise ValueError(f"{Path(path).name}: its first cell has no heading `# NN · Title`")
    return match["title"].strip()


def study_minutes(path: str | Path) -> int:
    """The study time its header states, in minutes."""
    from tools.notebooks import STUDY_TIME

    match = STUDY_TIME.search(_first_cell(Path(path)))
    if match is None:
        raise ValueError(f"{Path(path).name}: its first cell has no line `**Study time:** about N minutes.`")
    return int(match["minutes"])


def readme_table(root: str | Path = ROOT) -> str:
    """README's lesson table, one row per notebook, in file order."""
    notebooks = sorted(Path(root, "notebooks").glob("*.ipynb"))
    missing = [p.stem for p in notebooks if p.stem not in LESSONS]
    gone = sorted(set(LESSONS) - {p.stem for p in notebooks})
    if missing or gone:
        raise ValueError("tools/lessons.py and notebooks/ disagree: " +
                         "; ".join([f"no row for {', '.join(missing)}"] * bool(missing) +
                                   [f"no notebook for {', '.join(gone)}"] * bool(gone)))
    rows = ["| # | lesson | what it teaches | study time |", "|---|---|---|---|"]
    for path in notebooks:
        rows.append(f"| {path.name[:2]} | [{title(path)}](notebooks/{path.name}) | {LESSONS[path.stem].teaches} | "
                    f"{study_minutes(path)} min |")
    return "\n".join(rows)


def write_readme(root: str | Path = ROOT) -> bool:
    """Put :func:`readme_table` between README's markers; True when README changed."""
    readme = Path(root, "README.md")
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise ValueError(f"README.md has no lines {BEGIN} and {END} around its lesson table")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    new = text[:start] + "\n" + readme_table(root) + "\n" + text[end:]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text
