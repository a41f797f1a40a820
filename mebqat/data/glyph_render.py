"""Drawing the samples of one glyph class, all at once (numpy/scipy over a stack, not one image at a time).

Each sample is the character drawn anew: a font picked among those that have the glyph, thinner or
thicker strokes, a random affine map (scale, aspect, rotation, shear, shift) and a smooth elastic warp
(the vertices of a 4×4 mesh jittered, the displacement interpolated bilinearly between them), drawn at
``supersample``× the output size and box-averaged down. Colour samples then get a textured two-colour
background and a contrasting glyph colour, sometimes with an outline.
"""

from __future__ import annotations

import math
from functools import cache, lru_cache

import numpy as np
import torch

from . import glyph_catalogue as catalogue

GRID = 4
STROKES = np.array([-1, 0, 0, 1, 1])  # erode by 1 px, as drawn, dilate by 1 px (at the supersampled size)
LUMA = np.array([0.299, 0.587, 0.114])


@lru_cache(maxsize=16384)
def _ink(codepoint: int, font: int, size: int) -> np.ndarray:
    ink = catalogue.glyph_ink(codepoint, font, size).astype(np.float32) / 255.0
    ink.flags.writeable = False
    return ink


@cache
def _interpolation(canvas: int, points: int) -> np.ndarray:
    """``[canvas, points]`` linear-interpolation weights from ``points`` evenly spaced nodes (the first at 0,
    the last at ``canvas``) to pixel centres; ``A @ V @ A.T`` spreads node values ``V`` over the canvas."""
    u = (np.arange(canvas) + 0.5) / canvas * (points - 1)
    cell = np.minimum(u.astype(int), points - 2)
    frac = u - cell
    weights = np.zeros((canvas, points))
    weights[np.arange(canvas), cell] = 1 - frac
    weights[np.arange(canvas), cell + 1] = frac
    return weights


def _stack_inks(codepoint: int, fonts: np.ndarray, size: int, margin: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each sample's ink in a common frame: stack ``[k, H, W]``, ink centres ``[k, 2]`` (x, y) and extents."""
    inks = [_ink(codepoint, int(f), size) for f in fonts]
    height = max(i.shape[0] for i in inks) + 2 * margin
    width = max(i.shape[1] for i in inks) + 2 * margin
    stack = np.zeros((len(inks), height, width), dtype=np.float32)
    centres = np.empty((len(inks), 2))
    extents = np.empty(len(inks))
    for n, ink in enumerate(inks):
        h, w = ink.shape
        y, x = (height - h) // 2, (width - w) // 2
        stack[n, y : y + h, x : x + w] = ink
        centres[n] = (x + w / 2, y + h / 2)
        extents[n] = max(h, w)
    return stack, centres, extents


def _vary_strokes(stack: np.ndarray, strokes: np.ndarray) -> np.ndarray:
    from scipy.ndimage import grey_dilation, grey_erosion

    chosen = strokes == 1
    if chosen.any():
        stack[chosen] = grey_dilation(stack[chosen], size=(1, 3, 3))
    chosen = np.flatnonzero(strokes == -1)
    if len(chosen):
        thinner = grey_erosion(stack[chosen], size=(1, 3, 3))
        keep = thinner.sum(axis=(1, 2)) >= 0.6 * stack[chosen].sum(axis=(1, 2))  # never erase thin strokes
        stack[chosen[keep]] = thinner[keep]
    return stack


def render_masks(
    character: catalogue.Character, count: int, size: int, supersample: int, em: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` distorted drawings: coverage ``[count, size, size]`` in [0, 1] and the font of each."""
    canvas = size * supersample
    fonts = np.asarray(character.fonts)[rng.integers(len(character.fonts), size=count)]
    strokes = rng.choice(STROKES, size=count)
    stack, centres, extents = _stack_inks(character.codepoint, fonts, round(em * canvas), margin=3)
    stack = _vary_strokes(stack, strokes)

    # Forward map ink -> canvas: x' = M (x - centre) + place, with M = rotate · shear · stretch.
    fit = np.minimum(1.0, 0.8 * canvas / extents)  # very wide or tall glyphs are first brought inside
    scale = fit * rng.uniform(0.8, 1.1, size=count)
    aspect = np.exp(rng.uniform(-0.12, 0.12, size=count))
    angle = np.radians(rng.uniform(-15.0, 15.0, size=count))
    shear = rng.uniform(-0.25, 0.25, size=count)
    place = canvas / 2 + rng.uniform(-0.06, 0.06, size=(count, 2)) * canvas
    stretch = np.zeros((count, 2, 2))
    stretch[:, 0, 0], stretch[:, 1, 1] = scale * aspect, scale / aspect
    skew = np.tile(np.eye(2), (count, 1, 1))
    skew[:, 0, 1] = shear
    cos, sin = np.cos(angle), np.sin(angle)
    rotate = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    inverse = np.linalg.inv(rotate @ skew @ stretch)

    # Source point of every mesh vertex (jittered in canvas space), then of every pixel.
    nodes = np.linspace(0, canvas, GRID + 1)
    vy, vx = np.meshgrid(nodes, nodes, indexing="ij")
    jitter = rng.normal(0.0, 0.025 * canvas, size=(count, 2, GRID + 1, GRID + 1))
    out_xy = np.stack([vx, vy])[None] + jitter - place[:, :, None, None]
    src = np.einsum("kab,kbij->kaij", inverse, out_xy) + centres[:, :, None, None]
    weights = _interpolation(canvas, GRID + 1)
    dense = weights @ src @ weights.T  # [count, 2, canvas, canvas]
    # grid_sample's normalised coordinates: -1 and 1 are the outer edges of the ink frame
    grid = torch.from_numpy(
        np.stack(
            [dense[:, 0] * (2.0 / stack.shape[2]) - 1.0, dense[:, 1] * (2.0 / stack.shape[1]) - 1.0], axis=-1
        ).astype(np.float32)
    )
    drawn = torch.nn.functional.grid_sample(
        torch.from_numpy(stack)[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )[:, 0].numpy()
    masks = drawn.reshape(count, size, supersample, size, supersample).mean(axis=(2, 4))
    # Hairline fonts would fade to grey once reduced; like a pen stroke, the darkest ink is full ink.
    masks /= np.maximum(masks.max(axis=(1, 2), keepdims=True), 1e-6)
    return np.clip(masks, 0.0, 1.0).astype(np.float32), fonts


def _textures(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """Stripes, checkers or smooth blobs in [-1, 1], ``[count, size, size]`` float32."""
    y, x = ((np.mgrid[0:size, 0:size] + 0.5) / size).astype(np.float32)
    kind = rng.integers(3, size=count)
    freq = rng.uniform(2.0, 9.0, size=count).astype(np.float32)
    phi = rng.uniform(0, math.pi, size=count).astype(np.float32)
    phase = rng.uniform(0, 2 * math.pi, size=count).astype(np.float32)
    coarse = rng.normal(size=(count, 5, 5)).astype(np.float32)
    texture = np.empty((count, size, size), dtype=np.float32)
    for n in range(count):
        w = 2 * math.pi * freq[n]
        if kind[n] == 0:
            texture[n] = np.sin(w * (math.cos(phi[n]) * x + math.sin(phi[n]) * y) + phase[n])
        elif kind[n] == 1:
            texture[n] = np.sin(w * x) * np.sin(w * y)
        else:
            weights = _interpolation(size, 5).astype(np.float32)
            blob = weights @ coarse[n] @ weights.T
            texture[n] = blob / (np.abs(blob).max() + 1e-6)
    return texture


def _backgrounds(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """Two-colour gradients plus a tinted texture: ``[count, size, size, 3]`` float32 in [0, 1]."""
    y, x = ((np.mgrid[0:size, 0:size] + 0.5) / size - 0.5).astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi, size=count)
    t = (
        np.cos(angle).astype(np.float32)[:, None, None] * x + np.sin(angle).astype(np.float32)[:, None, None] * y + 0.5
    )[..., None]
    c1 = rng.uniform(size=(count, 1, 1, 3)).astype(np.float32)
    c2 = rng.uniform(size=(count, 1, 1, 3)).astype(np.float32)
    texture = _textures(rng, count, size)[..., None]
    tint = rng.uniform(-1.0, 1.0, size=(count, 1, 1, 3)) * rng.uniform(0.05, 0.2, size=(count, 1, 1, 1))
    image = c1 + (c2 - c1) * t
    image += texture * tint.astype(np.float32)
    return np.clip(image, 0.0, 1.0, out=image)


def colourise(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Composite coverage masks onto textured backgrounds: uint8 ``[count, 3, H, W]``."""
    from scipy.ndimage import grey_dilation

    count = masks.shape[0]
    image = _backgrounds(rng, count, masks.shape[1])
    mean_luma = image.mean(axis=(1, 2)) @ LUMA
    candidates = rng.uniform(size=(count, 20, 3))  # the first with enough contrast is the glyph colour
    contrast = np.abs(candidates @ LUMA - mean_luma[:, None]) >= 0.3
    colour = candidates[np.arange(count), contrast.argmax(axis=1)]
    fallback = np.where((mean_luma > 0.5)[:, None], 0.0, 1.0) * np.ones(3)
    colour = np.where(contrast.any(axis=1)[:, None], colour, fallback).astype(np.float32)
    outlined = np.flatnonzero(rng.random(count) < 0.5)
    edge = np.where(rng.random((count, 1)) < 0.5, 1.0 - colour, rng.uniform(size=(count, 3))).astype(np.float32)
    if len(outlined):
        ring = grey_dilation(masks[outlined], size=(1, 3, 3))[..., None]
        image[outlined] += (edge[outlined, None, None, :] - image[outlined]) * ring
    alpha = masks[..., None]
    image += (colour[:, None, None, :] - image) * alpha
    return np.rint(image * 255).astype(np.uint8).transpose(0, 3, 1, 2)
