"""Tests for provmark.explicit: the visible GB 45438 label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from provmark import explicit
from provmark.explicit import (
    POSITIONS,
    ExplicitLabel,
    FontNotFoundError,
    check_label_text,
    draw_label,
    find_font,
)

SIZES = [(256, 256), (480, 640), (1080, 1920), (2880, 5120)]  # (H, W)
GREY = 128


def uniform(h: int, w: int, value: int) -> np.ndarray:
    return np.full((h, w, 3), value, dtype=np.uint8)


def coverage_on_uniform(res: ExplicitLabel, background: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent measure of the text from an image labelled on a uniform background.

    Returns (text coverage t in [0, 1], mask of fully covered plate pixels), both over
    the box.  A plate pixel is ``C = a*plate + (1-a)*bg``; a text pixel is
    ``C*(1-t) + text*t``, so ``t = (v - C) / (text - C)``.
    """
    x0, y0, x1, y1 = res.box
    patch = res.image[y0:y1, x0:x1, 0].astype(np.float64)
    a = res.plate_opacity
    plate = np.rint(a * res.plate_rgb[0] + (1 - a) * background)
    t = (patch - plate) / (res.text_rgb[0] - plate)
    return np.clip(t, 0, 1), patch == plate


def ink_height(res: ExplicitLabel, background: int) -> int:
    t, _ = coverage_on_uniform(res, background)
    rows = np.flatnonzero((t >= 0.5).any(axis=1))
    return int(rows[-1] - rows[0] + 1)


def wcag_luminance(rgb: np.ndarray) -> np.ndarray:
    c = rgb.astype(np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return lin @ np.array([0.2126, 0.7152, 0.0722])


def contrast(l1, l2):
    return (np.maximum(l1, l2) + 0.05) / (np.minimum(l1, l2) + 0.05)


# --------------------------------------------------------------------------- #
# Height, placement
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(("h", "w"), SIZES)
@pytest.mark.parametrize("position", POSITIONS)
def test_text_height_at_least_5_percent(h, w, position):
    res = draw_label(uniform(h, w, 255), position=position)
    short = min(h, w)
    measured = ink_height(res, 255)
    assert measured >= 0.05 * short
    assert abs(measured - res.text_height_px) <= 1
    # the default aims slightly above the minimum (about 6 %), not far above it
    assert res.text_height_px <= 0.075 * short
    x0, y0, x1, y1 = res.box
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    tx0, ty0, tx1, ty1 = res.text_box
    assert x0 < tx0 < tx1 < x1 and y0 < ty0 < ty1 < y1
    assert ty1 - ty0 == res.text_height_px
    assert res.image.shape == (h, w, 3) and res.image.dtype == np.uint8


@pytest.mark.parametrize(("h", "w"), [(480, 640), (1080, 1920)])
def test_positions_are_corners_and_edge_centres(h, w):
    margin = round(0.02 * min(h, w))
    boxes = {p: draw_label(uniform(h, w, 0), position=p).box for p in POSITIONS}
    assert boxes["top-left"][:2] == (margin, margin)
    assert boxes["top-right"][2] == w - margin and boxes["top-right"][1] == margin
    assert boxes["bottom-left"][0] == margin and boxes["bottom-left"][3] == h - margin
    assert boxes["bottom-right"][2:] == (w - margin, h - margin)
    for p in ("top", "bottom"):
        bx0, _, bx1, _ = boxes[p]
        assert abs((bx0 + bx1) / 2 - w / 2) <= 1
    for p in ("left", "right"):
        _, by0, _, by1 = boxes[p]
        assert abs((by0 + by1) / 2 - h / 2) <= 1
    assert boxes["left"][0] == margin and boxes["right"][2] == w - margin
    assert draw_label(uniform(h, w, 0), position="top-center").box == boxes["top"]
    assert draw_label(uniform(h, w, 0), position="center-right").box == boxes["right"]


def test_only_the_box_changes_and_input_is_untouched():
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    before = img.copy()
    res = draw_label(img, position="top-left")
    np.testing.assert_array_equal(img, before)
    assert res.image is not img and not np.shares_memory(res.image, img)
    x0, y0, x1, y1 = res.box
    outside = np.ones(img.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(res.image[outside], img[outside])
    assert not np.array_equal(res.image[y0:y1, x0:x1], img[y0:y1, x0:x1])


def test_pil_input_is_accepted_and_untouched():
    pil = Image.new("RGB", (320, 240), (10, 200, 30))
    before = np.asarray(pil).copy()
    res = draw_label(pil)
    np.testing.assert_array_equal(np.asarray(pil), before)
    assert isinstance(res.image, np.ndarray) and res.image.shape == (240, 320, 3)
    assert res.to_pil().size == (320, 240)


def test_larger_height_fraction_is_honoured():
    res = draw_label(uniform(600, 800, 255), height_fraction=0.1)
    assert ink_height(res, 255) >= 60


def test_small_image_still_legible_minimum():
    res = draw_label(uniform(120, 160, 255))
    assert res.text_height_px >= 10


# --------------------------------------------------------------------------- #
# Legibility: plate polarity and contrast
# --------------------------------------------------------------------------- #
def _backgrounds():
    rng = np.random.default_rng(42)
    h, w = 512, 768
    yield "white", uniform(h, w, 255)
    yield "black", uniform(h, w, 0)
    yield "noise", rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    yield (
        "bw-stripes",
        np.repeat(np.tile(np.array([0, 255], np.uint8), w // 2)[None, :, None], h, 0).repeat(3, 2),
    )
    yield (
        "checker",
        ((np.indices((h, w)).sum(0) // 3 % 2) * 255).astype(np.uint8)[..., None].repeat(3, 2),
    )
    try:
        from skimage import data
    except ImportError:  # pragma: no cover - scikit-image is a test dependency
        return
    yield "astronaut", data.astronaut()


BACKGROUNDS = dict(_backgrounds())


@pytest.mark.parametrize("name", sorted(BACKGROUNDS))
@pytest.mark.parametrize("position", ["top-left", "bottom-right", "right"])
def test_plate_contrast_on_any_background(name, position):
    img = BACKGROUNDS[name]
    h, w = img.shape[:2]
    res = draw_label(img, position=position)
    # the layout does not depend on the background: find text and plate pixels
    # from the same label drawn on flat grey, with the same colours and opacity
    ref = draw_label(uniform(h, w, GREY), position=position)
    assert ref.box == res.box
    x0, y0, x1, y1 = res.box
    t, _ = coverage_on_uniform(ref, GREY)
    grey_patch = ref.image[y0:y1, x0:x1, 0].astype(np.float64)
    a = ref.plate_opacity
    plate_ref = np.rint(a * ref.plate_rgb[0] + (1 - a) * GREY)
    full_plate = (grey_patch == plate_ref) & (t == 0)
    # erode so that anti-aliased text edges and the rounded corners are excluded
    core = full_plate.copy()
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        core &= np.roll(full_plate, (dy, dx), axis=(0, 1))
    text_px = t >= 0.999
    assert core.sum() > 0.3 * full_plate.size and text_px.sum() > 50

    patch = res.image[y0:y1, x0:x1]
    # text pixels carry exactly the text colour
    assert np.all(patch[text_px] == np.array(res.text_rgb, np.uint8))
    # every plate pixel contrasts with the text at WCAG 7:1 or better
    ratio = contrast(wcag_luminance(patch[core]), wcag_luminance(np.array(res.text_rgb)))
    assert ratio.min() >= 7.0, (name, res.plate_rgb, res.plate_opacity, ratio.min())


def test_plate_polarity_follows_the_background():
    light = draw_label(uniform(400, 400, 250))
    dark = draw_label(uniform(400, 400, 5))
    assert sum(light.plate_rgb) > sum(light.text_rgb)  # light plate, dark text
    assert sum(dark.plate_rgb) < sum(dark.text_rgb)  # dark plate, white text
    assert 0.5 <= light.plate_opacity < 1 and 0.5 <= dark.plate_opacity < 1


# --------------------------------------------------------------------------- #
# Text rule and argument validation
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "text", ["AI生成", "AI合成", "人工智能生成", "人工智能合成", "本内容由人工智能生成", "由AI合成"]
)
def test_valid_texts(text):
    assert check_label_text(text) == text
    res = draw_label(uniform(480, 640, 200), text=text)
    assert res.text == text and res.text_height_px >= 24


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("生成", r'missing "AI" or "人工智能"'),
        ("AI", r'missing "生成" or "合成"'),
        ("人工生成", r'missing "AI" or "人工智能"'),
        ("ai生成", r'missing "AI" or "人工智能"'),
        ("Generated", r'missing "AI" or "人工智能" and "生成" or "合成"'),
        ("", r"text is empty"),
        ("   ", r"text is empty"),
        ("AI\n生成", r"single line"),
    ],
)
def test_text_rule_errors(text, message):
    with pytest.raises(ValueError, match=message):
        check_label_text(text)
    with pytest.raises(ValueError, match=message):
        draw_label(uniform(100, 100, 0), text=text)


def test_text_rule_message_explains_the_rule():
    with pytest.raises(
        ValueError,
        match=r'GB 45438 requires it to contain \("AI" or "人工智能"\) and \("生成" or "合成"\)',
    ):
        check_label_text("hello")
    with pytest.raises(TypeError, match="text must be a str"):
        check_label_text(b"AI")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"position": "middle"}, r"position 'middle' is not one of"),
        ({"height_fraction": 0.04}, r"height_fraction=0.04 is outside \[0.05, 0.5\].*5%"),
        ({"height_fraction": 0.9}, r"outside"),
        ({"margin_fraction": -0.1}, r"margin_fraction"),
    ],
)
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        draw_label(uniform(200, 200, 0), **kwargs)


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        (np.zeros((50, 50), np.uint8), ValueError, r"expected HxWx3"),
        (np.zeros((50, 50, 4), np.uint8), ValueError, r"expected HxWx3"),
        (np.zeros((50, 50, 3), np.float32), ValueError, r"expected uint8"),
        ([[0]], TypeError, r"numpy array or PIL.Image"),
    ],
)
def test_image_errors(image, error, message):
    with pytest.raises(error, match=message):
        draw_label(image)


def test_text_too_long_for_image():
    with pytest.raises(ValueError, match=r"does not fit the 64x64 image.*shorter text"):
        draw_label(uniform(64, 64, 0), text="本内容由人工智能生成")


# --------------------------------------------------------------------------- #
# Fonts
# --------------------------------------------------------------------------- #
def test_bundled_font_and_licence_are_shipped():
    fonts = Path(explicit.__file__).parent / "data" / "fonts"
    assert (fonts / "NotoSansCJKsc-Bold-subset.otf").is_file()
    licence = (fonts / "OFL.txt").read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE Version 1.1" in licence
    choice = find_font("AI生成")
    assert Path(choice.path).resolve() == (fonts / "NotoSansCJKsc-Bold-subset.otf").resolve()
    assert "Noto Sans CJK SC" in choice.name
    for text in ("AI合成", "人工智能生成合成内容", "AIGC: 1, 2, 3 (AI-generated)"):
        assert find_font(text).path == choice.path


def test_no_font_gives_an_error_naming_the_fix(monkeypatch):
    monkeypatch.setattr(explicit, "_BUNDLED_FONT", Path("/nonexistent/font.otf"))
    monkeypatch.setattr(explicit, "_SYSTEM_FONTS", ())
    monkeypatch.delenv("PROVMARK_FONT", raising=False)
    with pytest.raises(
        FontNotFoundError, match=r"apt-get install fonts-noto-cjk.*font=.*PROVMARK_FONT"
    ):
        find_font("AI生成")
    with pytest.raises(FontNotFoundError, match="no font found"):
        draw_label(uniform(200, 200, 0))


def test_uncovered_character_in_explicit_font(monkeypatch):
    bundled = str(explicit._BUNDLED_FONT)
    with pytest.raises(FontNotFoundError, match=r"has no glyph for '的'"):
        draw_label(uniform(300, 300, 0), text="AI生成的", font=bundled)
    with pytest.raises(FontNotFoundError, match=r"no font file at"):
        draw_label(uniform(300, 300, 0), font="/nonexistent/x.ttf")
    monkeypatch.setenv("PROVMARK_FONT", "/nonexistent/y.ttf")
    with pytest.raises(FontNotFoundError, match=r"PROVMARK_FONT: no font file"):
        find_font("AI生成")
    monkeypatch.setenv("PROVMARK_FONT", bundled)
    assert find_font("AI生成").path == bundled


def test_text_outside_the_subset_uses_a_system_font_or_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv("PROVMARK_FONT", raising=False)
    text = "本图片由AI生成，请注意甄别"
    try:
        choice = find_font(text)
    except FontNotFoundError as exc:
        assert "apt-get install fonts-noto-cjk" in str(exc)
    else:
        assert choice.path != str(explicit._BUNDLED_FONT)
        assert draw_label(uniform(480, 1200, 90), text=text).text_height_px >= 24
