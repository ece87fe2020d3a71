"""The explicit (visible) label of GB 45438-2025: "AI生成" drawn on the image.

This module owns the visible label: the text rule (it must contain "AI" or
"人工智能" and "生成" or "合成"), the placement at a corner or edge centre, a text
height of at least 5 % of the image's shortest side measured on the rendered ink,
and legibility on any background through a semi-opaque plate whose polarity
(dark plate + white text, or light plate + dark text) and opacity are chosen from
the pixels under it.  It also owns finding a CJK font with no network access: a
subset of Noto Sans CJK SC Bold (SIL OFL 1.1) ships in ``provmark/data/fonts``
and covers ASCII and the usual label words; other characters use a system CJK
font.  It imports nothing from the rest of :mod:`provmark`.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ._errors import ProvmarkError

__all__ = [
    "ExplicitLabel",
    "FontChoice",
    "FontNotFoundError",
    "POSITIONS",
    "MIN_HEIGHT_FRACTION",
    "check_label_text",
    "draw_label",
    "find_font",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Label positions: the four corners and the four edge centres.
POSITIONS = (
    "top-left",
    "top",
    "top-right",
    "left",
    "right",
    "bottom-left",
    "bottom",
    "bottom-right",
)
_ALIASES = {
    "top-center": "top",
    "top-centre": "top",
    "bottom-center": "bottom",
    "bottom-centre": "bottom",
    "center-left": "left",
    "centre-left": "left",
    "left-center": "left",
    "left-centre": "left",
    "center-right": "right",
    "centre-right": "right",
    "right-center": "right",
    "right-centre": "right",
}
#: GB 45438: text height at least 5 % of the shortest side.
MIN_HEIGHT_FRACTION = 0.05
# The rendered ink aims this much above ``height_fraction`` (5 % -> 6 %) so that
# rounding and rendering never land below the minimum.
_HEADROOM = 1.2
# Below this the characters are not legible whatever the image size.
_MIN_LEGIBLE_PX = 10
# A pixel counts as ink when its coverage is at least half.
_INK_THRESHOLD = 128
# WCAG 2 contrast ratio that every plate pixel must reach against the text
# (7:1 is WCAG's AAA level), and the opacity range searched to reach it.
_TARGET_CONTRAST = 7.0
_OPACITIES = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
_DARK = ((16, 16, 16), (255, 255, 255))  # (plate, text)
_LIGHT = ((244, 244, 244), (0, 0, 0))

_DATA_FONTS = Path(__file__).resolve().parent / "data" / "fonts"
_BUNDLED_FONT = _DATA_FONTS / "NotoSansCJKsc-Bold-subset.otf"
# System CJK fonts, best first: (path, preferred face-name fragment in a collection)
_SYSTEM_FONTS = (
    # Debian/Ubuntu fonts-noto-cjk
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Medium.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    # Fedora/RHEL google-noto-sans-cjk-fonts, Arch noto-fonts-cjk
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/google-noto-sans-cjk-fonts/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    # WenQuanYi (Debian fonts-wqy-zenhei / fonts-wqy-microhei)
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    # macOS
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    # Windows
    "C:/Windows/Fonts/msyhbd.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
)
_INSTALL_HINT = (
    "install a CJK font (Debian/Ubuntu: `apt-get install fonts-noto-cjk`; Fedora: "
    "`dnf install google-noto-sans-cjk-fonts`; macOS and Windows ship one), or pass "
    "font='/path/to/a/cjk-font.ttf' to draw_label, or set the PROVMARK_FONT environment "
    "variable to such a file"
)


class FontNotFoundError(ProvmarkError, RuntimeError):
    """No font that can draw every character of the label text was found."""


@dataclass(frozen=True)
class FontChoice:
    """A font file (and face index in a collection) that covers a label text."""

    path: str
    index: int
    name: str


@dataclass(frozen=True, eq=False)
class ExplicitLabel:
    """Result of :func:`draw_label`.

    Attributes
    ----------
    image : numpy.ndarray
        New HxWx3 uint8 image with the label drawn (the input is untouched).
    box : tuple of int
        ``(x0, y0, x1, y1)`` of the plate in pixels, ``x1``/``y1`` exclusive.
    text : str
        The text drawn.
    text_height_px : int
        Height of the rendered ink (pixels covered at least half), all characters.
    text_box : tuple of int
        ``(x0, y0, x1, y1)`` of that ink in image pixels, exclusive end.
    plate_rgb, text_rgb : tuple of int
        Plate and text colours.
    plate_opacity : float
        Opacity of the plate over the image.
    font : FontChoice
        The font used.
    """

    image: np.ndarray
    box: tuple[int, int, int, int]
    text: str
    text_height_px: int
    text_box: tuple[int, int, int, int]
    plate_rgb: tuple[int, int, int]
    text_rgb: tuple[int, int, int]
    plate_opacity: float
    font: FontChoice

    def to_pil(self) -> Image.Image:
        """The labelled image as a ``PIL.Image`` (RGB)."""
        return Image.fromarray(self.image, "RGB")


# --------------------------------------------------------------------------- #
# Text rule
# --------------------------------------------------------------------------- #
def check_label_text(text: str) -> str:
    """Validate a visible label text and return it.

    GB 45438 asks the explicit label to say that the content is AI-generated:
    the text must contain ``"AI"`` or ``"人工智能"`` and also ``"生成"`` or
    ``"合成"`` (for example "AI生成", "AI合成", "人工智能生成"), on one line.

    Raises
    ------
    ValueError
        Saying which part of the rule is broken.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError('text is empty; use e.g. "AI生成"')
    if "\n" in text or "\r" in text:
        raise ValueError("text must be a single line")
    missing = []
    if "AI" not in text and "人工智能" not in text:
        missing.append('"AI" or "人工智能"')
    if "生成" not in text and "合成" not in text:
        missing.append('"生成" or "合成"')
    if missing:
        raise ValueError(
            f"text {text!r} does not say the image is AI-generated: GB 45438 requires it "
            f'to contain ("AI" or "人工智能") and ("生成" or "合成"); missing '
            + " and ".join(missing)
            + ' (e.g. "AI生成")'
        )
    return text


# --------------------------------------------------------------------------- #
# Fonts
# --------------------------------------------------------------------------- #
@functools.lru_cache(maxsize=128)
def _load(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=index, layout_engine=ImageFont.Layout.BASIC)


@functools.lru_cache(maxsize=64)
def _faces(path: str) -> tuple[tuple[int, str], ...]:
    """(index, "family style") of each face of a font file or collection."""
    faces = []
    for index in range(64):
        try:
            f = _load(path, index, 16)
        except OSError:
            break
        family, style = f.getname()
        faces.append((index, f"{family} {style}"))
        if not path.lower().endswith((".ttc", ".otc")):
            break
    return tuple(faces)


def _preferred_face(path: str) -> FontChoice | None:
    faces = _faces(path)
    if not faces:
        return None
    for index, name in faces:  # Simplified Chinese forms when the collection has them
        if " SC" in name or "SC " in name or "GB" in name or "Hei SC" in name:
            return FontChoice(path, index, name)
    index, name = faces[0]
    return FontChoice(path, index, name)


@functools.lru_cache(maxsize=4096)
def _has_glyph(path: str, index: int, ch: str) -> bool:
    if ch.isspace():
        return True
    font = _load(path, index, 32)
    # A missing character renders as the font's .notdef glyph, like a
    # noncharacter does; compare the two bitmaps.
    notdef = font.getmask("\U0010fffe")
    mask = font.getmask(ch)
    return not (mask.size == notdef.size and bytes(mask) == bytes(notdef))


def _missing(choice: FontChoice, text: str) -> list[str]:
    return sorted({ch for ch in text if not _has_glyph(choice.path, choice.index, ch)})


def find_font(text: str = "AI生成", *, font: PathLike | None = None) -> FontChoice:
    """Find a font that draws every character of ``text``; no network access.

    Order: the ``font`` argument, the ``PROVMARK_FONT`` environment variable, the
    bundled Noto Sans CJK SC Bold subset (ASCII and common label words), then
    known system CJK fonts (Noto CJK, WenQuanYi, PingFang, Microsoft YaHei, ...).

    Raises
    ------
    FontNotFoundError
        If none covers ``text``; the message names the missing characters and how
        to install a font.
    """
    explicit = font if font is not None else os.environ.get("PROVMARK_FONT") or None
    if explicit is not None:
        where = "font argument" if font is not None else "PROVMARK_FONT"
        path = os.fspath(explicit)
        if not os.path.isfile(path):
            raise FontNotFoundError(f"{where}: no font file at {path!r}")
        choice = _preferred_face(path)
        if choice is None:
            raise FontNotFoundError(f"{where}: {path!r} is not a font FreeType can open")
        missing = _missing(choice, text)
        if missing:
            raise FontNotFoundError(
                f"{where}: {choice.name} ({path}) has no glyph for {''.join(missing)!r}; "
                "use a CJK font that covers the text"
            )
        return choice

    for path in (str(_BUNDLED_FONT), *_SYSTEM_FONTS):
        if not os.path.isfile(path):
            continue
        try:
            choice = _preferred_face(path)
        except OSError:
            continue
        if choice is not None and not _missing(choice, text):
            return choice
    bundled = (
        "" if _BUNDLED_FONT.is_file() else f" (the bundled font {_BUNDLED_FONT} is missing too)"
    )
    raise FontNotFoundError(
        f"no font found that can draw {text!r}{bundled}. The font shipped with provmark "
        "covers ASCII and 人工智能生成合成本内容图片像视频音由疑似可能辅助创作标识"
        "深度算法技术大模型; "
        "for other characters " + _INSTALL_HINT
    )


# --------------------------------------------------------------------------- #
# Rendering
# --------------------------------------------------------------------------- #
def _render(choice: FontChoice, text: str, size: int) -> tuple[np.ndarray, int]:
    """Coverage (uint8) cropped to the ink, and the ink height."""
    font = _load(choice.path, choice.index, size)
    left, top, right, bottom = font.getbbox(text)
    pad = 2 + size // 8
    canvas = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - left, pad - top), text, font=font, fill=255)
    a = np.asarray(canvas)
    rows = np.flatnonzero(a.max(axis=1))
    cols = np.flatnonzero(a.max(axis=0))
    if rows.size == 0:
        raise FontNotFoundError(f"{choice.name} rendered no ink for {text!r}")
    a = a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    strong = np.flatnonzero((a >= _INK_THRESHOLD).any(axis=1))
    height = int(strong[-1] - strong[0] + 1) if strong.size else 0
    return a, height


def _sized_text(
    choice: FontChoice, text: str, required: int, target: int
) -> tuple[np.ndarray, int]:
    size = max(4, round(target / 0.88))
    mask, h = _render(choice, text, size)
    if h:
        size = max(4, round(size * target / h))
        mask, h = _render(choice, text, size)
    for _ in range(64):  # nudge up until the measured ink reaches the minimum
        if h >= required:
            return mask, h
        size += max(1, size // 50)
        mask, h = _render(choice, text, size)
    raise RuntimeError(f"could not render {text!r} at {required}px with {choice.name}")


_SRGB = np.arange(256, dtype=np.float64) / 255.0
_LINEAR = np.where(_SRGB <= 0.04045, _SRGB / 12.92, ((_SRGB + 0.055) / 1.055) ** 2.4)
_LUMA_LUT = np.stack([_LINEAR * w for w in (0.2126, 0.7152, 0.0722)]).astype(np.float32)


def _rel_luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG 2 relative luminance of uint8 sRGB pixels (last axis RGB)."""
    return _LUMA_LUT[0][rgb[..., 0]] + _LUMA_LUT[1][rgb[..., 1]] + _LUMA_LUT[2][rgb[..., 2]]


def _contrast(l1, l2):
    hi = np.maximum(l1, l2)
    lo = np.minimum(l1, l2)
    return (hi + 0.05) / (lo + 0.05)


def _choose_plate(region: np.ndarray, shape_mask: np.ndarray):
    """(plate, text colour, opacity) for the plate pixels ``region[shape_mask > 0.5]``.

    The polarity follows the local brightness (dark plate and white text over a
    dark area, light plate and black text over a light one), and the opacity is
    the lowest in ``_OPACITIES`` whose composited plate (rounded to uint8 as the
    output will be) has WCAG contrast >= 7 with the text at every pixel.  The other
    polarity is used only if it reaches 7:1 where the preferred one cannot.
    """
    under = region[shape_mask > 0.5].astype(np.float32)
    luma = under @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    mean_luma = float(luma.mean()) if luma.size else 0.0
    order = (_DARK, _LIGHT) if mean_luma < 128.0 else (_LIGHT, _DARK)
    fallback = None
    for plate, ink in order:
        ink_l = float(_rel_luminance(np.array(ink, dtype=np.uint8)))
        dark_text = ink_l < 0.5
        for opacity in _OPACITIES:
            comp = np.rint(opacity * np.array(plate, dtype=np.float32) + (1.0 - opacity) * under)
            lum = _rel_luminance(comp.astype(np.uint8))
            if lum.size == 0:
                return plate, ink, opacity
            # the plate pixel closest in luminance to the text is the worst one
            worst = float(_contrast(lum.min() if dark_text else lum.max(), ink_l))
            if worst >= _TARGET_CONTRAST:
                return plate, ink, opacity
        if fallback is None or worst > fallback[0]:
            fallback = (worst, plate, ink, _OPACITIES[-1])
    _, plate, ink, opacity = fallback
    return plate, ink, opacity


def _rounded_mask(h: int, w: int, radius: int) -> np.ndarray:
    s = 4  # supersampling for smooth corners
    big = Image.new("L", (w * s, h * s), 0)
    ImageDraw.Draw(big).rounded_rectangle((0, 0, w * s - 1, h * s - 1), radius=radius * s, fill=255)
    return np.asarray(big.resize((w, h), Image.Resampling.BOX)).astype(np.float32) / 255.0


def _as_rgb_array(image) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.array(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array or PIL.Image, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image has shape {image.shape}; expected HxWx3 RGB (convert grey or RGBA images first)"
        )
    if image.dtype != np.uint8:
        raise ValueError(f"image has dtype {image.dtype}; expected uint8 (0..255)")
    return image


def draw_label(
    image,
    *,
    text: str = "AI生成",
    position: str = "bottom-right",
    height_fraction: float = MIN_HEIGHT_FRACTION,
    margin_fraction: float = 0.02,
    font: PathLike | None = None,
) -> ExplicitLabel:
    """Draw the GB 45438 explicit label on a copy of ``image``.

    The text is rendered so that its ink is at least ``height_fraction`` of the
    shortest side (aiming 20 % higher: 6 % by default) and never under 10 px,
    on a rounded semi-opaque plate.  The plate polarity and opacity are chosen
    from the pixels under it so that every plate pixel has a WCAG contrast ratio
    of at least 7:1 with the text (reached for any background at opacity 0.95).

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray or PIL.Image
        Not modified.  A PIL image is converted to RGB.
    text : str, optional
        Must contain "AI" or "人工智能" and "生成" or "合成" (:func:`check_label_text`).
    position : str, optional
        One of :data:`POSITIONS` ("top-left", "top", "top-right", "left", "right",
        "bottom-left", "bottom", "bottom-right"); "top-center" etc. are accepted.
    height_fraction : float, optional
        Minimum ink height as a fraction of the shortest side, at least 0.05.
    margin_fraction : float, optional
        Gap between the plate and the image edges, fraction of the shortest side.
    font : str or path, optional
        Font file to use instead of the automatic choice (:func:`find_font`).

    Returns
    -------
    ExplicitLabel

    Raises
    ------
    ValueError
        Bad text, position, fractions or image, or a text too long to fit.
    FontNotFoundError
        No font can draw the text.

    Examples
    --------
    >>> import numpy as np
    >>> out = draw_label(np.zeros((480, 640, 3), np.uint8))
    >>> out.text_height_px >= 0.05 * 480
    True
    """
    check_label_text(text)
    pos = _ALIASES.get(position, position)
    if pos not in POSITIONS:
        raise ValueError(f"position {position!r} is not one of {', '.join(POSITIONS)}")
    if not MIN_HEIGHT_FRACTION <= height_fraction <= 0.5:
        raise ValueError(
            f"height_fraction={height_fraction} is outside [0.05, 0.5]; GB 45438 requires "
            "text at least 5% of the shortest side"
        )
    if not 0.0 <= margin_fraction <= 0.25:
        raise ValueError(f"margin_fraction={margin_fraction} is outside [0, 0.25]")
    src = _as_rgb_array(image)
    H, W = src.shape[:2]
    short = min(H, W)
    choice = find_font(text, font=font)

    required = max(_MIN_LEGIBLE_PX, math.ceil(height_fraction * short - 1e-9))
    target = max(required, math.ceil(height_fraction * _HEADROOM * short))
    coverage, ink_h = _sized_text(choice, text, required, target)
    mask = coverage.astype(np.float32) / 255.0
    th, tw = mask.shape
    pad_y = max(2, round(0.3 * ink_h))
    pad_x = max(3, round(0.4 * ink_h))
    ph, pw = th + 2 * pad_y, tw + 2 * pad_x
    margin = round(margin_fraction * short)
    if pw + 2 * margin > W or ph + 2 * margin > H:
        raise ValueError(
            f"text {text!r} at the required height of {required}px needs a {pw}x{ph} plate, "
            f"which does not fit the {W}x{H} image with {margin}px margins: use a shorter "
            'text such as "AI生成", a smaller margin_fraction, or a larger image'
        )

    vertical, _, horizontal = pos.partition("-")
    if pos in ("left", "right"):
        vertical, horizontal = "middle", pos
    elif pos in ("top", "bottom"):
        horizontal = "center"
    x0 = {"left": margin, "center": (W - pw) // 2, "right": W - margin - pw}[horizontal]
    y0 = {"top": margin, "middle": (H - ph) // 2, "bottom": H - margin - ph}[vertical]
    x1, y1 = x0 + pw, y0 + ph

    out = src.copy(order="C")
    region = out[y0:y1, x0:x1].astype(np.float32)
    shape = _rounded_mask(ph, pw, radius=max(1, round(0.25 * ph)))
    plate, ink, opacity = _choose_plate(region, shape)
    a = (opacity * shape)[..., None]
    region = region * (1.0 - a) + np.array(plate, dtype=np.float32) * a
    t = np.zeros((ph, pw, 1), dtype=np.float32)
    t[pad_y : pad_y + th, pad_x : pad_x + tw, 0] = mask
    region = region * (1.0 - t) + np.array(ink, dtype=np.float32) * t
    out[y0:y1, x0:x1] = np.clip(np.rint(region), 0, 255).astype(np.uint8)

    rows = np.flatnonzero((coverage >= _INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((coverage >= _INK_THRESHOLD).any(axis=0))
    tx0, ty0 = x0 + pad_x + int(cols[0]), y0 + pad_y + int(rows[0])
    text_box = (tx0, ty0, x0 + pad_x + int(cols[-1]) + 1, y0 + pad_y + int(rows[-1]) + 1)
    return ExplicitLabel(
        image=out,
        box=(int(x0), int(y0), int(x1), int(y1)),
        text=text,
        text_height_px=int(ink_h),
        text_box=text_box,
        plate_rgb=tuple(plate),
        text_rgb=tuple(ink),
        plate_opacity=float(opacity),
        font=choice,
    )
