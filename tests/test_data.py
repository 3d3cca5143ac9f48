import gzip
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

import autoenc_helpers as ah
from autoenc_helpers import data

_real_download = data._download


def _write_idx(path, array, compress):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No system copy and no network: every lookup step fails unless the test provides files."""
    monkeypatch.setattr(data, "SYSTEM_FASHION_MNIST", tmp_path / "no-system-copy")

    def no_network(name, split, root):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(data, "_download", no_network)
    data.clear_cache()
    yield tmp_path
    data.clear_cache()


def test_fashion_mnist_splits_in_memory():
    train = ah.load_dataset("fashion_mnist", "train", verbose=False)
    test = ah.load_dataset("fashion-mnist", "test", n=500, verbose=False)
    assert train.images.shape == (60_000, 1, 28, 28) and train.images.dtype == torch.float32
    assert train.labels.shape == (60_000,) and train.labels.dtype == torch.int64
    assert train.images.min() == 0.0 and train.images.max() == 1.0
    assert set(train.labels.unique().tolist()) == set(range(10))
    assert len(test) == 500 and test.classes[9] == "Ankle boot"


def test_unknown_dataset_and_split_names():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*fashion_mnist"):
        ah.load_dataset("cifar")
    with pytest.raises(ValueError, match="unknown split 'validation'.*'train', 'test'"):
        ah.load_dataset("fashion_mnist", "validation")


@pytest.mark.parametrize("bad", [0, -5, 2.5, True])
def test_sizes_must_be_positive_whole_numbers(bad):
    with pytest.raises(ValueError, match="n must be a positive int, got"):
        ah.load_dataset("fashion_mnist", "test", n=bad)
    with pytest.raises(ValueError, match="n must be a positive int, got"):
        ah.make_circles(bad)


def test_asking_for_more_images_than_exist():
    with pytest.raises(ValueError, match="n=10,001.*10,000"):
        ah.load_dataset("fashion_mnist", "test", n=10_001)


def test_missing_dataset_error_names_places_and_fixes(offline):
    with pytest.raises(ah.DatasetNotFoundError) as info:
        ah.load_dataset("fashion_mnist", "train", root=offline / "data")
    message = str(info.value)
    assert "'fashion_mnist'" in message and "train" in message
    assert "FashionMNIST" in message and "no-system-copy" in message          # both places it looked
    assert "URLError" in message and "network is unreachable" in message       # why the download failed
    assert "apt-get install dataset-fashion-mnist" in message and "AUTOENC_DATA" in message


def test_missing_mnist_offline(offline):
    with pytest.raises(ah.DatasetNotFoundError, match="'mnist'.*MNIST"):
        ah.load_dataset("mnist", "test", root=offline)


def test_no_download_when_told_not_to(offline):
    with pytest.raises(ah.DatasetNotFoundError, match="download=False"):
        ah.load_dataset("mnist", "test", root=offline, download=False)


def test_on_colab_the_data_comes_from_torchvisions_download(offline, monkeypatch):
    """Colab: the package installed from git (no checkout around it), no Debian copy, no data folder.

    The data folder is then ./data under the notebook's folder, and the files come from
    torchvision.datasets.FashionMNIST(..., download=True), which checks their checksums.
    """
    import torchvision

    site = offline / "site-packages" / "autoenc_helpers"
    site.mkdir(parents=True)
    monkeypatch.setattr(data, "__file__", str(site / "data.py"))          # not a checkout
    monkeypatch.delenv("AUTOENC_DATA", raising=False)
    content = offline / "content"                                         # Colab's working folder
    content.mkdir()
    monkeypatch.chdir(content)
    monkeypatch.setattr(data, "_download", _real_download)                # undo the fixture's "no network"
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, size=(5, 28, 28)), rng.integers(0, 10, size=5)
    calls = []

    class FakeFashionMNIST:                                               # what torchvision's download leaves
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            raw = Path(root) / "FashionMNIST" / "raw"
            raw.mkdir(parents=True)
            _write_idx(raw / "t10k-images-idx3-ubyte", images, True)
            _write_idx(raw / "t10k-labels-idx1-ubyte", labels, True)

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashionMNIST)
    assert data.data_root() == content / "data"
    loaded = ah.load_dataset("fashion_mnist", "test", verbose=False)
    assert calls == [(str(content / "data"), False, True)]
    assert loaded.source == "torchvision download" and len(loaded) == 5
    assert loaded.labels.tolist() == labels.tolist()


@pytest.mark.parametrize("compress", [False, True])
def test_data_folder_in_torchvision_layout(offline, monkeypatch, compress):
    raw = offline / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28))
    labels = rng.integers(0, 10, size=7)
    _write_idx(raw / "t10k-images-idx3-ubyte", images, compress)
    _write_idx(raw / "t10k-labels-idx1-ubyte", labels, compress)
    monkeypatch.setenv("AUTOENC_DATA", str(offline))
    loaded = ah.load_dataset("mnist", "test", verbose=False)
    assert loaded.source == "data folder"
    assert torch.allclose(loaded.images[:, 0] * 255, torch.tensor(images, dtype=torch.float32))
    assert loaded.labels.tolist() == labels.tolist()


def test_corrupt_file_is_reported(offline):
    raw = offline / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + (5).to_bytes(4, "big") * 3 + b"short")
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(5), False)
    with pytest.raises(ah.DatasetNotFoundError, match="header promises") as info:
        ah.load_dataset("mnist", "test", root=offline)
    assert "t10k-images-idx3-ubyte is damaged" in str(info.value) and "delete it" in str(info.value)


def test_dataset_files_are_the_files_load_dataset_reads(tmp_path):
    images_file, labels_file = data.dataset_files("fashion_mnist", "test", root=tmp_path)
    assert images_file.name.startswith("t10k-images-idx3-ubyte") and labels_file.name.startswith("t10k-labels")
    ours = ah.load_dataset("fashion_mnist", "test", root=tmp_path, verbose=False)
    assert torch.equal(torch.from_numpy(data._read_idx(images_file, 3).copy()).float().div(255), ours.images[:, 0])
    with pytest.raises(ValueError, match="circles are generated in code"):
        data.dataset_files("circles", "test")
    with pytest.raises(ValueError, match="unknown split 'val'"):
        data.dataset_files("fashion_mnist", "val")


def test_clear_cache_makes_the_next_load_read_the_files_again(offline):
    raw = offline / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28)), True)
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(3), False)
    assert len(ah.load_dataset("mnist", "test", root=offline, verbose=False)) == 3
    _write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((5, 28, 28)), True)
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(5), False)
    assert len(ah.load_dataset("mnist", "test", root=offline, verbose=False)) == 3     # read once, kept
    data.clear_cache()
    assert len(ah.load_dataset("mnist", "test", root=offline, verbose=False)) == 5


def test_circles_radius_matches_the_measured_radius():
    images, radii = ah.make_circles(200, seed=3)
    assert images.shape == (200, 1, 28, 28) and radii.shape == (200,)
    assert 0 <= images.min() and images.max() <= 1
    assert 0.03 <= radii.min() and radii.max() <= 0.47
    # The filled disc's area is the sum of its pixel values: pi * (r * 28)^2.
    measured = torch.sqrt(images.sum(dim=(1, 2, 3)) / torch.pi) / 28
    big = radii > 0.1
    assert torch.allclose(measured[big], radii[big], rtol=0.02)
    assert (measured.argsort() == radii.argsort()).float().mean() > 0.95   # same order, small ones included


def test_circles_are_seeded_and_splits_differ():
    a, ra = ah.make_circles(50, seed=0)
    b, rb = ah.make_circles(50, seed=0)
    assert torch.equal(a, b) and torch.equal(ra, rb)
    train = ah.load_dataset("circles", "train", n=50, verbose=False)
    test = ah.load_dataset("circles", "test", n=50, verbose=False)
    assert not torch.equal(train.labels, test.labels)
    assert train.classes is None and len(ah.load_dataset("circles", "test", verbose=False)) == 2_000


def test_outlined_circles_are_rings():
    filled, radii = ah.make_circles(50, seed=1, filled=True)
    ring, _ = ah.make_circles(50, seed=1, filled=False)
    big = radii * 28 > 3                                   # rings of more than 3 pixels' radius
    centre = (slice(None), 0, slice(13, 15), slice(13, 15))
    assert (filled[centre][big] == 1).all() and (ring[centre][big] == 0).all()   # hollow inside
    perimeter = 2 * torch.pi * radii[big] * 28             # a one-pixel ring's area is its perimeter
    assert torch.allclose(ring.sum(dim=(1, 2, 3))[big], perimeter, rtol=0.1)


def test_bad_circle_radii():
    with pytest.raises(ValueError, match="r_min=0.3, r_max=0.2"):
        ah.make_circles(5, r_min=0.3, r_max=0.2)


def test_batch_indices_cover_every_image_once():
    g = torch.Generator().manual_seed(0)
    batches = list(data.batch_indices(1000, 128, shuffle=True, generator=g))
    assert [len(b) for b in batches] == [128] * 7 + [104]
    everything = torch.cat(batches)
    assert torch.equal(everything.sort().values, torch.arange(1000))
    assert not torch.equal(everything, torch.arange(1000))          # shuffled
    again = torch.cat(list(data.batch_indices(1000, 128, shuffle=True, generator=torch.Generator().manual_seed(0))))
    assert torch.equal(everything, again)                            # and reproducible
    with pytest.raises(ValueError, match="batch_size"):
        next(data.batch_indices(10, 0, shuffle=False))


# -- reliability: the caller owns its tensors; damaged files; sizes that cannot fit -----------------------------


def test_a_learners_in_place_edit_does_not_change_later_loads():
    first = ah.load_dataset("fashion_mnist", "test", n=1000, verbose=False)
    first.labels[first.labels == 9] = 0
    first.images.zero_()
    again = ah.load_dataset("fashion_mnist", "test", n=1000, verbose=False)
    assert int((again.labels == 9).sum()) > 0 and float(again.images.sum()) > 0


def _fashion_folder(root):
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    return raw


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_file_in_the_data_folder_falls_back_to_the_system_copy(tmp_path, damage):
    raw = _fashion_folder(tmp_path)
    intact = (data.SYSTEM_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").read_bytes()
    broken = {"truncated": intact[: len(intact) // 3], "garbage": bytes(range(256)) * 40, "empty": b""}[damage]
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(broken)
    system_labels = data.SYSTEM_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz"
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(system_labels.read_bytes())
    data.clear_cache()
    with pytest.warns(UserWarning, match="t10k-images-idx3-ubyte.gz is damaged"):
        test = ah.load_dataset("fashion_mnist", "test", root=tmp_path, verbose=False)
    assert test.source == "system copy" and len(test) == 10_000
    data.clear_cache()


def test_a_damaged_file_with_no_other_copy_is_named_with_the_fix(offline):
    raw = _fashion_folder(offline)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 20)[:-9])
    _write_idx(raw / "train-labels-idx1-ubyte", np.zeros(5), True)
    with pytest.raises(ah.DatasetNotFoundError) as info:
        ah.load_dataset("fashion_mnist", "train", root=offline)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz is damaged" in message and "delete it and run again" in message


def test_an_idx_header_with_no_axes_is_a_damaged_file(offline):
    raw = offline / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x00" + b"\x07")
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(1), False)
    with pytest.raises(ah.DatasetNotFoundError, match="the header says 0 axes, an images file has 3"):
        ah.load_dataset("mnist", "test", root=offline)


def test_circles_too_large_for_memory_are_refused_before_any_work():
    import time
    start = time.perf_counter()
    with pytest.raises(MemoryError, match="needs about .* GB, more than half of this machine's"):
        ah.load_dataset("circles", n=10**9)
    assert time.perf_counter() - start < 1.0


# -- added after the mutation run (tests/MUTATION.md, data): what each part promises, exactly ---------------------


def _idx_files(root, folder, split, n):
    """n small images and labels in torchvision's layout under root (gzipped); returns the raw folder."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    stem = {"train": "train", "test": "t10k"}[split]
    _write_idx(raw / f"{stem}-images-idx3-ubyte", np.arange(n * 784).reshape(n, 28, 28) % 256, True)
    _write_idx(raw / f"{stem}-labels-idx1-ubyte", np.arange(n) % 10, True)
    return raw


def _four_images():
    images = torch.arange(4, dtype=torch.float32).repeat_interleave(784).reshape(4, 1, 28, 28) / 4
    return data.ImageSet(images, torch.arange(4) * 2, data.MNIST_CLASSES, "mnist", "test", "data folder")


def test_subset_takes_masks_positions_and_plain_lists_and_keeps_everything_else():
    four = _four_images()
    for index in ([2, 0], np.array([2, 0]), torch.tensor([2, 0])):
        picked = four.subset(index)
        assert picked.labels.tolist() == [4, 0] and torch.equal(picked.images, four.images[[2, 0]])
        assert (picked.classes, picked.name, picked.split, picked.source) == (data.MNIST_CLASSES, "mnist", "test",
                                                                              "data folder")
    every_other = four.subset([True, False, True, False], note="every other")
    assert every_other.labels.tolist() == [0, 4] and every_other.source == "data folder, every other"
    with pytest.raises(ValueError, match=r"^a boolean mask must have one entry per image, shape \(4,\), got \(2, 2\)$"):
        four.subset(torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"^index must be a boolean mask or a 1-D tensor of whole-number positions, "
                                         r"got dtype torch.int64 and shape \(1, 2\)$"):
        four.subset([[0, 1]])
    with pytest.raises(ValueError, match=r"got dtype torch.float32 and shape \(2,\)$"):
        four.subset(torch.tensor([0.0, 1.0]))


def test_an_imagesets_repr_and_images_of():
    four = _four_images()
    assert repr(four) == ("ImageSet(mnist/test: 4 images of shape (1, 28, 28), values in [0.00, 0.75], on cpu, "
                          "from data folder)")
    assert data.images_of(four) is four.images and data.images_of(four.images) is four.images


def test_in_a_checkout_the_data_folder_is_the_checkouts_data(tmp_path, monkeypatch):
    checkout = (tmp_path / "course").resolve()
    (checkout / "autoenc_helpers").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("")
    monkeypatch.setattr(data, "__file__", str(checkout / "autoenc_helpers" / "data.py"))
    monkeypatch.delenv("AUTOENC_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert data.data_root() == checkout / "data"
    (checkout / "pyproject.toml").unlink()                     # no pyproject.toml next to the package: not a checkout
    assert data.data_root() == tmp_path.resolve() / "data"


_IDX_TAIL = "; delete it and run again, so that the next copy in the lookup order (or a fresh download) is used"


@pytest.mark.parametrize("content, ndim, what", [
    (b"\x00\x01\x08\x03" + bytes(20), 3, r"not an IDX file of unsigned bytes, header b'\x00\x01\x08\x03'"),
    (b"\x01\x00\x08\x03" + bytes(20), 3, r"not an IDX file of unsigned bytes, header b'\x01\x00\x08\x03'"),
    (b"\x00\x00\x08\x03", 3, "the file ends inside its header (4 bytes)"),
    (b"\x00\x00\x08\x03" + bytes(12), 1, "the header says 3 axes, a labels file has 1"),
    (b"\x00\x00\x08\x01" + (1 << 24).to_bytes(4, "big"), 1,
     "the header promises [16777216] = 16,777,216 bytes, the file holds 0"),
    (b"\x00\x00\x08\x03" + (5).to_bytes(4, "big") * 3 + b"short", 3,
     "the header promises [5, 5, 5] = 125 bytes, the file holds 5"),
])
def test_what_is_wrong_with_a_damaged_idx_file_is_named(tmp_path, content, ndim, what):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(data.CorruptDataFileError) as info:
        data._read_idx(path, ndim)
    assert str(info.value) == f"{path} is damaged or not a dataset file ({what}){_IDX_TAIL}"


def test_a_broken_gzip_file_is_named_with_the_error_that_broke_it(tmp_path):
    labels = b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\x01\x02\x03"
    cut = tmp_path / "t10k-labels-idx1-ubyte.gz"
    cut.write_bytes(gzip.compress(labels)[:-9])
    with pytest.raises(data.CorruptDataFileError, match=r"\(EOFError: \w.*\); delete it"):
        data._read_idx(cut, 1)
    not_gzip = tmp_path / "train-labels-idx1-ubyte.gz"
    not_gzip.write_bytes(labels)
    with pytest.raises(data.CorruptDataFileError, match=r"\(BadGzipFile: \w.*\); delete it"):
        data._read_idx(not_gzip, 1)


def test_idx_sizes_are_four_big_endian_bytes_per_axis(tmp_path):
    path = tmp_path / "wide-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + b"".join(d.to_bytes(4, "big") for d in (1, 1, 65_536)) + bytes(65_536))
    assert data._read_idx(path, 3).shape == (1, 1, 65_536)


def test_the_not_found_message_names_each_folder_in_full(offline):
    root = offline / "data"
    with pytest.raises(ah.DatasetNotFoundError) as info:
        ah.load_dataset("fashion_mnist", "test", root=root)
    assert (f"Looked in: the data folder ({root.resolve() / 'FashionMNIST' / 'raw'}); "
            f"the system copy ({offline / 'no-system-copy'}); ") in str(info.value)


@pytest.mark.parametrize("split", ["train", "test"])
def test_the_download_is_asked_for_the_split_being_loaded(offline, monkeypatch, split):
    import torchvision

    monkeypatch.setattr(data, "_download", _real_download)                # undo the fixture's "no network"
    asked = []

    class FakeMNIST:                                                      # what torchvision's download leaves
        def __init__(self, root, train, download):
            asked.append(train)
            _idx_files(Path(root), "MNIST", "train" if train else "test", 2)

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    loaded = ah.load_dataset("mnist", split, root=offline, verbose=False)
    assert asked == [split == "train"] and len(loaded) == 2 and loaded.source == "torchvision download"


@pytest.mark.parametrize("images_shape, n_labels", [((5, 28, 28), 3), ((5, 32, 32), 5)])
def test_images_and_labels_that_do_not_belong_together_are_named(offline, images_shape, n_labels):
    raw = (offline / "MNIST" / "raw").resolve()
    raw.mkdir(parents=True)
    _write_idx(raw / "t10k-images-idx3-ubyte", np.zeros(images_shape), False)
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(n_labels), False)
    with pytest.raises(ah.DatasetNotFoundError) as info:
        ah.load_dataset("mnist", "test", root=offline)
    assert (f"mnist/test: {raw / 't10k-images-idx3-ubyte'} holds 5 images of {images_shape[1:]} and "
            f"{raw / 't10k-labels-idx1-ubyte'} {n_labels} labels; expected N images of (28, 28) and N labels. "
            "Delete the files that do not belong together and run again") in str(info.value)


def test_circles_may_use_half_the_memory_and_the_refusal_says_how_much_in_gb(monkeypatch):
    needed = 3 * 2 * 28 * 28 * 4                               # the images and two temporaries, float32
    monkeypatch.setattr(data, "_memory_bytes", lambda: 2 * needed)
    assert ah.make_circles(2)[0].shape == (2, 1, 28, 28)      # exactly half of the memory: allowed
    monkeypatch.setattr(data, "_memory_bytes", lambda: 2 * needed - 1)
    with pytest.raises(MemoryError):
        ah.make_circles(2)
    monkeypatch.setattr(data, "_memory_bytes", lambda: 2_350_000_000)
    with pytest.raises(MemoryError, match=r"^make_circles\(n=31,250, size=60\) needs about 1\.4 GB, more than half "
                                          r"of this machine's 2\.4 GB of memory; ask for fewer images$"):
        ah.make_circles(31_250, size=60)                       # 3 * 31,250 * 60 * 60 * 4 bytes = 1.35 GB


def test_circles_default_seed_and_the_bounds_of_their_arguments():
    images, radii = ah.make_circles(5)
    same_images, same_radii = ah.make_circles(5, seed=0)
    assert torch.equal(images, same_images) and torch.equal(radii, same_radii)      # the default seed is 0
    assert ah.make_circles(2, r_max=0.5)[0].shape == (2, 1, 28, 28)                 # as wide as the image: allowed
    for r_min, r_max in [(0.0, 0.3), (0.2, 0.2), (0.1, 0.6)]:
        with pytest.raises(ValueError, match=rf"^need 0 < r_min < r_max <= 0.5 \(fractions of the image side\), "
                                             rf"got r_min={r_min}, r_max={r_max}$"):
            ah.make_circles(2, r_min=r_min, r_max=r_max)
    with pytest.raises(ValueError, match="^size must be a positive int, got 0$"):
        ah.make_circles(2, size=0)


def test_circles_are_centred():
    for filled in (True, False):
        images, _ = ah.make_circles(20, seed=2, filled=filled)
        assert torch.equal(images, images.flip(-1)) and torch.equal(images, images.flip(-2))
        assert torch.equal(images, images.transpose(-1, -2))


def test_load_dataset_defaults_print_one_line_and_name_the_set(offline, monkeypatch, capsys):
    _idx_files(offline, "FashionMNIST", "train", 3)
    _idx_files(offline, "MNIST", "test", 3)
    monkeypatch.setenv("AUTOENC_DATA", str(offline))
    train = ah.load_dataset()                                  # Fashion-MNIST, train split, every image, one line
    assert (train.name, train.split, len(train), train.classes) == ("fashion_mnist", "train", 3, data.FASHION_CLASSES)
    assert capsys.readouterr().out == ("fashion_mnist/train: 3 images, (1, 28, 28), values in [0, 1], on cpu "
                                       "(data folder)\n")
    digits = ah.load_dataset("mnist", "test", n=3, verbose=False)      # n equal to the number of images: allowed
    assert (digits.name, digits.split, len(digits), digits.classes[7]) == ("mnist", "test", 3, "7")
    circles = ah.load_dataset("circles", "test", n=4, verbose=False)
    assert (circles.name, circles.split, circles.source, circles.classes) == ("circles", "test", "generated, seed 1",
                                                                              None)


def test_the_data_goes_to_the_device_asked_for(offline):
    """The meta device (shapes, no numbers) stands in for a GPU on a machine that has none."""
    _idx_files(offline, "MNIST", "test", 3)
    for loaded in (ah.load_dataset("circles", "test", n=3, device="meta", verbose=False),
                   ah.load_dataset("mnist", "test", root=offline, device="meta", verbose=False)):
        assert loaded.images.device.type == "meta" and loaded.labels.device.type == "meta"
    assert [b.device.type for b in data.batch_indices(10, 4, shuffle=True, device="meta")] == ["meta"] * 3


def test_batches_come_in_order_unshuffled_and_bad_sizes_are_named():
    assert [b.tolist() for b in data.batch_indices(5, 2, shuffle=False)] == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="^n must be a positive int, got 0$"):
        next(data.batch_indices(0, 2, shuffle=False))
    with pytest.raises(ValueError, match="^batch_size must be a positive int, got 0$"):
        next(data.batch_indices(5, 0, shuffle=False))


def test_dataset_files_defaults_download_and_root(offline, monkeypatch):
    monkeypatch.chdir(offline)

    def download(name, split, root):                           # a stand-in for torchvision's download
        _idx_files(Path(root), {"fashion_mnist": "FashionMNIST", "mnist": "MNIST"}[name], split, 2)

    monkeypatch.setattr(data, "_download", download)
    monkeypatch.setenv("AUTOENC_DATA", str(offline / "default"))
    raw = (offline / "default" / "FashionMNIST" / "raw").resolve()
    assert data.dataset_files() == (raw / "train-images-idx3-ubyte.gz", raw / "train-labels-idx1-ubyte.gz")
    elsewhere = _idx_files(offline / "elsewhere", "MNIST", "test", 2).resolve()
    images_file, _ = data.dataset_files("mnist", "test", root=offline / "elsewhere")
    assert images_file == elsewhere / "t10k-images-idx3-ubyte.gz"
    with pytest.raises(ValueError, match=r"^circles are generated in code \(make_circles\); they have no files$"):
        data.dataset_files("circles", "test")
