"""The offline stand-ins: real content (not noise), determinism per seed, disjoint splits, atomic caches,
and marked as stand-ins everywhere."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from mebqat.core.registry import DATASETS
from mebqat.data import (
    EpisodeSampler,
    build_standin,
    glyph_catalogue,
    glyph_render,
    glyphs,
    load_fewshot,
    load_supervised,
)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- digits


def test_digits_are_sklearns_handwritten_digits_resized(data_root):
    from sklearn.datasets import load_digits

    sk = load_digits()
    for shape in [(3, 32, 32), (3, 40, 40)]:
        splits = {
            s: load_supervised("digits", s, data_root, normalization="none", augment=False, input_shape=shape)
            for s in ("train", "val", "test", "trainval")
        }
        assert {s: len(d) for s, d in splits.items()} == {"train": 1293, "val": 144, "test": 360, "trainval": 1437}
        assert splits["train"].input_shape == shape and splits["train"][0][0].shape == shape
        # each image, shrunk back to 8x8, matches the sklearn digit it claims to be
        for i in (0, 100, 359):
            index = int(splits["test"].indices[i])
            x, y = splits["test"][i]
            assert y == sk.target[index]
            assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])  # grey replicated
            small = F.adaptive_avg_pool2d(x[:1][None], 8)[0, 0].numpy()
            assert np.corrcoef(small.ravel(), sk.images[index].ravel())[0, 1] > 0.9
        assert splits["test"].images.shape == (360, *shape) and splits["test"].images.dtype == torch.uint8


def test_digits_splits_are_index_disjoint_and_stratified(data_root):
    idx = {s: set(load_supervised("digits", s, data_root).indices.tolist()) for s in ("train", "val", "test")}
    assert not idx["train"] & idx["val"] and not idx["train"] & idx["test"] and not idx["val"] & idx["test"]
    assert len(idx["train"] | idx["val"] | idx["test"]) == 1797
    test = load_supervised("digits", "test", data_root)
    assert np.bincount(test.targets).min() >= 35  # about 36 of every digit


def test_digits_dorefa_statistics_come_from_its_own_training_data(data_root):
    data = load_supervised("digits", "trainval", data_root, normalization="dorefa", augment=False)
    x = torch.stack([data[i][0] for i in range(len(data))])
    assert x.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (x.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3
    cifar_role = load_supervised("digits", "train", data_root)
    assert cifar_role.augment and cifar_role.pipeline.crop_padding == 4 and cifar_role.pipeline.flip
    svhn_role = load_supervised("digits", "train", data_root, input_shape=(3, 40, 40))
    assert not svhn_role.augment and svhn_role.pipeline.crop_padding is None
    with pytest.raises(ValueError, match="input_shape"):
        load_supervised("digits", "train", data_root, input_shape=(2, 32, 32))


# ---------------------------------------------------------------- glyphs: what they are


@pytest.mark.parametrize(
    "name, stands_for", [("glyphs28", "omniglot"), ("glyphs84", "miniimagenet"), ("digits", "cifar10 / svhn")]
)
def test_standins_say_so(name, stands_for):
    info = DATASETS.get(name)
    assert info.is_standin and info.stands_for == stands_for and "stand-in" in info.title
    assert not DATASETS.get(stands_for.split()[0]).is_standin


@pytest.mark.parametrize("name", ["glyphs28", "glyphs84"])
def test_glyph_splits_are_alphabet_disjoint_and_sized_as_declared(data_root, name):
    info = DATASETS.get(name)
    splits = {s: load_fewshot(name, s, data_root) for s in ("train", "val", "test")}
    per_class = glyphs.VARIANTS[name].samples_per_class
    alphabets, codepoints = {}, {}
    for s, data in splits.items():
        assert data.num_classes == info.split_classes[s] and data.input_shape == info.input_shape
        assert data.info.is_standin and data.seed == 0
        assert all(len(v) == per_class for v in data.labels_to_indices.values())
        alphabets[s] = {n.rsplit(" U+", 1)[0] for n in data.class_names}
        codepoints[s] = {n.rsplit(" U+", 1)[1] for n in data.class_names}
        assert len(codepoints[s]) == data.num_classes
    declared = {s: {a for a, split, _, _ in glyph_catalogue.ALPHABETS if split == s} for s in splits}
    for s in splits:
        assert alphabets[s] <= declared[s]
        for other in splits:
            if other != s:
                assert not alphabets[s] & alphabets[other] and not codepoints[s] & codepoints[other]
    assert len(alphabets["train"]) >= 15 and len(alphabets["test"]) >= 5  # many scripts, not one


def test_glyph_catalogue_only_uses_glyphs_the_fonts_have_and_drops_lookalikes():
    from matplotlib.ft2font import FT2Font

    catalogue = glyph_catalogue.catalogue()
    charmaps = [set(FT2Font(str(p)).get_charmap()) for p in glyph_catalogue.font_paths()]
    for character in catalogue[::50]:
        assert all(character.codepoint in charmaps[f] for f in character.fonts)
    codepoints = {c.codepoint for c in catalogue}
    assert ord("A") in codepoints and ord("А") not in codepoints  # Cyrillic A looks like Latin A
    assert ord("α") in codepoints and ord("⍺") not in codepoints  # APL alpha looks like Greek alpha
    assert ord("Á") not in codepoints and ord(".") not in codepoints  # precomposed; too small


# ---------------------------------------------------------------- glyphs: real content


def test_glyphs28_look_like_omniglot_strokes(data_root):
    data = load_fewshot("glyphs28", "test", data_root)
    x = data.images.float().numpy()[:, 0] / 255
    ink = x > 0.5
    assert np.median((x < 0.1).mean(axis=(1, 2))) > 0.7  # mostly background (noise: ~0.1)
    assert ink.any(axis=(1, 2)).all() and x.max(axis=(1, 2)).min() == 1.0  # every image has full strokes
    agree = (ink[:, :, 1:] == ink[:, :, :-1]).mean(axis=(1, 2))
    assert agree.mean() > 0.9  # smooth strokes, not speckle (noise: 0.5)
    components = np.array([ndimage.label(im, structure=np.ones((3, 3)))[1] for im in ink[::7]])
    assert np.median(components) <= 3  # a few connected strokes per glyph
    assert x[:, :2].mean() < x[:, 10:18].mean()  # centred: ink away from the border


def nearest_neighbour_accuracy(data, features, episodes=150) -> float:
    sampler = EpisodeSampler(data, ways=5, shots=1, queries=5, seed=1)
    correct = 0.0
    for _ in range(episodes):
        e = sampler.sample()
        pred = e.support_y[torch.cdist(features(e.query_x), features(e.support_x)).argmin(dim=1)]
        correct += (pred == e.query_y).float().mean().item()
    return correct / episodes


def test_glyph_classes_are_recognisable_from_one_example(data_root):
    """5-way 1-shot nearest neighbour on raw pixels (grey) or edge maps (colour): far above chance (0.2),
    which shuffled labels, noise or class-free renderings would not beat."""
    grey = load_fewshot("glyphs28", "test", data_root)
    assert nearest_neighbour_accuracy(grey, lambda x: x.flatten(1)) > 0.35

    def edges(x):
        g = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        gx, gy = (g[..., 1:] - g[..., :-1]).abs(), (g[..., 1:, :] - g[..., :-1, :]).abs()
        return F.avg_pool2d((F.pad(gx, (0, 1)) + F.pad(gy, (0, 0, 0, 1)) > 0.15).float(), 4).flatten(1)

    colour = load_fewshot("glyphs84", "test", data_root)
    assert nearest_neighbour_accuracy(colour, edges) > 0.3
    x = colour.images.float() / 255
    assert (x[:, 0] - x[:, 1]).abs().mean() > 0.1  # colour, not grey


# ---------------------------------------------------------------- glyphs: determinism and caching


def test_glyph_build_is_deterministic_for_a_seed(data_root, tmp_path):
    first = build_standin("glyphs84", data_root, seed=0)
    again = build_standin("glyphs84", tmp_path / "elsewhere", seed=0)
    assert again["seconds"] is not None  # really rebuilt
    assert sha256(tmp_path / "elsewhere" / "standins" / "glyphs84-seed0-v1.npz") == sha256(
        data_root / "standins" / "glyphs84-seed0-v1.npz"
    )
    assert again["fingerprint"] == first["fingerprint"]
    other = build_standin("glyphs84", tmp_path / "elsewhere", seed=1)
    assert other["fingerprint"] != first["fingerprint"]
    a = load_fewshot("glyphs84", "train", data_root, seed=0)
    b = load_fewshot("glyphs84", "train", tmp_path / "elsewhere", seed=1)
    assert not torch.equal(a.images, b.images)
    cached = build_standin("glyphs84", data_root, seed=0)
    assert cached["seconds"] is None and cached["fingerprint"] == first["fingerprint"]


def test_glyph_class_drawings_depend_on_seed_alone():
    character = glyph_catalogue.select("test", 3, np.random.default_rng(0))[0]
    draw = lambda seed: glyph_render.render_masks(character, 20, 28, 2, 0.7, np.random.default_rng([seed, 28]))  # noqa: E731
    (a, fa), (b, fb), (c, _) = draw(0), draw(0), draw(1)
    assert np.array_equal(a, b) and np.array_equal(fa, fb) and not np.array_equal(a, c)
    assert len({m.tobytes() for m in a}) == 20  # every drawing differs


def test_interrupted_build_leaves_no_cache(tmp_path, monkeypatch):
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = glyph_render.render_masks
    monkeypatch.setattr(glyph_render, "render_masks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_fewshot("glyphs84", "train", tmp_path)
    leftovers = list((tmp_path / "standins").iterdir()) if (tmp_path / "standins").exists() else []
    assert leftovers == []


def test_the_stand_in_cache_is_reused_not_rebuilt(data_root):
    load_fewshot("glyphs28", "val", data_root)
    path = data_root / "standins" / "glyphs28-seed0-v1.npz"
    stamp = path.stat().st_mtime_ns
    summary = build_standin("glyphs28", data_root)
    assert summary["seconds"] is None and path.stat().st_mtime_ns == stamp
    assert summary["classes"] == {"train": 1028, "val": 172, "test": 423}
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary files
