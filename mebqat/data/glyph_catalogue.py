"""The characters the ``glyphs`` stand-ins are drawn from: Unicode blocks as "alphabets", each assigned to
one split (so train/val/test are alphabet-disjoint, like Omniglot's), restricted to code points that the
fonts shipped inside matplotlib really have a glyph for (read from each font's character map), and
cleaned of characters a network could not tell apart:

- no combining marks, spaces, controls or precomposed letters (``Á`` is ``A`` plus an accent);
- no glyphs smaller than 0.3 em (full stops, commas, dots);
- no look-alikes: a character whose normalised rendering nearly equals that of an earlier one (Latin
  ``A`` / Cyrillic ``А``, ``α`` / ``⍺``) is dropped, so no character reappears in another split.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# DejaVu Sans/Serif/Mono and STIX General in four styles each: matplotlib ships all of them.
FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
)

# (alphabet, split, first code point, last code point): Unicode blocks.
ALPHABETS: tuple[tuple[str, str, int, int], ...] = (
    ("Latin", "train", 0x0020, 0x007F),
    ("Latin-1 Supplement", "train", 0x0080, 0x00FF),
    ("Latin Extended-A", "train", 0x0100, 0x017F),
    ("Latin Extended-B", "train", 0x0180, 0x024F),
    ("IPA Extensions", "train", 0x0250, 0x02AF),
    ("Greek", "train", 0x0370, 0x03FF),
    ("Cyrillic", "train", 0x0400, 0x052F),
    ("Armenian", "test", 0x0530, 0x058F),
    ("Hebrew", "val", 0x0590, 0x05FF),
    ("Arabic", "test", 0x0600, 0x06FF),
    ("N'Ko", "val", 0x07C0, 0x07FF),
    ("Lao", "test", 0x0E80, 0x0EFF),
    ("Georgian", "test", 0x10A0, 0x10FF),
    ("Canadian Syllabics", "train", 0x1400, 0x167F),
    ("Ogham", "val", 0x1680, 0x169F),
    ("Phonetic Extensions", "train", 0x1D00, 0x1D7F),
    ("Latin Extended Additional", "train", 0x1E00, 0x1EFF),
    ("Currency Symbols", "val", 0x20A0, 0x20CF),
    ("Letterlike Symbols", "train", 0x2100, 0x214F),
    ("Number Forms", "train", 0x2150, 0x218F),
    ("Arrows", "train", 0x2190, 0x21FF),
    ("Mathematical Operators", "train", 0x2200, 0x22FF),
    ("Miscellaneous Technical", "test", 0x2300, 0x23FF),
    ("Box Drawing", "train", 0x2500, 0x257F),
    ("Block Elements", "val", 0x2580, 0x259F),
    ("Geometric Shapes", "train", 0x25A0, 0x25FF),
    ("Miscellaneous Symbols", "test", 0x2600, 0x26FF),
    ("Dingbats", "train", 0x2700, 0x27BF),
    ("Miscellaneous Mathematical Symbols-A", "test", 0x27C0, 0x27EF),
    ("Supplemental Arrows-A", "test", 0x27F0, 0x27FF),
    ("Braille Patterns", "val", 0x2800, 0x28FF),
    ("Supplemental Arrows-B", "test", 0x2900, 0x297F),
    ("Miscellaneous Mathematical Symbols-B", "train", 0x2980, 0x29FF),
    ("Supplemental Mathematical Operators", "train", 0x2A00, 0x2AFF),
    ("Miscellaneous Symbols and Arrows", "val", 0x2B00, 0x2BFF),
    ("Latin Extended-C", "train", 0x2C60, 0x2C7F),
    ("Tifinagh", "test", 0x2D30, 0x2D7F),
    ("Yijing Hexagram Symbols", "val", 0x4DC0, 0x4DFF),
    ("Lisu", "val", 0xA4D0, 0xA4FF),
    ("Cyrillic Extended-B", "train", 0xA640, 0xA69F),
    ("Latin Extended-D", "train", 0xA720, 0xA7FF),
    ("Old Italic", "test", 0x10300, 0x1032F),
    ("Domino Tiles", "val", 0x1F030, 0x1F09F),
    ("Playing Cards", "val", 0x1F0A0, 0x1F0FF),
    ("Pictographs and Emoticons", "val", 0x1F300, 0x1FAFF),
)
SPLITS = ("train", "val", "test")
KEPT_CATEGORIES = ("L", "N", "S", "P")  # letters, numbers, symbols, punctuation
MIN_EXTENT_EM = 0.3
THUMB = 16
LOOKALIKE_RMS = 0.06  # RMS difference (0..1 scale) of 16x16 thumbnails below which two glyphs are one


@dataclass(frozen=True)
class Character:
    codepoint: int
    alphabet: str
    split: str
    fonts: tuple[int, ...]
    """Indices into :func:`font_paths` of the fonts that have this glyph."""

    @property
    def name(self) -> str:
        return f"{self.alphabet} U+{self.codepoint:04X}"


def font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@cache
def font_paths() -> tuple[Path, ...]:
    paths = tuple(font_dir() / name for name in FONT_FILES if (font_dir() / name).is_file())
    if not paths:
        raise RuntimeError(f"none of matplotlib's fonts was found under {font_dir()}")
    return paths


@cache
def _charmaps() -> tuple[frozenset[int], ...]:
    from matplotlib.ft2font import FT2Font

    return tuple(frozenset(FT2Font(str(path)).get_charmap()) for path in font_paths())


@cache
def pil_font(index: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_paths()[index]), size)


def glyph_ink(codepoint: int, font: int, size: int) -> np.ndarray:
    """The glyph drawn white on black with the font at ``size`` px per em, cropped to its ink."""
    face = pil_font(font, size)
    left, top, right, bottom = face.getbbox(chr(codepoint))
    pad = 2
    extent = (int(max(1, right - left)) + 2 * pad, int(max(1, bottom - top)) + 2 * pad)  # the box is integral
    canvas = Image.new("L", extent, 0)
    ImageDraw.Draw(canvas).text((pad - left, pad - top), chr(codepoint), font=face, fill=255)
    box = canvas.getbbox()
    return np.asarray(canvas.crop(box) if box else canvas.crop((0, 0, 0, 0)), dtype=np.uint8)


def _thumbnail(ink: np.ndarray, em: int) -> np.ndarray:
    """The glyph centred on a 1.2-em square (larger glyphs: their own extent), at 16x16, in [0, 1]."""
    h, w = ink.shape
    side = max(int(1.2 * em), h, w)
    canvas = np.zeros((side, side), dtype=np.uint8)
    y, x = (side - h) // 2, (side - w) // 2
    canvas[y : y + h, x : x + w] = ink
    return (
        np.asarray(Image.fromarray(canvas).resize((THUMB, THUMB), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    )


def _admissible(codepoint: int) -> bool:
    ch = chr(codepoint)
    return unicodedata.category(ch)[0] in KEPT_CATEGORIES and not unicodedata.decomposition(ch)


@cache
def catalogue() -> tuple[Character, ...]:
    """Every usable character, in block order, with its split and the fonts that have it."""
    charmaps = _charmaps()
    em = 40
    candidates, thumbs = [], []
    for alphabet, split, first, last in ALPHABETS:
        for cp in range(first, last + 1):
            fonts = tuple(i for i, cmap in enumerate(charmaps) if cp in cmap)
            if not fonts or not _admissible(cp):
                continue
            ink = glyph_ink(cp, fonts[0], em)
            if ink.size == 0 or max(ink.shape) < MIN_EXTENT_EM * em or ink.max() < 128:
                continue
            candidates.append(Character(cp, alphabet, split, fonts))
            thumbs.append(_thumbnail(ink, em).reshape(-1))
    # Greedy look-alike removal in block order, from all pairwise RMS distances at once.
    t = np.stack(thumbs).astype(np.float64)
    sq = (t * t).sum(axis=1)
    rms = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * t @ t.T, 0.0) / t.shape[1])
    kept = np.zeros(len(candidates), dtype=bool)
    for i in range(len(candidates)):
        kept[i] = not (rms[i, :i][kept[:i]] < LOOKALIKE_RMS).any()
    return tuple(c for c, k in zip(candidates, kept, strict=True) if k)


def select(split: str, count: int, rng: np.random.Generator) -> list[Character]:
    """``count`` characters of a split's alphabets, taken round-robin over its alphabets (each alphabet's
    characters in a random order), so that no alphabet dominates."""
    pools: dict[str, list[Character]] = {}
    for character in catalogue():
        if character.split == split:
            pools.setdefault(character.alphabet, []).append(character)
    available = sum(map(len, pools.values()))
    if available < count:
        raise RuntimeError(f"the {split} alphabets offer {available} usable characters, fewer than {count}")
    queues = [[pool[i] for i in rng.permutation(len(pool))] for pool in pools.values()]
    chosen: list[Character] = []
    while len(chosen) < count:
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return sorted(chosen, key=lambda c: c.codepoint)
