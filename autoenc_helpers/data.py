"""Datasets, held in memory, and the batches the training loop takes from them.

Three datasets, all 1x28x28 grey images with values in [0, 1]:

- ``fashion_mnist`` (the course default): 60,000 train and 10,000 test images
  of clothing in 10 classes.
- ``mnist``: the handwritten digits, same sizes.
- ``circles``: one centred circle per image whose radius is the only thing
  that varies; generated from a seed, nothing to download. The label is the
  radius as a fraction of the image side (0.03 to 0.47).

Each split is read once into a uint8 tensor and cached, then turned into
float32 on the device the caller asks for. Batches are index tensors into that
one big tensor (``x[idx]``), not a per-image ``DataLoader``: for 28x28 images
the per-item Python work of a ``DataLoader`` costs more than the model itself
(``python3 benchmarks/benchmark.py`` in a checkout measures by how much).

Where image files are looked for, in order:

1. ``data/`` in the course checkout, or the folder in ``AUTOENC_DATA``
   (torchvision's layout: ``<root>/FashionMNIST/raw/train-images-idx3-ubyte[.gz]``);
2. the system copy of the Debian/Ubuntu package ``dataset-fashion-mnist``
   (``/usr/share/datasets/fashion-mnist``), Fashion-MNIST only;
3. torchvision's download into the folder of step 1, which checks each
   file's checksum.
"""

from __future__ import annotations

import functools
import gzip
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .validate import positive_int

__all__ = [
    "DATASETS",
    "SPLITS",
    "FASHION_CLASSES",
    "MNIST_CLASSES",
    "SYSTEM_FASHION_MNIST",
    "DatasetNotFoundError",
    "ImageSet",
    "data_root",
    "load_dataset",
    "make_circles",
    "batch_indices",
    "dataset_files",
    "clear_cache",
    "images_of",
]

DATASETS = ("fashion_mnist", "mnist", "circles")
SPLITS = ("train", "test")

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
MNIST_CLASSES = tuple(str(d) for d in range(10))

SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

# torchvision's folder name for each downloadable dataset, and the class it uses.
_TORCHVISION = {"fashion_mnist": "FashionMNIST", "mnist": "MNIST"}
_FILES = {  # split -> (images file, labels file), without ".gz"
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIRCLES_DEFAULT_SIZE = {"train": 10_000, "test": 2_000}
_CIRCLES_SEED = {"train": 0, "test": 1}  # one fixed seed per split: the splits never share an image


class DatasetNotFoundError(FileNotFoundError):
    """No copy of a dataset was found and it could not be downloaded."""


class CorruptDataFileError(ValueError):
    """A data file is there but cannot be read (an interrupted download, a truncated or foreign file)."""


@dataclass
class ImageSet:
    """One split of a dataset, in memory.

    images: (N, 1, 28, 28) float32, values in [0, 1]
    labels: (N,) int64 class indices, or float32 radii for ``circles``
    classes: the class names, or None where the label is a number (circles)
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...] | None
    name: str
    split: str
    source: str

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index, note: str | None = None) -> "ImageSet":
        """The images (and labels) picked by ``index``: a boolean mask of length N or a tensor of positions.

        ``train.subset(train.labels < 5)`` keeps the first five classes; ``note`` is added to the
        source, e.g. ``"normal classes"``. Class names stay as they are, so label 7 is still "Sneaker".
        """
        if not torch.is_tensor(index):
            index = torch.as_tensor(index)
        index = index.to(self.images.device)
        if index.dtype == torch.bool and index.shape != (len(self),):
            raise ValueError(f"a boolean mask must have one entry per image, shape ({len(self)},), "
                             f"got {tuple(index.shape)}")
        if index.dtype != torch.bool and (index.is_floating_point() or index.dim() != 1):
            raise ValueError(f"index must be a boolean mask or a 1-D tensor of whole-number positions, got "
                             f"dtype {index.dtype} and shape {tuple(index.shape)}")
        source = self.source if note is None else f"{self.source}, {note}"
        return ImageSet(self.images[index], self.labels[index], self.classes, self.name, self.split, source)

    def __repr__(self) -> str:
        lo, hi = self.images.min().item(), self.images.max().item()
        return (f"ImageSet({self.name}/{self.split}: {len(self):,} images of shape "
                f"{tuple(self.images.shape[1:])}, values in [{lo:.2f}, {hi:.2f}], "
                f"on {self.images.device.type}, from {self.source})")


# --------------------------------------------------------------------------------------
# Where files live


def images_of(data):
    """The images of an ImageSet, or ``data`` itself: every helper that takes "an ImageSet or a tensor" reads this."""
    return data.images if isinstance(data, ImageSet) else data


def data_root() -> Path:
    """The folder datasets are read from and downloaded into.

    ``AUTOENC_DATA`` when set; else ``data/`` of the course checkout when the
    package runs from one; else ``./data`` under the current folder (an install
    from a git URL, on Colab for example).
    """
    env = os.environ.get("AUTOENC_DATA")
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "autoenc_helpers").is_dir():
        return checkout / "data"
    return Path.cwd() / "data"


def _check_name_split(name: str, split: str) -> tuple[str, str]:
    key = str(name).strip().lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for {key}; expected one of {SPLITS}")
    return key, split


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file (the MNIST file format), plain or gzipped, into a uint8 array of ``ndim`` axes.

    Raises :class:`CorruptDataFileError`, naming the file and what is wrong with it, when it cannot be
    read: a truncated or damaged gzip stream, another format, or a header that does not fit the data.
    """
    def corrupt(what: str) -> CorruptDataFileError:
        return CorruptDataFileError(f"{path} is damaged or not a dataset file ({what}); delete it and run again, "
                                    "so that the next copy in the lookup order (or a fresh download) is used")

    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:      # BadGzipFile is an OSError; a cut-off stream an EOFError
        raise corrupt(f"{type(err).__name__}: {err}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise corrupt(f"not an IDX file of unsigned bytes, header {raw[:4]!r}")
    if raw[3] != ndim:
        raise corrupt(f"the header says {raw[3]} axes, {'a labels' if ndim == 1 else 'an images'} file has {ndim}")
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise corrupt(f"the file ends inside its header ({len(raw)} bytes)")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims))
    if len(raw) - offset != expected:
        raise corrupt(f"the header promises {dims} = {expected:,} bytes, the file holds {len(raw) - offset:,}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _folders(name: str, root: Path) -> list[tuple[Path, str]]:
    """The folders to look in, with a short description for messages."""
    places = [(root / _TORCHVISION[name] / "raw", f"the data folder ({root / _TORCHVISION[name] / 'raw'})")]
    if name == "fashion_mnist":
        places.append((SYSTEM_FASHION_MNIST, f"the system copy ({SYSTEM_FASHION_MNIST})"))
    return places


def _download(name: str, split: str, root: Path) -> None:
    """torchvision's download (it checks every file's MD5). Raises on any failure."""
    import torchvision

    cls = getattr(torchvision.datasets, _TORCHVISION[name])
    cls(root=str(root), train=(split == "train"), download=True)


def _read_pair(name: str, split: str, images_file: Path, labels_file: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(_read_idx(images_file, 3).copy())                        # (N, 28, 28) uint8
    labels = torch.from_numpy(_read_idx(labels_file, 1).astype(np.int64))              # (N,)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise CorruptDataFileError(
            f"{name}/{split}: {images_file} holds {images.shape[0]} images of {tuple(images.shape[1:])} and "
            f"{labels_file} {labels.shape[0]} labels; expected N images of (28, 28) and N labels. Delete the "
            "files that do not belong together and run again")
    return images, labels


@functools.lru_cache(maxsize=8)
def _read_split(name: str, split: str, root: str, download: bool
                ) -> tuple[torch.Tensor, torch.Tensor, str, Path, Path]:
    """uint8 images (N, 28, 28), int64 labels (N,), where they came from, and the two files read.

    Cached: never hand the tensors out.

    Looks in each place of the lookup order in turn; a place whose files are damaged is reported and
    skipped, so an intact copy further on (the system copy, a download) is still found.
    """
    root_path = Path(root)
    images_stem, labels_stem = _FILES[split]
    tried, damaged = [], []
    for folder, description in _folders(name, root_path):
        images_file, labels_file = _find(folder, images_stem), _find(folder, labels_stem)
        if not (images_file and labels_file):
            tried.append(description)
            continue
        try:
            images, labels = _read_pair(name, split, images_file, labels_file)
        except CorruptDataFileError as err:
            damaged.append(str(err))
            tried.append(f"{description}: damaged")
            continue
        if damaged:
            warnings.warn("skipped a damaged copy of the data: " + " | ".join(damaged), stacklevel=3)
        source = "system copy" if folder == SYSTEM_FASHION_MNIST else "data folder"
        return images, labels, source, images_file, labels_file
    if not download:
        reason = "download=False"
    else:
        try:
            _download(name, split, root_path)
            reason = None
        except Exception as err:  # offline, blocked, checksum mismatch...
            reason = f"{type(err).__name__}: {err}"
    folder = _folders(name, root_path)[0][0]
    images_file, labels_file = _find(folder, images_stem), _find(folder, labels_stem)
    if reason is not None or not (images_file and labels_file):
        fixes = [f"put {images_stem}[.gz] and {labels_stem}[.gz] in {folder}",
                 "or set AUTOENC_DATA to a folder that holds them in that layout"]
        if name == "fashion_mnist":
            fixes.insert(0, "on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist")
        fixes.append("or run once with internet access so torchvision can download it")
        raise DatasetNotFoundError(
            f"dataset {name!r} ({split} split) was not found. Looked in: "
            + "; ".join(tried)
            + f"; then torchvision's download into {root_path} failed ({reason or 'files missing afterwards'}). "
            + ("Damaged files: " + " | ".join(damaged) + ". " if damaged else "")
            + "To fix: " + "; ".join(fixes) + "."
        )
    images, labels = _read_pair(name, split, images_file, labels_file)
    return images, labels, "torchvision download", images_file, labels_file


# --------------------------------------------------------------------------------------
# Circles


def _memory_bytes() -> int | None:
    """This machine's physical memory in bytes, where the system says (Linux, macOS); else None."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _check_memory(needed: int, what: str) -> None:
    """Refuse, before any work, a request that needs more than half of this machine's memory."""
    total = _memory_bytes()
    if total is not None and needed > total // 2:
        raise MemoryError(f"{what} needs about {needed / 1e9:,.1f} GB, more than half of this machine's "
                          f"{total / 1e9:,.1f} GB of memory; ask for fewer images")


def make_circles(n: int, *, seed: int = 0, size: int = 28, r_min: float = 0.03, r_max: float = 0.47,
                 filled: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of one centred circle each; the radius is the only factor of variation.

    Radii are drawn uniformly from [r_min, r_max], as fractions of the image
    side. Edges are
    anti-aliased: a pixel's value is how much of it the disc (or the one-pixel
    ring, ``filled=False``) covers, so a radius change of a fraction of a pixel
    still changes the image.

    Returns images (n, 1, size, size) float32 in [0, 1] and radii (n,) float32.
    """
    n = positive_int(n, "n")
    size = positive_int(size, "size")
    _check_memory(3 * n * size * size * 4, f"make_circles(n={n:,}, size={size})")   # images and two temporaries
    if not 0 < r_min < r_max <= 0.5:
        raise ValueError(f"need 0 < r_min < r_max <= 0.5 (fractions of the image side), "
                         f"got r_min={r_min}, r_max={r_max}")
    g = torch.Generator().manual_seed(seed)
    radii = r_min + (r_max - r_min) * torch.rand(n, generator=g)                    # (n,)
    centre = (size - 1) / 2
    coords = torch.arange(size, dtype=torch.float32) - centre
    dist = torch.sqrt(coords[None, :] ** 2 + coords[:, None] ** 2)                   # (size, size), pixels
    r_px = (radii * size)[:, None, None]                                               # (n, 1, 1), pixels
    if filled:
        images = (r_px - dist + 0.5).clamp(0, 1)                                       # (n, size, size)
    else:
        images = (1 - (dist - r_px).abs()).clamp(0, 1)
    return images.unsqueeze(1).float(), radii.float()                                  # (n, 1, size, size)


# --------------------------------------------------------------------------------------
# The public loader


def load_dataset(name: str = "fashion_mnist", split: str = "train", *, n: int | None = None,
                 device: torch.device | str = "cpu", root: str | os.PathLike | None = None,
                 download: bool = True, verbose: bool = True) -> ImageSet:
    """Load one split into memory as float32 images in [0, 1].

    name: ``"fashion_mnist"`` (default), ``"mnist"`` or ``"circles"``.
    split: ``"train"`` or ``"test"``.
    n: keep the first n images (all when None; circles default to 10,000 train
       and 2,000 test).
    device: where the tensors go: move data once, not every batch.
    root: the data folder (default :func:`data_root`).
    """
    key, split = _check_name_split(name, split)
    if n is not None:
        n = positive_int(n, "n")
    if key == "circles":
        images, radii = make_circles(n or _CIRCLES_DEFAULT_SIZE[split], seed=_CIRCLES_SEED[split])
        out = ImageSet(images.to(device), radii.to(device), None, key, split, f"generated, seed {_CIRCLES_SEED[split]}")
    else:
        root_path = Path(root) if root is not None else data_root()
        raw_images, raw_labels, source, _, _ = _read_split(key, split, str(root_path.resolve()), download)
        total = raw_images.shape[0]
        if n is not None and n > total:
            raise ValueError(f"n={n:,} asks for more images than {key}/{split} has ({total:,})")
        keep = slice(0, n or total)
        images = raw_images[keep].to(device).unsqueeze(1).float().div_(255)   # (N, 1, 28, 28), a new tensor
        labels = raw_labels[keep].to(device, copy=True)    # (N,) the caller's own; the cache stays as read
        classes = FASHION_CLASSES if key == "fashion_mnist" else MNIST_CLASSES
        out = ImageSet(images, labels, classes, key, split, source)
    if verbose:
        print(f"{out.name}/{out.split}: {len(out):,} images, {tuple(out.images.shape[1:])}, "
              f"values in [0, 1], on {out.images.device.type} ({out.source})")
    return out


def dataset_files(name: str = "fashion_mnist", split: str = "train", *, root: str | os.PathLike | None = None,
                  download: bool = True) -> tuple[Path, Path]:
    """The images file and the labels file :func:`load_dataset` reads for one split (IDX format, maybe gzipped).

    They are looked up (or downloaded) and read exactly as :func:`load_dataset` does, so both are
    known to be intact. Circles are made in code and have no files.
    """
    key, split = _check_name_split(name, split)
    if key == "circles":
        raise ValueError("circles are generated in code (make_circles); they have no files")
    root_path = Path(root) if root is not None else data_root()
    _, _, _, images_file, labels_file = _read_split(key, split, str(root_path.resolve()), download)
    return images_file, labels_file


def clear_cache() -> None:
    """Forget the files read so far: the next :func:`load_dataset` reads them from disk again.

    :func:`load_dataset` reads each split's files once per session and copies from memory after
    that. Clear the cache after replacing a data file, or to time the reading itself.
    """
    _read_split.cache_clear()


# --------------------------------------------------------------------------------------
# Batches


def batch_indices(n: int, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None,
                  device: torch.device | str = "cpu"):
    """Yield index tensors that cover range(n) once, in a shuffled order when asked.

    Index the in-memory data with them (``x[idx]``); on a GPU the whole epoch
    then runs without a host-to-device copy per batch.
    """
    n = positive_int(n, "n")
    batch_size = positive_int(batch_size, "batch_size")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(device)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]
