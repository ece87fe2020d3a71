"""Speed benchmarks (pytest-benchmark): provmark embed/detect next to the peers, and
each Numba kernel next to its reference, at 512x512, 1024x1024 and 1920x1080.

Run with ``make bench-speed`` (or ``pytest benchmarks/test_speed.py
--benchmark-enable``). Every timed function is called once before timing so Numba
compilation (or loading from its on-disk cache) is never counted; compile time is
reported separately by ``benchmarks/compile_time.py``. Compare ratios measured in the
same run, not absolute times: the machines are shared.
"""

from __future__ import annotations

import numpy as np
import pytest
import pywt
import scipy.fft

import provmark
from provmark.kernels import DCT8, block_dct8, haar_dwt2

from conftest import load_peers

PAYLOAD = provmark.Payload(provider=4242, content_id=123456789)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::UserWarning", "ignore::FutureWarning")


def _warm(fn, *args):
    fn(*args)
    return fn


def test_embed(benchmark, sized_photo):
    name, img = sized_photo
    benchmark.group = f"embed {name}"
    _warm(provmark.embed, img, PAYLOAD)
    out = benchmark(provmark.embed, img, PAYLOAD)
    assert provmark.detect(out).payload == PAYLOAD


def test_detect(benchmark, sized_photo):
    name, img = sized_photo
    benchmark.group = f"detect {name}"
    marked = provmark.embed(img, PAYLOAD)
    _warm(provmark.detect, marked)
    det = benchmark(provmark.detect, marked)
    assert det.payload == PAYLOAD


@pytest.fixture(scope="module")
def dwtdct():
    peers = load_peers()
    avail = peers.available_peers()
    method = avail.get("invisible-watermark/dwtDct")
    if method is None or isinstance(method, str):
        pytest.skip(f"invisible-watermark not installed: {method} (make peers)")
    return method


def test_peer_dwtdct_embed(benchmark, sized_photo, dwtdct):
    name, img = sized_photo
    benchmark.group = f"embed {name}"
    bits = np.random.default_rng(0).integers(0, 2, dwtdct.payload_bits).astype(bool)
    dwtdct.embed(img, bits)
    benchmark(dwtdct.embed, img, bits)


def test_peer_dwtdct_detect(benchmark, sized_photo, dwtdct):
    name, img = sized_photo
    benchmark.group = f"detect {name}"
    bits = np.random.default_rng(0).integers(0, 2, dwtdct.payload_bits).astype(bool)
    marked = dwtdct.embed(img, bits)
    benchmark(dwtdct.detect, marked)


def _luma(img):
    return np.ascontiguousarray((img.astype(np.float32) @ np.array([0.299, 0.587, 0.114],
                                                                  np.float32)))


def test_kernel_haar(benchmark, sized_photo):
    name, img = sized_photo
    benchmark.group = f"haar dwt {name}"
    y = _luma(img)
    bands = [np.empty((y.shape[0] // 2, y.shape[1] // 2), np.float32) for _ in range(4)]
    _warm(haar_dwt2, y, *bands)
    benchmark(haar_dwt2, y, *bands)


def test_reference_haar(benchmark, sized_photo):
    name, img = sized_photo
    benchmark.group = f"haar dwt {name}"
    y = _luma(img)
    benchmark(pywt.dwt2, y, "haar", mode="periodization")


def test_kernel_block_dct(benchmark, sized_photo):
    name, img = sized_photo
    benchmark.group = f"block dct {name}"
    y = _luma(img)
    out = np.empty_like(y)
    _warm(block_dct8, y, out, DCT8)
    benchmark(block_dct8, y, out, DCT8)


def test_reference_block_dct(benchmark, sized_photo):
    name, img = sized_photo
    benchmark.group = f"block dct {name}"
    y = _luma(img)
    h, w = y.shape

    def ref():
        blocks = y.reshape(h // 8, 8, w // 8, 8)
        return scipy.fft.dctn(blocks, axes=(1, 3), norm="ortho")

    benchmark(ref)


@pytest.fixture(scope="module")
def marked_1080p():
    from conftest import SIZES, photo

    img = photo(SIZES["1920x1080"])
    return img, provmark.embed(img, PAYLOAD)


@pytest.fixture(scope="module")
def marked_512():
    """scikit-image's astronaut at its native 512x512 (issue 15's small-source bar)."""
    from skimage import data

    img = np.ascontiguousarray(data.astronaut())
    return img, provmark.embed(img, PAYLOAD)


def _search_copy(img, marked, case):
    import cv2

    h, w = img.shape[:2]
    if case == "cropped":
        return np.ascontiguousarray(marked[17:h - 23, 23:w - 17])
    if case == "resized0.75":
        size = (round(w * 0.75), round(h * 0.75))
        return np.ascontiguousarray(cv2.resize(marked, size, interpolation=cv2.INTER_AREA))
    return img


@pytest.mark.parametrize("case", ["cropped", "resized0.75", "unmarked"])
def test_detect_with_search_1080p(benchmark, marked_1080p, case):
    """Detection when the grid is not where it was embedded: a crop at an odd
    offset (template lock, or grid search), a 0.75x resize (template + resampling +
    lock), and an unmarked image (every stage runs and fails: the worst case)."""
    img, marked = marked_1080p
    benchmark.group = "detect with search 1920x1080 source"
    copy = _search_copy(img, marked, case)
    _warm(provmark.detect, copy)
    det = benchmark(provmark.detect, copy)
    assert (det.payload == PAYLOAD) if case != "unmarked" else (det.payload is None)


@pytest.mark.parametrize("case", ["cropped", "resized0.75", "unmarked"])
def test_detect_with_search_512(benchmark, marked_512, case):
    """The same on a native 512x512 source (the bar: median <= 80 ms on resized
    marked copies and on unmarked images)."""
    img, marked = marked_512
    benchmark.group = "detect with search 512x512 source"
    copy = _search_copy(img, marked, case)
    _warm(provmark.detect, copy)
    det = benchmark(provmark.detect, copy)
    assert (det.payload == PAYLOAD) if case != "unmarked" else (det.payload is None)
