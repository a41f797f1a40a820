"""The real-dataset loaders on small files written in each dataset's real on-disk format, read through the
same ``load_supervised`` / ``load_fewshot`` calls a user makes; the missing-dataset and failed-download
errors; checksum verification."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from mebqat.core.registry import DATASETS
from mebqat.data import DatasetCorruptError, DatasetMissingError, load_fewshot, load_supervised
from mebqat.data import cifar10 as cifar10_module
from mebqat.data import svhn as svhn_module
from mebqat.data.transforms import DOREFA_STATS


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


# ---------------------------------------------------------------- CIFAR-10: pickled python batches


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    """cifar-10-batches-py/ with 5 training batches of 12 images, a test batch of 10, batches.meta: protocol-2
    pickles of dicts with data (uint8 [N, 3072]) and labels. The official files come from Python 2, whose
    byte-string keys Python 3 reads back (encoding="latin1", as torchvision does) as str: so str keys here."""
    root = tmp_path_factory.mktemp("cifar")
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for name, n in [(f"data_batch_{i}", 12) for i in range(1, 6)] + [("test_batch", 10)]:
        entry = {
            "batch_label": name,
            "data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            "labels": [int(v) for v in rng.integers(0, 10, size=n)],
            "filenames": ["x.png"] * n,
        }
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        batches[name] = entry
    meta = {"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": 12, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root, batches


def test_cifar10_reads_python_batches_pixel_exact(cifar_root):
    root, batches = cifar_root
    data = load_supervised("cifar10", "trainval", root, normalization="none", verify=False, augment=False)
    raw = np.concatenate([batches[f"data_batch_{i}"]["data"] for i in range(1, 6)])
    labels = sum((batches[f"data_batch_{i}"]["labels"] for i in range(1, 6)), [])
    assert len(data) == 60 and data.input_shape == (3, 32, 32) and data.info.name == "cifar10"
    for i in (0, 13, 59):
        x, y = data[i]
        # the python batches store each image as 1024 red, then green, then blue bytes, row-major
        assert torch.equal(x, torch.from_numpy(raw[i].reshape(3, 32, 32)).float() / 255)
        assert y == labels[i] and x.dtype == torch.float32
    test = load_supervised("cifar10", "test", root, verify=False)
    assert len(test) == 10 and test.targets.tolist() == batches["test_batch"]["labels"]


def test_cifar10_dorefa_normalisation_and_augmentation(cifar_root):
    root, batches = cifar_root
    plain = load_supervised("cifar10", "test", root, normalization="sat", verify=False)
    normed = load_supervised("cifar10", "test", root, normalization="dorefa", verify=False)
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in DOREFA_STATS["cifar10"])
    assert torch.allclose(normed[3][0], (plain[3][0] - mean) / std, atol=1e-6)
    assert torch.all(plain[3][0] * 255 == torch.round(plain[3][0] * 255))  # SAT: the 1/255 grid
    # train/trainval augment by default (crop with padding 4, flip): draws differ, shape stays
    augmented = load_supervised("cifar10", "trainval", root, normalization="none", verify=False)
    torch.manual_seed(0)
    draws = [augmented[0][0] for _ in range(8)]
    assert all(d.shape == (3, 32, 32) for d in draws)
    assert any(not torch.equal(draws[0], d) for d in draws[1:])
    assert any((d == 0).all(dim=0).any() for d in draws)  # zero padding entered the crop somewhere


def test_val_is_a_fixed_stratified_part_of_trainval(cifar_root, monkeypatch):
    root, _ = cifar_root
    monkeypatch.setattr(cifar10_module, "VAL_SIZE", 12)  # the real one is 5,000 of 50,000
    kw = dict(root=root, verify=False, normalization="none", augment=False)
    trainval, train, val = (load_supervised("cifar10", s, **kw) for s in ("trainval", "train", "val"))
    assert len(val) == 12 and len(train) == len(trainval) - 12
    assert not set(train.indices) & set(val.indices)
    assert sorted(set(train.indices) | set(val.indices)) == list(range(len(trainval)))
    again = load_supervised("cifar10", "val", **kw)
    assert np.array_equal(again.indices, val.indices)
    share = np.bincount(trainval.targets, minlength=10) * 12 / len(trainval)
    assert np.abs(np.bincount(val.targets, minlength=10) - share).max() < 1  # stratified
    train_split = load_supervised("cifar10", "train", root=root, verify=False)
    assert train_split.augment and train_split.pipeline.crop_padding == 4 and train_split.pipeline.flip
    assert not load_supervised("cifar10", "val", root=root, verify=False).augment


def test_checksums_are_verified_unless_told_otherwise(cifar_root):
    root, _ = cifar_root
    with pytest.raises(DatasetCorruptError) as err:
        load_supervised("cifar10", "test", root)
    message = str(err.value)
    assert "cifar10" in message and "MD5" in message and "verify=False" in message


# ---------------------------------------------------------------- SVHN: .mat files


def write_svhn(folder: Path, part: str, labels: list[int], rng) -> np.ndarray:
    n = len(labels)
    colours = rng.integers(0, 256, size=(n, 3), dtype=np.uint8)
    x = np.broadcast_to(colours.T[None, None], (32, 32, 3, n)).copy()  # one flat colour per image
    y = np.array([[10 if v == 0 else v] for v in labels], dtype=np.uint8)  # SVHN writes digit 0 as 10
    scipy.io.savemat(folder / svhn_module.PARTS[part], {"X": x, "y": y})
    return colours


def test_svhn_trains_on_train_plus_extra_at_40x40(tmp_path, monkeypatch):
    folder = tmp_path / "svhn"
    folder.mkdir()
    rng = np.random.default_rng(1)
    labels = {"train": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] * 2, "extra": [0, 9, 5] * 4, "test": [3, 0, 7]}
    colours = {part: write_svhn(folder, part, ys, rng) for part, ys in labels.items()}
    trainval = load_supervised("svhn", "trainval", tmp_path, normalization="none", verify=False)
    assert len(trainval) == 32 and trainval.input_shape == (3, 40, 40)
    assert trainval.targets.tolist() == labels["train"] + labels["extra"]  # 10 read back as 0
    x, y = trainval[25]  # an `extra` image
    assert x.shape == (3, 40, 40) and y == labels["extra"][5]
    assert torch.equal(x, torch.from_numpy(colours["extra"][5]).float().view(3, 1, 1).expand(3, 40, 40) / 255)
    normed = load_supervised("svhn", "test", tmp_path, verify=False)
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in DOREFA_STATS["svhn"])
    flat = torch.from_numpy(colours["test"][1]).float().view(3, 1, 1) / 255
    assert torch.allclose(normed[1][0], ((flat - mean) / std).expand(3, 40, 40), atol=1e-6)
    assert normed[1][1] == 0
    monkeypatch.setattr(svhn_module, "VAL_SIZE", 8)
    val = load_supervised("svhn", "val", tmp_path, verify=False)
    train = load_supervised("svhn", "train", tmp_path, verify=False)
    assert len(val) + len(train) == 32 and not set(val.indices) & set(train.indices)
    with pytest.raises(ValueError, match="input_shape"):
        load_supervised("svhn", "test", tmp_path, verify=False, input_shape=(3, 32, 32))


# ---------------------------------------------------------------- Omniglot: torchvision's folders / zips


def vinyals(split: str) -> dict:
    text = (resources.files("mebqat") / "resources" / "omniglot_vinyals_split" / f"{split}.json").read_text()
    return json.loads(text)


def stroke_image(code: int, variant: int) -> Image.Image:
    """Black strokes on white, as the official PNGs: an L-shaped mark whose arm lengths encode the character."""
    a = np.full((105, 105), 255, dtype=np.uint8)
    a[10 : 10 + 20 + code % 60, 20:26] = 0
    a[70:76, 20 : 40 + (code // 60) % 40 + variant] = 0
    return Image.fromarray(a).convert("1")


@pytest.fixture(scope="module")
def omniglot_root(tmp_path_factory):
    """Every character of the Vinyals split with 2 drawings: images_background as folders (beside a zip
    that is not the official one), images_evaluation only as a zip, to be extracted on first use."""
    root = tmp_path_factory.mktemp("omniglot")
    base = root / "omniglot-py"
    characters = sorted(
        {
            (s, a, c)
            for split in ("train", "val", "test")
            for s, alphabets in vinyals(split).items()
            for a, cs in alphabets.items()
            for c in cs
        }
    )
    codes = {}
    base.mkdir(parents=True)
    archive = zipfile.ZipFile(base / "images_evaluation.zip", "w")
    for code, (s, a, c) in enumerate(characters):
        codes[(s, a, c)] = code
        for v in range(2):
            buffer = io.BytesIO()
            stroke_image(code, v).save(buffer, format="PNG")
            name = f"{c[-2:]}{v:02d}_{v + 1:02d}.png"  # the official names are like 0123_04.png
            if s == "background":
                path = base / "images_background" / a / c / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(buffer.getvalue())
            else:
                archive.writestr(f"images_evaluation/{a}/{c}/{name}", buffer.getvalue())
    archive.close()
    (base / "images_background.zip").write_bytes(b"not the official zip")
    return root, codes


def test_omniglot_vinyals_split_rotations_and_inversion(omniglot_root):
    root, codes = omniglot_root
    test = load_fewshot("omniglot", "test", root, verify=False)  # all from images_evaluation.zip
    assert (root / "omniglot-py" / "images_evaluation").is_dir()
    assert not [p for p in (root / "omniglot-py").iterdir() if p.name.startswith(".")]  # no extraction leftovers
    assert test.num_classes == 4 * 423 == DATASETS.get("omniglot").split_classes["test"]
    assert test.input_shape == (1, 28, 28) and len(test) == 4 * 423 * 2
    first = sorted((s, a, c) for s, alphabets in vinyals("test").items() for a, cs in alphabets.items() for c in cs)[0]
    assert test.class_names[:4] == [f"{first[1]}/{first[2]}@{d}" for d in (0, 90, 180, 270)]
    upright = test.images[test.labels_to_indices[0]]
    expected = 255 - np.asarray(stroke_image(codes[first], 0).convert("L").resize((28, 28), Image.BILINEAR))
    assert np.array_equal(upright[0, 0].numpy(), expected)  # inverted: strokes bright, background 0
    assert upright[0, 0, 0, -1] == 0 and upright.max() > 200
    for r in (1, 2, 3):
        rotated = test.images[test.labels_to_indices[r]]
        assert torch.equal(rotated, torch.rot90(upright, r, dims=(2, 3)))
    x, y = test[0]
    assert x.dtype == torch.float32 and torch.equal(x, upright[0].float() / 255) and y == 0


def test_omniglot_train_spans_both_sets_and_splits_are_disjoint(omniglot_root):
    root, _ = omniglot_root
    names = {s: set(load_fewshot("omniglot", s, root, verify=False).class_names) for s in ("train", "val", "test")}
    assert [len(names[s]) for s in ("train", "val", "test")] == [4112, 688, 1692]
    assert not names["train"] & names["val"] and not names["train"] & names["test"] and not names["val"] & names["test"]


def test_omniglot_verification_needs_the_official_zip(omniglot_root):
    root, _ = omniglot_root
    with pytest.raises(DatasetCorruptError, match="verify=False"):
        load_fewshot("omniglot", "val", root)


# ---------------------------------------------------------------- MiniImageNet: learn2learn's pickle cache


def test_miniimagenet_reads_the_pickle_cache(tmp_path):
    folder = tmp_path / "mini-imagenet"
    folder.mkdir()
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(36, 84, 84, 3), dtype=np.uint8)
    order = rng.permutation(36)  # classes own scattered indices, as in the real cache
    class_dict = {f"n0{k}": sorted(order[k * 6 : (k + 1) * 6].tolist()) for k in range(6)}
    (folder / "mini-imagenet-cache-test.pkl").write_bytes(
        pickle.dumps({"image_data": images, "class_dict": class_dict})
    )
    data = load_fewshot("miniimagenet", "test", tmp_path, verify=False)
    assert data.num_classes == 6 and data.class_names == list(class_dict) and data.input_shape == (3, 84, 84)
    for label, (_name, indices) in enumerate(class_dict.items()):
        assert sorted(data.labels_to_indices[label]) == indices
    x, y = data[int(class_dict["n03"][2])]
    assert y == 3 and torch.equal(x, torch.from_numpy(images[class_dict["n03"][2]]).permute(2, 0, 1).float() / 255)
    assert sorted(p.name for p in folder.iterdir()) == ["mini-imagenet-cache-test.pkl"]  # no bookkeeping written
    with pytest.raises(DatasetCorruptError, match="20 x 600"):
        load_fewshot("miniimagenet", "test", tmp_path)  # verify=True expects the real 20 x 600


# ---------------------------------------------------------------- absent datasets


@pytest.mark.parametrize(
    "name, split, expected",
    [
        ("cifar10", "train", "cifar-10-batches-py/data_batch_1"),
        ("svhn", "trainval", "svhn/train_32x32.mat"),
        ("omniglot", "test", "omniglot-py/images_evaluation"),
        ("miniimagenet", "val", "mini-imagenet/mini-imagenet-cache-validation.pkl"),
    ],
)
def test_missing_dataset_error_names_dataset_path_and_remedy(tmp_path, name, split, expected):
    root = tmp_path / "empty-root"
    loader = load_fewshot if DATASETS.get(name).kind == "fewshot" else load_supervised
    with pytest.raises(DatasetMissingError) as err:
        loader(name, split, root)
    message = str(err.value)
    assert f"dataset {name!r}" in message and str(root / expected) in message
    assert "How to obtain it" in message and "download=True" in message
    assert err.value.path == root / expected
    assert not root.exists()  # nothing written, not even the root


def test_failed_download_leaves_nothing_behind(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    monkeypatch.setattr(CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # refused at once
    root = tmp_path / "root"
    with pytest.raises(DatasetMissingError, match="could not be downloaded") as err:
        load_supervised("cifar10", "test", root, download=True)
    assert "cifar-10-python.tar.gz" in str(err.value)  # how to obtain it by hand
    assert not root.exists()
    root.mkdir()
    (root / "unrelated.txt").write_text("kept")
    with pytest.raises(DatasetMissingError):
        load_supervised("cifar10", "test", root, download=True)
    assert tree(root) == ["unrelated.txt"]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown dataset 'cifar100'"):
        load_supervised("cifar100", "train")
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        load_supervised("cifar10", "valid")
    with pytest.raises(ValueError, match="unknown normalization 'imagenet'"):
        load_supervised("cifar10", "test", normalization="imagenet")
    with pytest.raises(ValueError, match="is a fewshot dataset; use load_fewshot"):
        load_supervised("omniglot", "train")
    with pytest.raises(ValueError, match="unknown split 'trainval'"):
        load_fewshot("omniglot", "trainval")
