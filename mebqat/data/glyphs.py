"""``glyphs28`` and ``glyphs84``: the offline few-shot stand-ins, rendered from the fonts shipped inside
matplotlib (characters: :mod:`mebqat.data.glyph_catalogue`; drawing: :mod:`mebqat.data.glyph_render`).

- ``glyphs28`` plays Omniglot: 1×28×28 grey, strokes bright on black (Omniglot's inverted form), drawn at
  56×56 and reduced; as many characters per split as the Vinyals split has (1028 / 172 / 423), 20
  distorted drawings each.
- ``glyphs84`` plays MiniImageNet: 3×84×84 colour, the character in a random colour (sometimes outlined)
  on a random two-colour gradient with a stripe, checker or blob texture; 64 / 16 / 20 classes as
  MiniImageNet, 40 drawings each.

The characters of each split come from that split's alphabets only. A class's drawings come from one
random stream seeded by ``(seed, variant, code point)``, so a build is bit-identical for a seed. Builds are
cached in ``<root>/standins/<name>-seed<seed>-v<VERSION>.npz`` (written to a temporary file, then renamed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.registry import DATASETS
from . import glyph_catalogue as catalogue
from . import glyph_render as render
from .fewshot import FewShotSplit
from .storage import cached_arrays, digest

VERSION = 1


@dataclass(frozen=True)
class Variant:
    name: str
    salt: int
    channels: int
    size: int
    supersample: int
    classes: dict[str, int]
    samples_per_class: int
    em: float
    """Font size as a fraction of the canvas."""


VARIANTS = {
    "glyphs28": Variant("glyphs28", 28, 1, 28, 2, {"train": 1028, "val": 172, "test": 423}, 20, 0.7),
    "glyphs84": Variant("glyphs84", 84, 3, 84, 1, {"train": 64, "val": 16, "test": 20}, 40, 0.55),
}


def _draw(
    chosen: list[tuple[str, catalogue.Character]],
    variant: Variant,
    seed: int,
    images: np.ndarray,
    fonts: np.ndarray,
    bar,
) -> None:
    k = variant.samples_per_class
    for c, (_, character) in enumerate(chosen):
        rng = np.random.default_rng([seed, variant.salt, character.codepoint])  # one class, one stream
        rows = slice(c * k, (c + 1) * k)
        masks, fonts[rows] = render.render_masks(character, k, variant.size, variant.supersample, variant.em, rng)
        images[rows] = (
            np.rint(masks * 255).astype(np.uint8)[:, None] if variant.channels == 1 else render.colourise(masks, rng)
        )
        bar.update(k)


def build_arrays(variant: Variant, seed: int, progress: bool = True) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from tqdm import tqdm

    chosen: list[tuple[str, catalogue.Character]] = []
    for s, split in enumerate(catalogue.SPLITS):
        rng = np.random.default_rng([seed, variant.salt, 1000 + s])
        chosen += [(split, c) for c in catalogue.select(split, variant.classes[split], rng)]
    n, k, size = len(chosen), variant.samples_per_class, variant.size
    images = np.empty((n * k, variant.channels, size, size), dtype=np.uint8)
    fonts = np.empty(n * k, dtype=np.int8)
    bar = tqdm(
        total=n * k, desc=f"building {variant.name} (stand-in)", unit="img", mininterval=0.5, disable=not progress
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small grid_sample calls: threads only add overhead
    try:
        _draw(chosen, variant, seed, images, fonts, bar)
    finally:
        torch.set_num_threads(threads)
        bar.close()
    arrays: dict[str, np.ndarray] = {
        "images": images,
        "labels": np.repeat(np.arange(n, dtype=np.int64), k),
        "fonts": fonts,
        "class_split": np.array([catalogue.SPLITS.index(split) for split, _ in chosen], dtype=np.int8),
        "class_codepoint": np.array([c.codepoint for _, c in chosen], dtype=np.int64),
    }
    names = [c.name for _, c in chosen]
    font_names = [p.name for p in catalogue.font_paths()]
    meta = {
        "dataset": variant.name,
        "version": VERSION,
        "seed": seed,
        "class_names": names,
        "fonts": font_names,
        "fingerprint": digest(names, font_names, *(arrays[key] for key in sorted(arrays))),
    }
    return meta, arrays


def cache_path(root: Path, name: str, seed: int) -> Path:
    return root / "standins" / f"{name}-seed{seed}-v{VERSION}.npz"


def load_cache(name: str, root: Path, seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray], float | None]:
    """The cached build, made first if absent; the third value is the build time when one was made."""
    if seed < 0:
        raise ValueError(f"a stand-in seed must be >= 0, got {seed}")

    def check(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> str | None:
        if not {"images", "labels", "class_split"} <= set(arrays) or "fingerprint" not in meta:
            return f"is not a {name} cache of this version"
        return None

    return cached_arrays(cache_path(root, name, seed), lambda: build_arrays(VARIANTS[name], seed), check)


def _build(name: str):
    def build(root: Path, seed: int) -> dict[str, Any]:
        meta, arrays, seconds = load_cache(name, root, seed)
        split_of = arrays["class_split"]
        path = cache_path(root, name, seed)
        return {
            "name": name,
            "title": DATASETS.get(name).title,
            "paths": [str(path)],
            "bytes": path.stat().st_size,
            "seconds": seconds,
            "seed": seed,
            "fingerprint": meta["fingerprint"],
            "classes": {s: int((split_of == i).sum()) for i, s in enumerate(catalogue.SPLITS)},
            "samples_per_class": VARIANTS[name].samples_per_class,
            "input_shape": list(arrays["images"].shape[1:]),
        }

    return build


def load_split(name: str, split: str, root: Path, seed: int) -> FewShotSplit:
    meta, arrays, _ = load_cache(name, root, seed)
    classes = np.flatnonzero(arrays["class_split"] == catalogue.SPLITS.index(split))
    relabel = np.full(len(arrays["class_split"]), -1, dtype=np.int64)
    relabel[classes] = np.arange(len(classes))
    rows = np.flatnonzero(relabel[arrays["labels"]] >= 0)
    images = torch.from_numpy(np.ascontiguousarray(arrays["images"][rows]))
    names = [meta["class_names"][c] for c in classes]
    targets = relabel[arrays["labels"][rows]]
    source = cache_path(root, name, seed)
    return FewShotSplit(images, targets, DATASETS.get(name), split, root, names, seed=seed, sources=[source])


build_glyphs28 = _build("glyphs28")
build_glyphs84 = _build("glyphs84")


def load_glyphs28(split: str, root: Path, *, download: bool, verify: bool, seed: int) -> FewShotSplit:
    return load_split("glyphs28", split, root, seed)


def load_glyphs84(split: str, root: Path, *, download: bool, verify: bool, seed: int) -> FewShotSplit:
    return load_split("glyphs84", split, root, seed)
