"""The enlargement read off a copy's interpolation traces (provmark._resampling)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from provmark import _resampling
from provmark._detect import read_luma


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """OpenCV JPEG round trip (4:2:0)."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def _enlarged(img, sy, sx, interpolation):
    h, w = img.shape[:2]
    return cv2.resize(img, (round(w * sx), round(h * sy)), interpolation=interpolation)


@pytest.mark.parametrize("sy, sx, interpolation, quality", [
    (3.3, 3.3, cv2.INTER_LINEAR, 80), (3.3, 3.3, cv2.INTER_CUBIC, 80),
    (2.5, 2.5, cv2.INTER_LINEAR, 80), (2.5, 2.5, cv2.INTER_CUBIC, 80),
    (2.6, 3.1, cv2.INTER_LINEAR, 80), (5.5, 5.5, cv2.INTER_LINEAR, 80),
    (4.7, 4.7, cv2.INTER_CUBIC, None), (3.3, 3.3, cv2.INTER_LANCZOS4, None),
    (1.5, 1.5, cv2.INTER_LINEAR, None), (1.5, 1.5, cv2.INTER_CUBIC, None)])
def test_an_enlargement_shows_its_scale(sy, sx, interpolation, quality):
    """A photo enlarged (and saved as JPEG 80, whose own 8x8 lines are ignored) shows
    the scale of each axis within 0.1%; x1.5 is read through its alias (a line at
    1/3 means x3 or x1.5: both are offered, the pilot decides). (JPEG after a smooth
    kernel weakens the lines: bicubic x4.7 or Lanczos then JPEG 80 may show none.)"""
    src = np.ascontiguousarray(skimage.data.coffee()[:300, :360])
    copy = _enlarged(src, sy, sx, interpolation)
    if quality is not None:
        copy = jpeg(copy, quality)
    found = _resampling.enlargements(read_luma(copy))
    assert found, "no enlargement read"
    assert any(a[0, 0] == pytest.approx(sy, rel=1e-3) and a[1, 1] == pytest.approx(sx, rel=1e-3)
               for a in found), [np.diag(a) for a in found]
    assert all(a[0, 1] == 0.0 and a[1, 0] == 0.0 for a in found)
    assert len(found) <= 4 * _resampling.LINES**2


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket", "camera"])
@pytest.mark.parametrize("quality", [None, 30])
def test_an_unresized_photo_shows_no_enlargement(name, quality):
    """scikit-image's photos at their native sizes, as they are and as JPEG 30 (strong
    8x8 block lines), offer no enlargement: nothing for the pilot to pay for."""
    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = np.ascontiguousarray(img)
    if quality is not None:
        img = jpeg(img, quality)
    assert _resampling.enlargements(read_luma(img)) == []


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_jpeg_block_lines_are_not_read_as_an_enlargement(name, monkeypatch):
    """A photo at JPEG 20 has strong lines at 4/16 and 6/16 cycles a pixel on both
    axes (its 8x8 blocks' edges): unguarded they would read as an enlargement x4 or
    x2.67; guarded, nothing is read."""
    blocky = read_luma(jpeg(np.ascontiguousarray(getattr(skimage.data, name)()), 20))
    assert _resampling.enlargements(blocky) == []
    monkeypatch.setattr(_resampling, "JPEG_GUARD_BINS", -1)
    for axis in (0, 1):
        lines = _resampling.axis_lines(blocky, axis)
        assert lines and lines[0][0] == pytest.approx(0.25, abs=1e-3)
    assert any(a[0, 0] == pytest.approx(4.0, rel=1e-3) for a in _resampling.enlargements(blocky))


def test_one_axis_alone_or_too_different_axes_are_not_an_enlargement():
    """Only one axis enlarged, or the axes' scales more than MAX_ASPECT apart (the speed
    benchmark's 1080p photo: 512 px enlarged x3.75 by x2.1): no hypothesis."""
    src = np.ascontiguousarray(skimage.data.coffee()[:300, :360])
    assert _resampling.enlargements(read_luma(_enlarged(src, 1.0, 3.3, cv2.INTER_LINEAR))) == []
    astro = skimage.data.astronaut()
    wide = cv2.resize(astro, (1920, 1080), interpolation=cv2.INTER_CUBIC)
    assert _resampling.enlargements(read_luma(wide)) == []


def test_a_line_is_located_within_a_fraction_of_a_bin():
    """The parabola through a Hann-windowed line's peak and neighbours puts a pure
    periodic profile's frequency within 0.05 bins."""
    n = 1024
    for f in (0.2817, 0.3047, 0.4123):
        x = np.arange(n)
        profile = np.cos(2 * np.pi * f * x) * np.hanning(n)
        spectrum = np.abs(np.fft.rfft(profile))
        j = int(np.argmax(spectrum))
        assert abs(_resampling._centroid(spectrum, j) / n - f) * n < 0.05


def _text_page(h: int = 940, w: int = 1300) -> np.ndarray:
    """Fourteen short lines of black text on white, every 60 px."""
    page = np.full((h, w, 3), 255, np.uint8)
    text = "Change the value using the default increment"
    for i, row in enumerate(range(80, h - 40, 60)):
        cv2.putText(page, text[: 20 + (i * 7) % 25], (300, row), cv2.FONT_HERSHEY_SIMPLEX,
                    0.8, (0, 0, 0), 2, cv2.LINE_AA)
    return page


def test_a_text_page_enlarged_is_read_off_one_axis_and_the_same_frequency_on_the_other():
    """A page of text enlarged x1.5 shows the line at 1/3 on one axis only: on the
    other the few letters' edges leave it under MIN_LINE_Z (a help page of the corpus
    read 8.9 there, 27.7 on the first). Both axes are needed for :func:`enlargements`;
    the paired reading takes the other axis's weaker value at the same frequency and
    offers x1.5 alike on both (and x3, the alias)."""
    copy = cv2.resize(_text_page(), (1950, 1410), interpolation=cv2.INTER_LINEAR)
    y = read_luma(copy)
    assert _resampling.enlargements(y) == []
    rows, cols = _resampling.axis_lines(y, 0), _resampling.axis_lines(y, 1)
    assert rows and not cols
    assert _resampling._z_near(_resampling._axis_spectrum(y, 1), rows[0][0]) < _resampling.MIN_LINE_Z
    found = _resampling.paired_enlargements(y)
    assert any(a[0, 0] == pytest.approx(1.5, rel=1e-3) and a[1, 1] == a[0, 0] for a in found)
    assert len(found) <= 2 * _resampling.LINES * 2


def test_paired_readings_need_the_same_frequency_on_the_other_axis():
    """Only one axis enlarged (the other shows nothing at its line's frequency), a
    photo as it is, and the speed benchmark's 1080p photo (both axes show lines, at
    different scales): no paired reading."""
    src = np.ascontiguousarray(skimage.data.coffee()[:300, :360])
    one_axis = read_luma(_enlarged(src, 1.0, 3.3, cv2.INTER_LINEAR))
    assert _resampling.axis_lines(one_axis, 1)
    assert _resampling.paired_enlargements(one_axis) == []
    assert _resampling.paired_enlargements(read_luma(np.ascontiguousarray(skimage.data.coffee()))) == []
    wide = cv2.resize(skimage.data.astronaut(), (1920, 1080), interpolation=cv2.INTER_CUBIC)
    assert _resampling.paired_enlargements(read_luma(wide)) == []
