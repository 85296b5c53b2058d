"""Dataset sources: shapes, labels, splits, offline files and one-sentence errors for bad input."""

import gzip
import json
import math
import pickle
import shutil
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.config import DataConfig
from engine.datasets import (
    SOURCE_TITLES,
    SOURCES,
    ImageSet,
    default_data_root,
    download_dataset,
    expected_files,
    load_dataset,
)
from engine.errors import ConfigError, DataError

REAL_MNIST = Path("/work/shared/data/mnist")


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    """Write a uint8 array as an IDX file (big-endian header), optionally gzipped as ``<path>.gz``."""
    data = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def make_idx_source(root: Path, folder: str, gz: bool = False, n_train: int = 20, n_test: int = 10) -> dict:
    """Write a tiny MNIST-format data set under root/folder/raw and return its arrays."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        arrays[prefix] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", arrays[prefix][0], gz)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", arrays[prefix][1], gz)
    return arrays


def save_png(path: Path, size: tuple[int, int], mode: str = "RGB", colour=(255, 0, 0)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if mode == "RGB" else colour[0]).save(path)


# --- digits and ImageSet ------------------------------------------------------------------------------

def test_digits_loads_split_and_deterministic():
    split = load_dataset(DataConfig())
    assert split.name == "digits"
    assert split.train.shape == split.val.shape == (1, 8, 8)
    assert split.train.images.dtype == torch.uint8 and split.train.labels.dtype == torch.int64
    assert split.train.images.is_contiguous() and split.train.images.max() == 255
    assert split.train.n_classes == 10 and split.train.class_names == [str(d) for d in range(10)]
    assert len(split.val) == math.ceil(1797 * 0.1) and len(split.train) + len(split.val) == 1797
    again = load_dataset(DataConfig(seed=0))
    assert torch.equal(again.val.images, split.val.images) and torch.equal(again.val.labels, split.val.labels)
    assert not torch.equal(load_dataset(DataConfig(seed=1)).val.labels, split.val.labels)
    assert len(load_dataset(DataConfig(val_fraction=0.5)).val) == 899


def test_image_set_subset():
    images = torch.arange(4 * 3 * 2 * 2, dtype=torch.uint8).reshape(4, 3, 2, 2)
    data = ImageSet(images, torch.tensor([0, 1, 0, 1]), ["a", "b"])
    assert len(data) == 4 and data.shape == (3, 2, 2) and data.n_classes == 2
    part = data.subset(torch.tensor([3, 1]))
    assert len(part) == 2 and part.labels.tolist() == [1, 1] and torch.equal(part.images[0], images[3])


# --- torchvision sources ------------------------------------------------------------------------------

@pytest.mark.parametrize("source, folder, first_class", [
    ("mnist", "MNIST", "0"), ("fashion-mnist", "FashionMNIST", "T-shirt/top"), ("kmnist", "KMNIST", "o")])
def test_idx_source_loads_official_split(tmp_path, source, folder, first_class):
    arrays = make_idx_source(tmp_path, folder)
    split = load_dataset(DataConfig(source=source, root=str(tmp_path)))
    assert split.name == source and (len(split.train), len(split.val)) == (20, 10)
    assert split.train.shape == (1, 28, 28) and split.train.images.dtype == torch.uint8
    assert torch.equal(split.train.images[:, 0], torch.from_numpy(arrays["train"][0]))
    assert split.val.labels.tolist() == arrays["t10k"][1].tolist()
    assert split.train.n_classes == 10 and split.train.class_names[0] == first_class


def test_mnist_from_gz_files_only(tmp_path):
    arrays = make_idx_source(tmp_path, "MNIST", gz=True)
    split = load_dataset(DataConfig(source="mnist", root=str(tmp_path)))
    assert (len(split.train), len(split.val)) == (20, 10)
    assert torch.equal(split.val.images[:, 0], torch.from_numpy(arrays["t10k"][0]))
    assert (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_mnist_missing_names_folder_and_files(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(source="mnist", root=str(tmp_path)))
    message = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "t10k-labels-idx1-ubyte" in message
    assert "Download" in message and "\n" not in message


def test_mnist_one_file_missing_is_named(tmp_path):
    make_idx_source(tmp_path, "MNIST")
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="place t10k-labels-idx1-ubyte there"):
        load_dataset(DataConfig(source="mnist", root=str(tmp_path)))


@pytest.mark.parametrize("content", [b"", b"not an idx file at all", bytes([0, 0, 8, 3, 0, 0, 0, 5]) + b"\0" * 20])
def test_corrupt_idx_file_is_named(tmp_path, content):
    make_idx_source(tmp_path, "MNIST")
    bad = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    bad.write_bytes(content)
    with pytest.raises(DataError, match=str(bad)):
        load_dataset(DataConfig(source="mnist", root=str(tmp_path)))


def test_idx_count_mismatch_names_both_files(tmp_path):
    make_idx_source(tmp_path, "MNIST")
    write_idx(tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", np.zeros(7, np.uint8))
    with pytest.raises(DataError, match="holds 10 images but .*t10k-labels-idx1-ubyte holds 7 labels"):
        load_dataset(DataConfig(source="mnist", root=str(tmp_path)))


def test_corrupt_gz_file_is_named(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"garbage, not gzip")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_dataset(DataConfig(source="mnist", root=str(tmp_path)))
    assert not list(raw.glob("*.partial"))


def test_download_uses_files_already_there(tmp_path):
    make_idx_source(tmp_path, "MNIST", gz=True)
    calls = []
    download_dataset(DataConfig(source="mnist", root=str(tmp_path)), progress=lambda done, total: calls.append(done))
    assert calls == [0, 1]
    assert len(load_dataset(DataConfig(source="mnist", root=str(tmp_path), download=True)).train) == 20


def test_download_failure_names_folder(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # refused at once, never leaves the machine
    with pytest.raises(DataError, match="Could not download MNIST into .*MNIST/raw") as err:
        load_dataset(DataConfig(source="mnist", root=str(tmp_path), download=True))
    assert "\n" not in str(err.value)


def test_download_of_bundled_source_is_refused():
    with pytest.raises(ConfigError):
        download_dataset(DataConfig(source="digits"))


def test_cifar10_missing_names_folder(tmp_path):
    with pytest.raises(DataError, match="cifar-10-batches-py: place data_batch_1") as err:
        load_dataset(DataConfig(source="cifar10", root=str(tmp_path)))
    assert "cifar-10-python.tar.gz" in str(err.value)


def test_cifar10_loads_channels_first_from_tarball(tmp_path, monkeypatch):
    import torchvision.datasets.cifar

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args: True)  # fake files, no md5s
    folder = tmp_path / "made" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    pixels = np.repeat(np.array([10, 20, 30], np.uint8), 32 * 32)  # CIFAR rows: all R, then all G, then all B
    for name, n in [*((f"data_batch_{i}", 2) for i in range(1, 6)), ("test_batch", 3)]:
        batch = {"data": np.tile(pixels, (n, 1)), "labels": list(range(n))}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as archive:
        archive.add(folder, arcname=folder.name)
    split = load_dataset(DataConfig(source="cifar10", root=str(root)))
    assert (len(split.train), len(split.val)) == (10, 3) and split.train.shape == (3, 32, 32)
    assert split.train.images[:, :, 5, 7].tolist() == [[10, 20, 30]] * 10
    assert split.val.class_names[3] == "c3" and split.val.labels.tolist() == [0, 1, 2]


def test_corrupt_cifar10_tarball_is_named(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(DataError, match=str(tmp_path / "cifar-10-python.tar.gz")):
        load_dataset(DataConfig(source="cifar10", root=str(tmp_path)))


def test_expected_files(tmp_path):
    assert expected_files("mnist", tmp_path)[0] == tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    assert expected_files("kmnist", tmp_path)[0].parent == tmp_path / "KMNIST" / "raw"
    assert len(expected_files("cifar10", tmp_path)) == 7 and expected_files("digits", tmp_path) == []
    assert expected_files("mnist")[0].is_relative_to(default_data_root())
    assert default_data_root().name == "data" and "latent-explorer" in str(default_data_root())


@pytest.mark.slow
@pytest.mark.skipif(not (REAL_MNIST / "train-images-idx3-ubyte.gz").is_file(), reason="real MNIST not available")
def test_real_mnist_from_gz(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in REAL_MNIST.glob("*-ubyte.gz"):
        shutil.copy(gz, raw / gz.name)
    split = load_dataset(DataConfig(source="mnist", root=str(tmp_path)))
    assert (len(split.train), len(split.val)) == (60000, 10000) and split.train.shape == (1, 28, 28)
    assert split.train.labels[:5].tolist() == [5, 0, 4, 1, 9] and split.train.labels.bincount().min() > 5000


# --- folder of images ---------------------------------------------------------------------------------

def test_folder_with_class_subfolders(tmp_path):
    save_png(tmp_path / "cats" / "a.png", (20, 30), "RGB", (255, 0, 0))
    save_png(tmp_path / "cats" / "b.PNG", (8, 8), "L", (40,))
    save_png(tmp_path / "dogs" / "c.jpg", (50, 40), "RGB", (0, 0, 255))
    save_png(tmp_path / "empty" / "notes.png", (5, 5))
    (tmp_path / "empty" / "notes.png").rename(tmp_path / "empty" / "notes.txt")
    save_png(tmp_path / "loose.png", (9, 9))  # beside class folders: left out
    split = load_dataset(DataConfig(source="folder", path=str(tmp_path), image_size=16, val_fraction=0.3))
    assert split.name == f"folder:{tmp_path.name}" and split.train.class_names == ["cats", "dogs"]
    assert len(split.train) + len(split.val) == 3 and split.train.shape == (1, 16, 16)
    colour = load_dataset(DataConfig(source="folder", path=str(tmp_path), image_size=16, grayscale=False))
    both = torch.cat([colour.train.images, colour.val.images]), torch.cat([colour.train.labels, colour.val.labels])
    assert colour.train.shape == (3, 16, 16)
    red = both[0][both[1] == 1][0]  # the single dog is blue
    assert red[:, 8, 8].tolist()[2] > 250 and red[:, 8, 8].tolist()[0] < 5


def test_folder_without_subfolders_is_one_class(tmp_path):
    for i in range(5):
        save_png(tmp_path / f"img{i}.bmp", (10 + i, 12), "RGB", (i * 50, 0, 0))
    split = load_dataset(DataConfig(source="folder", path=str(tmp_path), image_size=8))
    assert split.train.class_names == ["unlabelled"] and split.train.n_classes == 1
    assert (len(split.train), len(split.val)) == (4, 1) and split.train.labels.eq(0).all()


def test_folder_centre_crops_before_resizing(tmp_path):
    image = Image.new("L", (30, 10), 0)
    image.paste(255, (10, 0, 20, 10))  # a white middle square between black sides
    image.save(tmp_path / "wide.png")
    image.save(tmp_path / "wide2.png")
    split = load_dataset(DataConfig(source="folder", path=str(tmp_path), image_size=5))
    assert split.train.images.min() > 200  # a squashed, uncropped image would have black edges


def test_empty_folder_is_named(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=f"{tmp_path} holds no images"):
        load_dataset(DataConfig(source="folder", path=str(tmp_path)))


def test_folder_with_one_image_is_refused(tmp_path):
    save_png(tmp_path / "only.png", (4, 4))
    with pytest.raises(DataError, match="at least 2"):
        load_dataset(DataConfig(source="folder", path=str(tmp_path)))


def test_garbage_png_is_named(tmp_path):
    (tmp_path / "bad.png").write_text("this is text, not a PNG")
    with pytest.raises(DataError, match="bad.png is not an image PIL can read"):
        load_dataset(DataConfig(source="folder", path=str(tmp_path)))


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "nowhere")):
        load_dataset(DataConfig(source="folder", path=str(tmp_path / "nowhere")))


# --- .npz arrays ----------------------------------------------------------------------------------------

def npz_config(path: Path) -> DataConfig:
    return DataConfig(source="npz", path=str(path), val_fraction=0.25)


def test_npz_grayscale_uint8_non_square(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (8, 5, 7), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", x=x)
    split = load_dataset(npz_config(tmp_path / "a.npz"))
    assert split.name == "npz:a.npz" and split.train.shape == (1, 5, 7) and split.train.class_names == ["unlabelled"]
    assert (len(split.train), len(split.val)) == (6, 2)
    assert sorted(torch.cat([split.train.images, split.val.images]).sum((1, 2, 3)).tolist()) == sorted(
        x.astype(np.int64).sum((1, 2)).tolist())


def test_npz_float_channels_last_and_first(tmp_path):
    x = np.full((4, 6, 6, 3), 0.5, np.float32)
    x[..., 0] = 1.0
    np.savez(tmp_path / "last.npz", x=x)
    split = load_dataset(npz_config(tmp_path / "last.npz"))
    assert split.train.shape == (3, 6, 6) and split.train.images[0, :, 0, 0].tolist() == [255, 128, 128]
    np.savez(tmp_path / "first.npz", x=np.full((4, 3, 6, 6), 200.0))  # above 1: read as 0..255
    assert load_dataset(npz_config(tmp_path / "first.npz")).train.images.eq(200).all()


def test_npz_with_labels_and_class_names(tmp_path):
    x = np.zeros((6, 4, 4), np.uint8)
    np.savez(tmp_path / "y.npz", x=x, y=np.array([0, 1, 2, 0, 1, 2]), class_names=np.array(["a", "b", "c"]))
    split = load_dataset(npz_config(tmp_path / "y.npz"))
    assert split.train.class_names == ["a", "b", "c"]
    assert sorted(torch.cat([split.train.labels, split.val.labels]).tolist()) == [0, 0, 1, 1, 2, 2]
    np.savez(tmp_path / "n.npz", x=x, y=np.array([0, 1, 4, 0, 1, 2]))
    assert load_dataset(npz_config(tmp_path / "n.npz")).train.class_names == ["0", "1", "2", "3", "4"]


def test_npz_label_length_mismatch(tmp_path):
    np.savez(tmp_path / "m.npz", x=np.zeros((6, 4, 4), np.uint8), y=np.zeros(5, np.int64))
    with pytest.raises(DataError, match=r"m\.npz holds 6 images in x but 5 labels in y"):
        load_dataset(npz_config(tmp_path / "m.npz"))


def test_npz_corrupt_file_is_named(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(DataError, match=str(path)):
        load_dataset(npz_config(path))
    path.write_bytes(b"PK\x03\x04" + b"\0" * 100)  # a broken zip
    with pytest.raises(DataError, match=str(path)):
        load_dataset(npz_config(path))


class Trap:
    """Records whether an instance was ever unpickled."""

    unpickled = False

    def __setstate__(self, state):
        Trap.unpickled = True


def test_npz_object_array_is_refused_not_unpickled(tmp_path):
    np.savez(tmp_path / "obj.npz", x=np.array([Trap(), Trap()], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="obj.npz"):
        load_dataset(npz_config(tmp_path / "obj.npz"))
    assert not Trap.unpickled


@pytest.mark.parametrize("arrays, message", [
    ({"images": np.zeros((4, 4, 4), np.uint8)}, "no array named x"),
    ({"x": np.zeros((4, 4), np.uint8)}, "has shape"),
    ({"x": np.zeros((4, 2, 4, 4), np.uint8)}, "has shape"),
    ({"x": np.full((4, 4, 4), np.nan)}, "NaN"),
    ({"x": np.full((4, 4, 4), 300, np.int32)}, "outside 0..255"),
    ({"x": np.zeros((4, 4, 4)), "y": np.array([0.5, 1, 2, 3])}, "whole numbers"),
    ({"x": np.zeros((4, 4, 4)), "y": np.array([0, 1, 2, 3]), "class_names": np.array(["a"])}, "names 1 classes"),
])
def test_npz_bad_arrays(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_dataset(npz_config(tmp_path / "bad.npz"))


def test_npz_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(npz_config(tmp_path / "none.npz"))


# --- DataConfig ---------------------------------------------------------------------------------------------

def test_data_config_round_trip():
    cfg = DataConfig(source="folder", root="/data", path="/images", image_size=32, grayscale=False,
                     val_fraction=0.2, seed=3, download=True)
    cfg.validate()
    assert DataConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert set(SOURCE_TITLES) == set(SOURCES)


@pytest.mark.parametrize("changes", [
    {"source": "imagenet"}, {"source": "folder"}, {"source": "npz", "path": ""}, {"image_size": 3},
    {"image_size": 257}, {"image_size": "28"}, {"image_size": True}, {"val_fraction": 0}, {"val_fraction": 0.6},
    {"seed": -1}, {"grayscale": "yes"}, {"root": 5},
])
def test_data_config_rejects_bad_values(changes):
    with pytest.raises(ConfigError):
        DataConfig(**changes).validate()
    with pytest.raises(ConfigError):
        load_dataset(DataConfig(**changes))


def test_data_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="'colour'"):
        DataConfig.from_dict({"source": "digits", "colour": True})
    with pytest.raises(ConfigError):
        DataConfig.from_dict(["digits"])


def test_every_source_has_one_reader_that_load_dataset_calls(monkeypatch):
    import engine.datasets as datasets

    assert set(datasets.READERS) == set(SOURCES) == set(SOURCE_TITLES)
    seen = []
    monkeypatch.setitem(datasets.READERS, "npz", lambda cfg: seen.append(cfg.path) or "split")
    assert load_dataset(DataConfig(source="npz", path="x.npz")) == "split" and seen == ["x.npz"]
