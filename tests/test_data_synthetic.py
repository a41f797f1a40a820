"""``mebqat data synthesize`` (``mebqat/data/synthetic.py``) at reduced sizes: each synthetic dataset loads
through the real loaders with verify off, pixel for pixel; with verify on they refuse it in one line naming
the file, also a file copied out without its marker; a rerun keeps a current set; an interrupted write
leaves nothing; a folder without the marker (a real dataset) is never overwritten; ``data.verify`` reaches
the loaders from a job's configuration."""

from __future__ import annotations

import pickle
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from mebqat.cli import main
from mebqat.core.config import resolve_job
from mebqat.core.hashing import config_hash
from mebqat.data import DatasetCorruptError, load_fewshot, load_supervised
from mebqat.data import synthetic as syn
from mebqat.data.storage import SyntheticDataError

SIZES = {
    "cifar10": {"per_batch": 12, "test": 10},
    "svhn": {"train": 20, "test": 10, "extra": 15},
    "omniglot": {"drawers": 2},
    "miniimagenet": {"train": 3, "validation": 2, "test": 2, "per_class": 4},
}
SEED = syn.SEED


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    outcomes = syn.synthesize(root, sizes=SIZES)
    assert [(o.dataset, o.written, o.note) for o in outcomes] == [(name, True, "new") for name in syn.DATASETS]
    return root


def expected_image(label: int, number: int, shape: tuple[int, int, int]) -> np.ndarray:
    return syn.synthetic_images(np.array([label]), shape, SEED, first=number)[0]


def test_the_folders_and_files_are_where_the_loaders_look():
    from mebqat.data import cifar10, miniimagenet, omniglot, svhn

    assert syn.FOLDERS == {
        "cifar10": cifar10.FOLDER,
        "svhn": svhn.FOLDER,
        "omniglot": omniglot.FOLDER,
        "miniimagenet": miniimagenet.FOLDER,
    }
    assert syn.SVHN_FILES == svhn.PARTS and syn.OMNIGLOT_SETS == omniglot.SETS
    assert syn.MINIIMAGENET_MODES == tuple(miniimagenet.MODES.values())
    mini = syn.REAL_SIZES["miniimagenet"]
    assert [mini[mode] for mode in miniimagenet.MODES.values()] == list(miniimagenet.CLASSES.values())
    assert mini["per_class"] == miniimagenet.PER_CLASS
    characters = syn.omniglot_characters()  # from the shipped Vinyals split: both official sets, complete
    assert len(characters) == 1623 and len(set(characters)) == 1623
    assert sum(s == "background" for s, _, _ in characters) == 964


def test_cifar10_loads_pixel_exact_and_is_learnable(root):
    trainval = load_supervised("cifar10", "trainval", root, verify=False, normalization="none", augment=False)
    test = load_supervised("cifar10", "test", root, verify=False, normalization="none", augment=False)
    assert len(trainval) == 60 and len(test) == 10 and trainval.input_shape == (3, 32, 32)
    assert np.bincount(trainval.targets).tolist() == [6] * 10 and sorted(test.targets) == list(range(10))
    for i in (0, 13, 59):  # image i of the five training batches
        assert np.array_equal(trainval.images[i].numpy(), expected_image(trainval.targets[i], i, (3, 32, 32)))
    # the class patterns are shared by train and test: nearest class mean gets every test image right
    means = torch.stack([trainval.images[trainval.labels == c].float().mean(0) for c in range(10)])
    distances = ((test.images.float()[:, None] - means[None]) ** 2).flatten(2).sum(2)
    assert distances.argmin(1).tolist() == test.targets.tolist()
    with open(root / "cifar-10-batches-py" / "data_batch_2", "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    assert batch["batch_label"] == "training batch 2 of 5" and len(batch["filenames"]) == 12
    assert batch["data"].dtype == np.uint8 and batch["data"].shape == (12, 3072) and syn.MARKER_KEY in batch


def test_svhn_files_are_matlab_v5_with_10_for_the_digit_0(root):
    mat = scipy.io.loadmat(str(root / "svhn" / "extra_32x32.mat"))
    assert mat["X"].shape == (32, 32, 3, 15) and mat["X"].dtype == np.uint8 and mat["y"].shape == (15, 1)
    assert set(mat["y"].ravel()) <= set(range(1, 11)) and 10 in mat["y"]
    assert syn.MARKER_KEY in mat and "synthesize" in str(mat[syn.MARKER_KEY])
    for i in (0, 7, 14):
        label = int(mat["y"][i, 0]) % 10
        assert np.array_equal(mat["X"][..., i].transpose(2, 0, 1), expected_image(label, i, (3, 32, 32)))
    trainval = load_supervised("svhn", "trainval", root, verify=False, normalization="none")
    assert len(trainval) == 35 and trainval.input_shape == (3, 40, 40)
    assert trainval.targets[20:].tolist() == (mat["y"].ravel() % 10).tolist()  # train, then extra
    assert len(load_supervised("svhn", "test", root, verify=False)) == 10


def test_omniglot_has_every_character_in_folders_and_zips(root):
    base = root / "omniglot-py"
    numbers = {character: n for n, character in enumerate(syn.omniglot_characters(), start=1)}
    splits = {s: load_fewshot("omniglot", s, root, verify=False) for s in ("train", "val", "test")}
    assert [splits[s].num_classes for s in splits] == [4112, 688, 1692]
    assert [len(splits[s]) for s in splits] == [4112 * 2, 688 * 2, 1692 * 2]
    alphabet, character = splits["test"].class_names[0].split("@")[0].split("/")
    number = numbers[("evaluation", alphabet, character)]
    pngs = sorted((base / "images_evaluation" / alphabet / character).iterdir())
    assert [p.name for p in pngs] == [f"{number:04d}_01.png", f"{number:04d}_02.png"]
    with Image.open(pngs[0]) as image:
        assert image.mode == "1" and image.size == (105, 105)
        assert np.array_equal(np.asarray(image), np.asarray(syn.omniglot_drawing(number, 1)))
    drawing = syn.omniglot_drawing(number, 1).convert("L").resize((28, 28), Image.BILINEAR)
    upright = splits["test"].images[splits["test"].labels_to_indices[0]][0, 0].numpy()
    assert np.array_equal(upright, 255 - np.asarray(drawing))
    for top in syn.OMNIGLOT_SETS.values():
        on_disk = {p.relative_to(base).as_posix() for p in (base / top).rglob("*") if p.is_file()}
        with zipfile.ZipFile(base / f"{top}.zip") as archive:
            assert set(archive.namelist()) == on_disk
    assert all(re.fullmatch(r"\d{4}_\d{2}\.png", p.name) for p in (base / "images_background").rglob("*.png"))


def test_miniimagenet_caches_hold_disjoint_classes_pixel_exact(root):
    splits = {s: load_fewshot("miniimagenet", s, root, verify=False) for s in ("train", "val", "test")}
    assert [splits[s].num_classes for s in splits] == [3, 2, 2]
    assert all(len(d) == 4 * d.num_classes and d.input_shape == (3, 84, 84) for d in splits.values())
    names = [set(d.class_names) for d in splits.values()]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    val = splits["val"]
    assert np.array_equal(val.images[5].numpy(), expected_image(3 + 1, 5, (3, 84, 84)))  # val class 1 is class 4
    assert val.targets.tolist() == [0] * 4 + [1] * 4


@pytest.mark.parametrize("name", syn.DATASETS)
def test_verification_refuses_synthetic_data_in_one_line(root, name):
    loader = load_fewshot if name in ("omniglot", "miniimagenet") else load_supervised
    with pytest.raises(SyntheticDataError) as err:
        loader(name, "test", root)
    message = str(err.value)
    assert isinstance(err.value, DatasetCorruptError) and "\n" not in message
    assert message.startswith(f"{root / syn.FOLDERS[name] / syn.MARKER_NAME} is the synthetic rehearsal data")
    assert "`mebqat data synthesize`" in message and "data.verify: false" in message and "real" in message
    marker = (root / syn.FOLDERS[name] / syn.MARKER_NAME).read_text()
    assert f"NOT THE {syn.TITLES[name].upper()} DATASET" in marker


@pytest.mark.parametrize(
    "name, copied, named",
    [
        (
            "cifar10",
            [
                "data_batch_1",
                "data_batch_2",
                "data_batch_3",
                "data_batch_4",
                "data_batch_5",
                "test_batch",
                "batches.meta",
            ],
            "batches.meta",
        ),  # fmt: skip
        ("svhn", ["test_32x32.mat"], "test_32x32.mat"),
        ("omniglot", ["images_background.zip", "images_evaluation.zip"], "images_evaluation.zip"),
        ("miniimagenet", ["mini-imagenet-cache-test.pkl"], "mini-imagenet-cache-test.pkl"),
    ],
)
def test_files_copied_without_the_marker_file_are_still_refused(root, tmp_path, name, copied, named):
    folder = tmp_path / syn.FOLDERS[name]
    folder.mkdir()
    for file in copied:
        shutil.copy(root / syn.FOLDERS[name] / file, folder / file)
    loader = load_fewshot if name in ("omniglot", "miniimagenet") else load_supervised
    with pytest.raises(SyntheticDataError, match=re.escape(f"{folder / named} is the synthetic rehearsal data")):
        loader(name, "test", tmp_path)
    assert len(loader(name, "test", tmp_path, verify=False)) > 0  # omniglot: extracted from its zip


def test_a_rerun_keeps_a_current_set_and_rewrites_another_size(tmp_path):
    sizes = {"cifar10": {"per_batch": 3, "test": 2}}
    syn.synthesize(tmp_path, ["cifar10"], sizes=sizes)
    folder = tmp_path / "cifar-10-batches-py"
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    (again,) = syn.synthesize(tmp_path, ["cifar10"], sizes=sizes)
    assert not again.written and again.images == 17 and again.note.startswith("written ")
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps
    (larger,) = syn.synthesize(tmp_path, ["cifar10"], sizes={"cifar10": {"per_batch": 4, "test": 2}})
    assert larger.written and larger.note.startswith("rewritten: it was written with")
    assert len(load_supervised("cifar10", "trainval", tmp_path, verify=False)) == 20
    (folder / "test_batch").write_bytes(b"cut short")  # damaged after the fact: the listing tells, no hashing
    (repaired,) = syn.synthesize(tmp_path, ["cifar10"], sizes={"cifar10": {"per_batch": 4, "test": 2}})
    assert repaired.note == "rewritten: its files differ from its manifest"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-batches-py"]  # no staging left over


def test_an_interrupted_write_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    (tmp_path / ".synthesize-svhn-x1y2").mkdir()  # a killed run's staging folder: removed by the next run
    (tmp_path / ".synthesize-svhn-x1y2" / "train_32x32.mat").write_bytes(b"half")
    real_writer = syn.WRITERS["svhn"]

    def interrupted(folder: Path, **sizes) -> int:
        real_writer(folder, **sizes)
        raise KeyboardInterrupt

    monkeypatch.setitem(syn.WRITERS, "svhn", interrupted)
    with pytest.raises(KeyboardInterrupt):
        syn.synthesize(tmp_path, ["cifar10", "svhn"], sizes={"cifar10": SIZES["cifar10"], "svhn": SIZES["svhn"]})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-batches-py"]  # cifar10 was done before


def test_a_folder_without_the_marker_is_never_overwritten(tmp_path):
    real = tmp_path / "svhn"
    real.mkdir()
    (real / "train_32x32.mat").write_bytes(b"the real thing")
    with pytest.raises(ValueError) as err:
        syn.synthesize(tmp_path, ["cifar10", "svhn"], sizes=SIZES)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{real} exists and is not synthetic rehearsal data")
    assert "never overwrites" in message and "--root" in message
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["svhn", "svhn/train_32x32.mat"]
    assert (real / "train_32x32.mat").read_bytes() == b"the real thing"


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="unknown dataset 'cifar100' to synthesize"):
        syn.synthesize(Path("/nonexistent"), ["cifar100"])
    with pytest.raises(ValueError, match="unknown size 'shots' for omniglot; its sizes: drawers"):
        syn.synthesize(Path("/nonexistent"), ["omniglot"], sizes={"omniglot": {"shots": 1}})
    with pytest.raises(ValueError, match="size 'test' of cifar10 must be a positive integer, got 0"):
        syn.synthesize(Path("/nonexistent"), ["cifar10"], sizes={"cifar10": {"test": 0}})
    assert not Path("/nonexistent").exists()


def test_cli_writes_keeps_and_refuses(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(syn.REAL_SIZES, "cifar10", SIZES["cifar10"])  # the command writes the real sizes
    assert main(["data", "synthesize", "--root", str(tmp_path), "--only", "cifar10"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"cifar10: wrote {tmp_path / 'cifar-10-batches-py'} (70 images,")
    assert "1 datasets" in out[1] and "data.verify: false" in out[1]
    assert main(["data", "synthesize", "--root", str(tmp_path), "--only", "cifar10"]) == 0
    assert capsys.readouterr().out.startswith("cifar10: up to date, nothing to do:")
    (tmp_path / "svhn").mkdir()
    (tmp_path / "svhn" / "test_32x32.mat").write_bytes(b"real")
    assert main(["data", "synthesize", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mebqat data: error: ") and "is not synthetic rehearsal data" in err


@pytest.mark.parametrize("value", ["cifar10,cifar100", ","])
def test_cli_bad_only_is_one_line(tmp_path, value, capsys):
    with pytest.raises(SystemExit) as done:
        main(["data", "synthesize", "--root", str(tmp_path / "r"), "--only", value])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --only:" in err and "cifar10,svhn,omniglot,miniimagenet" in err
    assert ("'cifar100'" in err) == (value != ",")
    assert not (tmp_path / "r").exists()


def test_data_verify_reaches_the_loaders_from_the_job_config(root):
    from mebqat.engine.data import SupervisedData

    config = resolve_job({"setup": "cifar10_mobilenetv2", "method": "qat", "scale": "paper", "train_task": "(4,4)"})
    assert config["data"]["verify"] is True and config["data"]["name"] == "cifar10"
    config["data"]["root"] = str(root)
    with pytest.raises(SyntheticDataError):
        SupervisedData(config, torch.device("cpu"), "test")
    hash_verified = config_hash(config)
    config["data"]["verify"] = False
    assert len(SupervisedData(config, torch.device("cpu"), "test").test) == 10
    assert config_hash(config) == hash_verified  # a finished job is not stale for it
