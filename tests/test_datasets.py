"""Datasets from real files on disk: a generated FER2013-style CSV, NumPy arrays (.npz,
.npy folder, tar.xz), an image tree of real PNG/JPEG files, and the real FER2013."""

import io
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import shared_data_dir
from nas.data import load
from nas.errors import DataError

USAGES = ["Training"] * 20 + ["PublicTest"] * 6 + ["PrivateTest"] * 5


def fer_rows(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (len(USAGES), 48, 48), dtype=np.uint8)
    y = rng.integers(0, 7, len(USAGES))
    y[:7] = np.arange(7)  # every emotion has training rows
    return x, y


def write_csv(path, x, y, usages=USAGES):
    with open(path, "w") as f:
        f.write("emotion,pixels,Usage\n")
        for image, label, usage in zip(x, y, usages):
            f.write(f"{label},{' '.join(map(str, image.ravel()))},{usage}\n")
    return path


def write_tar(path, arrays):
    with tarfile.open(path, "w:xz") as tar:
        for name, array in arrays.items():
            buf = io.BytesIO()
            np.save(buf, array)
            info = tarfile.TarInfo(f"{name}.npy")
            info.size = buf.tell()
            buf.seek(0)
            tar.addfile(info, buf)
    return path


def as_arrays(x, y):
    split = {"train": slice(0, 20), "val": slice(20, 26), "test": slice(26, 31)}
    return {f"{k}_{s}": (x if k == "x" else y.astype(np.uint8))[sl]
            for s, sl in split.items() for k in "xy"}


def test_fer2013_csv_splits_by_usage_and_equals_the_arrays_form(tmp_path):
    x, y = fer_rows()
    write_csv(tmp_path / "fer2013.csv", x, y)
    csv = load(f"fer2013:{tmp_path / 'fer2013.csv'}")
    assert (len(csv.train_x), len(csv.val_x), len(csv.test_x)) == (20, 6, 5)
    assert csv.info.input_shape == (1, 48, 48) and csv.info.classes[3] == "Happy"
    assert torch.equal(csv.train_x[:, 0], torch.from_numpy(x[:20]))  # rows kept in order
    assert torch.equal(csv.test_y, torch.from_numpy(y[26:]))
    in_folder = load("fer2013", data_dir=tmp_path)  # the CSV inside a folder
    tar = load(f"arrays:{write_tar(tmp_path / 'fer.tar.xz', as_arrays(x, y))}")
    for other in (in_folder, tar):
        for split in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
            assert torch.equal(getattr(csv, split), getattr(other, split)), split


@pytest.mark.parametrize("row, message", [
    ("3,1 2 3,Training", "line 3: expected 2304 pixel values (48x48) in 0-255, got 3 values"),
    ("3," + " ".join(["1"] * 2304), "line 3: expected 3 fields (emotion,pixels,Usage), got 2"),
    ("9," + " ".join(["1"] * 2304) + ",Training", "line 3: emotion 9 out of range 0-6"),
    ("3," + " ".join(["300"] * 2304) + ",Training", "line 3: expected 2304 pixel values (48x48) in 0-255, got 2304 values in 300-300"),
    ("3," + " ".join(["1"] * 2304) + ",Holdout", "line 3: Usage 'Holdout'"),
    (b"3," + b" ".join([b"1"] * 2303) + b" \xff\xfe,Training", "line 3: emotion and pixels must be integers"),
], ids=["short-pixels", "short-row", "bad-emotion", "bad-pixel", "bad-usage", "not-utf8"])
def test_malformed_fer2013_rows_are_named_by_file_and_line(tmp_path, run, row, message):
    x, y = fer_rows()
    path = write_csv(tmp_path / "bad.csv", x[:1], y[:1])
    with open(path, "ab") as f:  # bytes: a row may hold some that are not UTF-8
        f.write((row if isinstance(row, bytes) else row.encode()) + b"\n")
    code, _, err = run("search", "--dataset", f"fer2013:{path}", "--runs-dir", tmp_path / "runs")
    assert code == 2 and f"{path}, {message}" in err and err.count("\n") == 1, err


def test_a_headerless_fer2013_csv_is_named_without_its_9kb_row(tmp_path, run):
    x, y = fer_rows()
    path = tmp_path / "noheader.csv"
    path.write_text("".join(f"{label},{' '.join(map(str, image.ravel()))},Training\n"
                            for image, label in zip(x[:3], y[:3])))
    code, _, err = run("search", "--dataset", f"fer2013:{path}", "--runs-dir", tmp_path / "runs")
    assert code == 2 and err.count("\n") == 1 and len(err) < 400, err
    assert f"{path}, line 1: expected the header emotion,pixels,Usage; got '" in err
    assert "characters)" in err


def test_arrays_as_npz_and_npy_folder_with_channels_last_images(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (40, 12, 10, 3), dtype=np.uint8)
    y = rng.integers(0, 5, 40)
    np.savez(tmp_path / "set.npz", x_train=x[:30], y_train=y[:30], x_test=x[30:], y_test=y[30:])
    (tmp_path / "npy").mkdir()
    for name, array in {"x_train": x[:30], "y_train": y[:30], "x_test": x[30:], "y_test": y[30:]}.items():
        np.save(tmp_path / "npy" / f"{name}.npy", array)
    a, b = load(f"arrays:{tmp_path / 'set.npz'}"), load(f"arrays:{tmp_path / 'npy'}")
    assert a.info.input_shape == (3, 12, 10) and a.info.num_classes == int(y.max()) + 1
    assert torch.equal(a.test_x, torch.from_numpy(x[30:]).permute(0, 3, 1, 2))
    # No x_val: validation is split off the training images, the same way each time.
    assert len(a.val_x) == 3 and len(a.train_x) == 27
    for split in ("train_x", "val_x", "test_y"):
        assert torch.equal(getattr(a, split), getattr(b, split))


@pytest.mark.parametrize("arrays, message", [
    ({"x_train": np.zeros((4, 8, 8), np.float32), "y_train": np.zeros(4, int)},
     "x_train]: images must be uint8 (0-255), got float32"),
    ({"x_train": np.zeros((4, 8, 8), np.uint8), "y_train": np.zeros(3, int)},
     "y_train]: labels must be 4 integers >= 0"),
    ({"x_train": np.zeros((4, 8), np.uint8), "y_train": np.zeros(4, int)},
     "images must be (N, H, W) or (N, H, W, C)"),
    ({"y_train": np.zeros(4, int)}, "needs x_train and y_train (found: y_train)"),
    ({"x_train": np.zeros((0, 8, 8), np.uint8), "y_train": np.zeros(0, int)}, "x_train holds no images"),
    ({"x_train": np.zeros((4, 8, 8), np.uint8), "y_train": np.zeros(4, int)},
     "every training image has label 0; a classifier needs at least 2 classes"),
    ({"x_train": np.zeros((4, 8, 8), np.uint8), "y_train": np.array([0, 1, 0, 1]),
      "x_test": np.zeros((2, 8, 8), np.uint8), "y_test": np.array([1, 7])},
     "y_test has label(s) 7 that no training image has"),
    ({"x_train": np.zeros((100_001, 1, 1), np.uint8), "y_train": np.arange(100_001)},
     "y_train holds 100,001 distinct labels (at most 100,000 classes)"),
])
def test_bad_arrays_get_one_line(tmp_path, run, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    code, _, err = run("search", "--dataset", f"arrays:{tmp_path / 'bad.npz'}",
                       "--runs-dir", tmp_path / "runs")
    assert code == 2 and message in err and err.count("\n") == 1, err


def _write_idx(folder, images, labels):
    import gzip

    folder.mkdir(parents=True)
    for stem, magic, array in (("train-images-idx3-ubyte", 2051, images), ("train-labels-idx1-ubyte", 2049, labels),
                               ("t10k-images-idx3-ubyte", 2051, images), ("t10k-labels-idx1-ubyte", 2049, labels)):
        dims = array.shape if magic == 2051 else array.shape[:1]
        header = b"".join(int(v).to_bytes(4, "big") for v in (magic, *dims))
        with gzip.open(folder / f"{stem}.gz", "wb") as f:
            f.write(header + array.astype(np.uint8).tobytes())


def test_mnist_is_embedded_checked_and_a_data_dir_with_the_files_still_wins(tmp_path, monkeypatch):
    from nas.datasets import idx

    monkeypatch.delenv("NAS_DATA_DIR", raising=False)
    (tmp_path / "empty").mkdir()
    own = load("mnist", data_dir=tmp_path / "empty")  # nothing there: the package's copy
    assert (len(own.train_x), len(own.val_x), len(own.test_x)) == (54_000, 6_000, 10_000)
    shared = load("mnist", data_dir=shared_data_dir())
    assert torch.equal(own.test_x, shared.test_x) and torch.equal(own.train_y, shared.train_y)
    # A data dir that holds the files wins over the embedded copy.
    rng = np.random.default_rng(0)
    _write_idx(tmp_path / "mine" / "MNIST" / "raw", rng.integers(0, 256, (40, 28, 28)), np.arange(40) % 10)
    assert len(load("mnist", data_dir=tmp_path / "mine").test_x) == 40
    # A damaged embedded file is found by its md5, never read as data.
    copy = tmp_path / "embedded"
    shutil.copytree(idx.EMBEDDED, copy)
    name = "t10k-labels-idx1-ubyte.gz"
    data = bytearray((copy / "MNIST" / name).read_bytes())
    data[100] ^= 0xFF  # one byte flipped
    (copy / "MNIST" / name).write_bytes(bytes(data))
    monkeypatch.setattr(idx, "EMBEDDED", copy)
    with pytest.raises(DataError, match=f"embedded MNIST file .*{name} is damaged"):
        load("mnist", data_dir=tmp_path / "empty")


def test_arrays_classes_are_the_labels_that_occur(tmp_path):
    """A label of 2**40 is one class, not 2**40 of them; the labels become class indices
    and the names keep the original labels."""
    rng = np.random.default_rng(0)
    y = np.array([0, 2**40, 5] * 20)
    np.savez(tmp_path / "ids.npz", x_train=rng.integers(0, 256, (60, 8, 8), dtype=np.uint8), y_train=y)
    data = load(f"arrays:{tmp_path / 'ids.npz'}")
    assert data.info.classes == ("0", "5", str(2**40)) and data.info.num_classes == 3
    assert set(torch.cat([data.train_y, data.val_y, data.test_y]).tolist()) == {0, 1, 2}


def test_a_truncated_npz_is_one_line(tmp_path, run):
    np.savez(tmp_path / "a.npz", x_train=np.zeros((40, 8, 8), np.uint8), y_train=np.arange(40) % 2)
    whole = (tmp_path / "a.npz").read_bytes()
    for cut in (len(whole) // 2, 30):
        (tmp_path / "a.npz").write_bytes(whole[:cut])
        code, _, err = run("search", "--dataset", f"arrays:{tmp_path / 'a.npz'}",
                           "--runs-dir", tmp_path / "runs")
        assert code == 2 and "cannot read" in err and err.count("\n") == 1, err


def make_tree(root, size=(20, 16), mode="RGB", per_class=6):
    rng = np.random.default_rng(2)
    for split, n in (("train", per_class), ("test", 2)):
        for cls in ("cat", "dog"):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
                image = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)
                image.save(root / split / cls / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def test_image_folder_decodes_resizes_and_caches(tmp_path):
    tree = make_tree(tmp_path / "pets")
    data = load(f"folder:{tree}")
    assert data.info.input_shape == (3, 16, 20) and data.info.classes == ("cat", "dog")
    assert len(data.test_x) == 4 and len(data.train_x) + len(data.val_x) == 12
    assert data.info.augment == "flip-crop"
    first = Image.open(tree / "test" / "cat" / "1.png")
    assert torch.equal(data.test_x[1], torch.from_numpy(np.array(first)).permute(2, 0, 1))
    small = load(f"folder:{tree}", image_size=8, grayscale=True)
    assert small.info.input_shape == (1, 8, 8)
    cache = list(Path(os.environ["NAS_CACHE_DIR"]).glob("*.npz"))
    assert len(cache) >= 2 and not any(p.suffix == ".npz" for p in tree.rglob("*"))
    # A changed file invalidates the cache: decoded again, not served stale.
    Image.fromarray(np.zeros((16, 20, 3), np.uint8)).save(tree / "test" / "cat" / "1.png")
    assert load(f"folder:{tree}").test_x[1].sum() == 0


class _Planted:
    """Unpickling this runs code: it creates the file named in it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_planted_or_torn_cache_file_runs_no_code_and_is_decoded_again(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    tree = make_tree(tmp_path / "pets")
    clean = load(f"folder:{tree}")
    [cache] = (tmp_path / "cache").glob("*.npz")
    marker = tmp_path / "code-ran"
    planted = [lambda f: np.savez(f, classes=np.array([_Planted(marker)], dtype=object)),  # pickle inside
               lambda f: f.write_bytes(__import__("pickle").dumps(_Planted(marker))),  # a bare pickle
               lambda f: f.write_bytes(cache.read_bytes()[:200]),  # torn
               lambda f: np.savez(f, classes=np.array(["cat", "dog"]), x_train=np.zeros((2, 3))),
               lambda f: f.write_bytes(b"")]
    good = cache.read_bytes()
    for plant in planted:
        plant(cache)
        data = load(f"folder:{tree}")
        assert not marker.exists()
        assert torch.equal(data.train_x, clean.train_x) and data.info.classes == ("cat", "dog")
        assert cache.read_bytes() == good  # rewritten from a fresh decode
    assert not list((tmp_path / "cache").glob("*.tmp*"))


def test_a_folder_study_resumed_at_another_size_or_channel_count_is_refused(tmp_path, run):
    tree = make_tree(tmp_path / "pets")
    base = ["search", "--dataset", f"folder:{tree}", "--budget", "5k", "--epochs", 1,
            "--runs-dir", tmp_path / "runs", "--study", "pets", "--no-progress"]
    assert run(*base, "--trials", 1, "--image-size", 8)[0] == 0
    for extra, message in ((["--image-size", 12], "--image-size 8; got --image-size 12"),
                           (["--image-size", 8, "--grayscale"], "--grayscale False; got --grayscale True")):
        code, _, err = run(*base, "--trials", 2, *extra)
        assert code == 2 and message in err and err.count("\n") == 1, err
    from nas.storage import load_study
    assert len(load_study(tmp_path / "runs" / "pets").trials) == 1


def test_grey_images_load_as_one_channel(tmp_path):
    data = load(f"folder:{make_tree(tmp_path / 'g', mode='L')}")
    assert data.info.in_channels == 1


def test_grayscale_is_the_luma_that_pillow_convert_L_gives(tmp_path):
    """Pure red, green and blue images must not all become 0 (the red channel alone)."""
    root = tmp_path / "rgb"
    colours = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
    for name, colour in colours.items():
        (root / "train" / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (8, 8), colour).save(root / "train" / name / f"{i}.png")
    data = load(f"folder:{root}", grayscale=True)
    pixels = torch.cat([data.train_x, data.val_x])
    labels = torch.cat([data.train_y, data.val_y])
    for label, name in enumerate(data.info.classes):  # folders sorted: blue, green, red
        colour = colours[name]
        expected = Image.new("RGB", (1, 1), colour).convert("L").getpixel((0, 0))  # 76, 150, 29
        assert (pixels[labels == label] == expected).all(), name


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_an_empty_class_folder_and_an_oversized_image_are_refused(tmp_path, run, monkeypatch):
    tree = make_tree(tmp_path / "pets")
    (tree / "train" / "bird").mkdir()
    code, _, err = run("search", "--dataset", f"folder:{tree}", "--runs-dir", tmp_path / "runs")
    assert code == 2 and "class folder(s) bird hold no images" in err and err.count("\n") == 1, err
    (tree / "train" / "bird").rmdir()
    # Pillow's decompression-bomb limit, lowered so a small file is over it (the check is
    # Pillow's own; a 144-megapixel PNG trips it the same way at the default limit).
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    code, _, err = run("search", "--dataset", f"folder:{tree}", "--runs-dir", tmp_path / "runs")
    assert code == 2 and "is too large to decode safely" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("damage, message", [
    (lambda t: (t / "train" / "cat" / "0.jpg").write_bytes(b"not an image"), "cannot decode image"),
    (lambda t: Image.new("RGB", (5, 5)).save(t / "train" / "dog" / "odd.png"),
     "odd.png is 5x5, others are 20x16; pass --image-size N"),
    (lambda t: (t / "test" / "bird").mkdir(), "class folder(s) bird not in train/"),
])
def test_broken_image_folders_name_the_file(tmp_path, run, damage, message):
    tree = make_tree(tmp_path / "pets")
    damage(tree)
    code, _, err = run("search", "--dataset", f"folder:{tree}", "--runs-dir", tmp_path / "runs")
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_search_on_an_image_folder_end_to_end(tmp_path, run):
    tree = make_tree(tmp_path / "pets", per_class=30)
    code, out, err = run("search", "--dataset", f"folder:{tree}", "--image-size", 16, "--space",
                         "cnn", "--budget", 5000, "--trials", 2, "--epochs", 1, "--runs-dir",
                         tmp_path / "runs", "--no-progress")
    assert code == 0, err
    assert (tmp_path / "runs" / "pets-5k" / "pareto.json").is_file()  # study named after the folder


def test_real_fer2013_matches_its_published_class_counts():
    root = shared_data_dir()
    if not (root / "fer2013" / "fer2013.tar.xz").is_file():
        # CI has it beside the checkout; a user's clone may not (MNIST, embedded, always is).
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            f"FER2013 not found under {root}; set NAS_DATA_DIR to test it")
    data = load("fer2013", data_dir=root)
    assert data.train_y.bincount().tolist() == [3995, 436, 4097, 7215, 4830, 3171, 4965]
    assert data.val_y.bincount().tolist() == [467, 56, 496, 895, 653, 415, 607]
    assert data.test_y.bincount().tolist() == [491, 55, 528, 879, 594, 416, 626]
    assert data.info.input_shape == (1, 48, 48) and data.info.augment == "flip-crop"


def test_the_long_training_augmentation_is_chosen_per_dataset():
    from nas import datasets

    # Digits are warped, never mirrored; clothes trained for minutes lose accuracy to
    # flips and shifts; faces are mirrored and warped.
    assert datasets.long_augment("mnist") == "affine"
    assert datasets.long_augment("fashion-mnist") == "none"
    assert datasets.long_augment("fer2013") == "flip-affine"
