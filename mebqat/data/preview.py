"""A picture of a dataset: a grid of samples, one row per class, titled with the dataset's name (and
"stand-in for …" where it is one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.registry import DATASETS
from .registry import load_fewshot, load_supervised

GAP = 2


def _mosaic(rows: list[list[np.ndarray]], channels: int) -> np.ndarray:
    """Images ``[C, H, W]`` in [0, 1] tiled row by row with a thin grey gap."""
    h, w = rows[0][0].shape[1:]
    cols = max(len(r) for r in rows)
    grid = np.full((len(rows) * (h + GAP) - GAP, cols * (w + GAP) - GAP, channels), 0.5, dtype=np.float32)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            grid[i * (h + GAP) : i * (h + GAP) + h, j * (w + GAP) : j * (w + GAP) + w] = image.transpose(1, 2, 0)
    return grid


def _fewshot_rows(name: str, split: str, root, rows: int, cols: int, seed: int):
    data = load_fewshot(name, split, root, seed=seed)
    rng = np.random.default_rng(0)
    classes = np.sort(rng.choice(data.num_classes, size=min(rows, data.num_classes), replace=False))
    grid = [[data[i][0].numpy() for i in data.labels_to_indices[int(c)][:cols]] for c in classes]
    return grid, [data.class_names[int(c)] for c in classes], data.input_shape[0]


def _supervised_rows(name: str, split: str, root, rows: int, cols: int, input_shape):
    data = load_supervised(name, split, root, normalization="none", augment=False, input_shape=input_shape)
    grid, labels = [], []
    for c in range(min(rows, data.num_classes)):
        picks = np.flatnonzero(data.targets == c)[:cols]
        grid.append([data[int(i)][0].numpy() for i in picks])
        labels.append(f"class {c}")
    return grid, labels, data.input_shape[0]


def preview(
    name: str,
    out: str | Path,
    split: str = "train",
    root: str | Path | None = None,
    rows: int = 10,
    cols: int = 10,
    seed: int = 0,
    input_shape: tuple[int, int, int] | None = None,
) -> Path:
    """Write the sample grid of ``name``'s ``split`` to the PNG ``out``; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if rows < 1 or cols < 1:
        raise ValueError(f"rows and cols must be >= 1, got {rows} and {cols}")
    info = DATASETS.get(name)
    if info.kind == "fewshot":
        grid, labels, channels = _fewshot_rows(name, split, root, rows, cols, seed)
    else:
        grid, labels, channels = _supervised_rows(name, split, root, rows, cols, input_shape)
    mosaic = _mosaic(grid, channels)
    height = grid[0][0].shape[1]
    scale = max(1.0, 40.0 / height)  # small images get more room per pixel
    fig_w = mosaic.shape[1] * scale / 100 + 2.2
    fig_h = mosaic.shape[0] * scale / 100 + 0.8
    fig, ax = plt.subplots(figsize=(fig_w, fig_h), dpi=100)
    ax.imshow(mosaic[..., 0] if channels == 1 else mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([i * (height + GAP) + height / 2 for i in range(len(labels))], labels, fontsize=7)
    ax.set_xticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    title = f"{info.title}: {split} split, one row per class"
    ax.set_title(title, fontsize=9)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight", metadata={"Title": title})
    plt.close(fig)
    return out
