"""Omniglot (Tables 4/5) through ``torchvision.datasets.Omniglot``'s files, with the fixed character split
of Vinyals et al. (1028 / 172 / 423 characters, shipped in ``mebqat/resources/omniglot_vinyals_split/``).

As in the authors' pipeline (official-mebqat.md §6): every character becomes 4 classes by rotation by
0/90/180/270° in every split (4112 / 688 / 1692 classes), images are resized to 28×28 and inverted
(strokes = 1 on a 0 background), one channel, no normalisation.

Layout under the data root (what torchvision's download leaves): ``omniglot-py/images_background/
<Alphabet>/<characterNN>/*.png`` and ``omniglot-py/images_evaluation/…``, with ``images_background.zip``
and ``images_evaluation.zip`` beside them. A zip without its folder is extracted on first use.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..core.registry import DATASETS
from .fewshot import FewShotSplit
from .storage import DatasetCorruptError, DatasetMissingError, open_checked, staged_download
from .synthetic import refuse_synthetic

FOLDER = "omniglot-py"
SETS = {"background": "images_background", "evaluation": "images_evaluation"}
URL = "https://github.com/brendenlake/omniglot/tree/master/python"
SIZE = 28
ROTATIONS = (0, 90, 180, 270)
SPLIT_FILES = {"train": "train.json", "val": "val.json", "test": "test.json"}
INFO = DATASETS.get("omniglot")
HOW_TO_OBTAIN = INFO.how_to_obtain


def split_characters(split: str) -> list[tuple[str, str, str]]:
    """The Vinyals split as sorted ``(set, alphabet, character)`` triples."""
    text = (resources.files("mebqat") / "resources" / "omniglot_vinyals_split" / SPLIT_FILES[split]).read_text()
    return sorted(
        (s, alphabet, character)
        for s, alphabets in json.loads(text).items()
        for alphabet, characters in alphabets.items()
        for character in characters
    )


@cache
def _loader_class(verify: bool):
    """torchvision's Omniglot, or (``verify=False``) the same class accepting the extracted folder without
    the MD5-checked zip."""
    from torchvision.datasets import Omniglot

    if verify:
        return Omniglot

    class UncheckedOmniglot(Omniglot):
        def _check_integrity(self) -> bool:
            return os.path.isdir(os.path.join(self.root, self._get_target_folder()))

    return UncheckedOmniglot


def _extract(archive: Path, target: Path) -> None:
    """Extract an official zip (whose top folder is ``target.name``) onto ``target`` in one rename."""
    with tempfile.TemporaryDirectory(prefix=f".extract-{target.name}-", dir=target.parent) as tmp:
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        except zipfile.BadZipFile as err:
            raise DatasetCorruptError("omniglot", archive, HOW_TO_OBTAIN, f"not a zip file: {err}") from None
        if not (Path(tmp) / target.name).is_dir():
            raise DatasetCorruptError("omniglot", archive, HOW_TO_OBTAIN, f"the zip has no top folder {target.name}/")
        os.replace(Path(tmp) / target.name, target)


def _ensure_set(root: Path, set_name: str, download: bool, verify: bool) -> None:
    base = root / FOLDER
    folder, archive = base / SETS[set_name], base / f"{SETS[set_name]}.zip"
    if verify:
        refuse_synthetic("omniglot", [base, folder, archive], HOW_TO_OBTAIN)
    if folder.is_dir():
        return
    if not archive.is_file() and download:
        from torchvision.datasets import Omniglot

        with staged_download(root, "omniglot", HOW_TO_OBTAIN) as staging:
            Omniglot(str(staging), background=set_name == "background", download=True)
    if archive.is_file() and not folder.is_dir():
        if verify:
            from torchvision.datasets import Omniglot
            from torchvision.datasets.utils import check_integrity

            if not check_integrity(str(archive), Omniglot.zips_md5[SETS[set_name]]):
                raise DatasetCorruptError(
                    "omniglot",
                    archive,
                    HOW_TO_OBTAIN,
                    "MD5 differs from the official zip; files you built yourself load with verify=False",
                )
        _extract(archive, folder)
    if not folder.is_dir():
        raise DatasetMissingError("omniglot", folder, HOW_TO_OBTAIN)


def _open_set(root: Path, set_name: str, verify: bool):
    return open_checked(
        "omniglot",
        root / FOLDER / f"{SETS[set_name]}.zip",
        HOW_TO_OBTAIN,
        lambda: _loader_class(verify)(str(root), background=set_name == "background", download=False),
        problem="torchvision could not verify it against the official zip's MD5 (extracted folders "
        "without their zip cannot be verified)",
    )


def _to_array(image: Image.Image) -> np.ndarray:
    # torchvision's Resize(28) on a PIL image is PIL's bilinear resize; inverting makes strokes bright.
    return 255 - np.asarray(image.convert("L").resize((SIZE, SIZE), Image.Resampling.BILINEAR), dtype=np.uint8)


def load(split: str, root: Path, *, download: bool, verify: bool, seed: int) -> FewShotSplit:
    from tqdm import tqdm

    characters = split_characters(split)
    datasets = {}
    for set_name in sorted({s for s, _, _ in characters}):
        _ensure_set(root, set_name, download, verify)
        datasets[set_name] = _open_set(root, set_name, verify)
    # Index (set, "alphabet/character") -> [(image file, flat index)] via torchvision's own file listing.
    files: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for set_name, ds in datasets.items():
        for flat, (image_name, char_idx) in enumerate(ds._flat_character_images):
            key = (set_name, Path(ds._characters[char_idx]).as_posix())
            files.setdefault(key, []).append((image_name, flat))
    absent = [f"{s}/{a}/{c}" for s, a, c in characters if (s, f"{a}/{c}") not in files]
    if absent:
        raise DatasetCorruptError(
            "omniglot",
            root / FOLDER,
            HOW_TO_OBTAIN,
            f"{len(absent)} characters of the {split} split have no images, e.g. " + ", ".join(absent[:3]),
        )
    blocks, targets, names = [], [], []
    for i, (set_name, alphabet, character) in enumerate(
        tqdm(characters, desc=f"omniglot {split}", unit="char", mininterval=1.0)
    ):
        ds = datasets[set_name]
        base = np.stack([_to_array(ds[flat][0]) for _, flat in sorted(files[(set_name, f"{alphabet}/{character}")])])
        for r, degrees in enumerate(ROTATIONS):
            blocks.append(np.rot90(base, k=r, axes=(1, 2)))  # counter-clockwise, as PIL's rotate
            targets.append(np.full(len(base), len(ROTATIONS) * i + r))
            names.append(f"{alphabet}/{character}@{degrees}")
    images = torch.from_numpy(np.ascontiguousarray(np.concatenate(blocks)[:, None]))
    # the folders of the sets the split's characters come from: every image of a set counts as read
    sources = [root / FOLDER / SETS[set_name] for set_name in sorted(datasets)]
    return FewShotSplit(images, np.concatenate(targets), INFO, split, root, names, sources=sources)
