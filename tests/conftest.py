"""Shared fixtures for the provmark core tests: small images made in memory.

The photos are scikit-image's bundled samples (astronaut, coffee, chelsea, rocket)
resized with OpenCV; the synthetic images (flat, gradient, noise) are made with a
seeded generator. Nothing is downloaded. Every fixture array is read-only so a test
that modifies a shared image fails loudly instead of corrupting the next test.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache

# The repository's kernels/ directory is installed as provmark.kernels. `python -m
# pytest` puts the working directory on sys.path, where kernels/ would pass for the top
# level of Hugging Face's `kernels` distribution, which transformers (5.25 and later)
# imports whenever it is installed: keep the repository's root off the path.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _ROOT]

import cv2
import numpy as np
import pytest
import skimage.data

#: scikit-image's colour sample photos used throughout.
PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "rocket")


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


@lru_cache(maxsize=None)
def _original(name: str) -> np.ndarray:
    return _read_only(getattr(skimage.data, name)())


@lru_cache(maxsize=None)
def load_photo(name: str, width: int, height: int) -> np.ndarray:
    """Sample photo ``name`` resized to ``width`` x ``height`` (HxWx3 uint8, read-only)."""
    src = _original(name)
    if src.shape[:2] == (height, width):
        return src
    interp = cv2.INTER_AREA if width * height < src.shape[0] * src.shape[1] else cv2.INTER_CUBIC
    return _read_only(cv2.resize(src, (width, height), interpolation=interp))


def make_flat(size: int = 256, colour=(128, 128, 128)) -> np.ndarray:
    """A uniform colour image."""
    img = np.empty((size, size, 3), np.uint8)
    img[...] = np.asarray(colour, np.uint8)
    return _read_only(img)


def make_gradient(size: int = 256, angle: float = 0.5) -> np.ndarray:
    """A smooth linear luma ramp (30..225) at ``angle`` radians, tinted slightly."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    t = (np.cos(angle) * yy + np.sin(angle) * xx) / (size * 1.42)
    base = 30 + 195 * (t - t.min()) / max(np.ptp(t), 1e-9)
    img = np.stack([base, base * 0.9 + 10, base * 0.8 + 20], axis=2)
    return _read_only(np.clip(np.rint(img), 0, 255).astype(np.uint8))


def make_noise(size: int = 256, seed: int = 0) -> np.ndarray:
    """Uniform i.i.d. RGB noise."""
    rng = np.random.default_rng(seed)
    return _read_only(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def make_dialog(height: int = 360, width: int = 380, seed: int = 0) -> np.ndarray:
    """A UI dialog as a screenshot shows one: a title bar, framed panels, rows of text,
    buttons and a slider on a light grey window (long horizontal and vertical edges,
    large flat areas), drawn with OpenCV."""
    rng = np.random.default_rng(seed)
    img = np.full((height, width, 3), (236, 234, 231), np.uint8)
    cv2.rectangle(img, (0, 0), (width - 1, 27), (62, 72, 92), -1)
    cv2.putText(img, "Scale Image", (10, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (245, 245, 245), 1, cv2.LINE_AA)
    y = 40
    while y < height - 70:
        panel = min(height - 70, y + int(rng.integers(60, 110)))
        cv2.rectangle(img, (10, y), (width - 11, panel), (160, 158, 154), 1)
        for row in range(y + 18, panel - 6, 20):
            words = " ".join("".join(chr(int(c)) for c in rng.integers(97, 123, int(n)))
                             for n in rng.integers(2, 8, 3))
            cv2.putText(img, words.capitalize(), (20, row), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                        (30, 30, 30), 1, cv2.LINE_AA)
            cv2.rectangle(img, (width - 120, row - 12), (width - 22, row + 3),
                          (255, 255, 255), -1)
            cv2.rectangle(img, (width - 120, row - 12), (width - 22, row + 3),
                          (120, 120, 120), 1)
        y = panel + 12
    cv2.line(img, (20, height - 52), (width - 20, height - 52), (90, 90, 90), 2)
    knob = int(rng.integers(40, width - 40))
    cv2.rectangle(img, (knob - 5, height - 60), (knob + 5, height - 44), (70, 110, 170), -1)
    for x0 in (width - 190, width - 100):
        cv2.rectangle(img, (x0, height - 34), (x0 + 80, height - 10), (215, 213, 210), -1)
        cv2.rectangle(img, (x0, height - 34), (x0 + 80, height - 10), (110, 110, 110), 1)
        cv2.putText(img, "OK" if x0 > width - 150 else "Cancel", (x0 + 14, height - 16),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (20, 20, 20), 1, cv2.LINE_AA)
    return _read_only(img)


def make_smooth_art(height: int = 360, width: int = 640, seed: int = 0) -> np.ndarray:
    """Smooth digital art as generators and wallpapers make it: a two-colour gradient
    with large translucent discs, thin bright polylines and a band of fine texture
    along the bottom (a field). Most of its blocks are flat, so WebP 50 and JPEG 30
    leave the mark little besides the lines and the texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    c0, c1 = rng.uniform(40, 200, 3), rng.uniform(40, 200, 3)
    t = (xx / width + 0.6 * yy / height) / 1.6
    img = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    for _ in range(4):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.3, 0.8) * max(height, width)
        inside = np.hypot(xx - cx, yy - cy) < r
        shade = rng.uniform(-35, 35, 3) * (0.5 + 0.5 * (yy / height))[..., None]
        img = np.where(inside[..., None], img + shade, img)
    img = cv2.GaussianBlur(img, (0, 0), 0.7)
    rng = np.random.default_rng(seed + 100)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (height, width)), (0, 0), 1.2)
    img += np.where(yy > height * 0.62, texture * 14, 0)[..., None]
    for _ in range(5):
        pts = np.stack([np.linspace(0, width, 8), rng.uniform(0, height * 0.6, 8)], 1)
        cv2.polylines(img, [pts.astype(np.int32)], False,
                      tuple(float(v) for v in rng.uniform(150, 250, 3)), 1, cv2.LINE_AA)
    return _read_only(np.clip(np.rint(img), 0, 255).astype(np.uint8))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip with OpenCV (its default 4:2:0 chroma subsampling)."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    assert ok
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


# --------------------------------------------------------------------------- #
# Fixtures


@pytest.fixture(scope="module")
def numba_one_thread():
    """Run the Numba kernels on one thread for the duration of a test module.

    Results do not depend on the thread count (test_api checks this), but with the
    OpenMP threading layer the parallel kernels slow down 10-20x on small images
    when other processes compete for the two cores; the thousands of detections in
    these modules would then dominate the suite's run time.
    """
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


@pytest.fixture(scope="session")
def photo_factory():
    """``photo_factory(name, width, height)``: a resized sample photo (read-only)."""
    return load_photo


@pytest.fixture(scope="session")
def image_factory():
    """Makers of synthetic images: ``flat``, ``gradient``, ``noise``, ``dialog`` and
    ``smooth_art``."""
    return {"flat": make_flat, "gradient": make_gradient, "noise": make_noise,
            "dialog": make_dialog, "smooth_art": make_smooth_art}


@pytest.fixture(scope="session")
def psnr_db():
    """``psnr_db(a, b)``: PSNR in dB between two uint8 images."""
    return psnr


@pytest.fixture(scope="session")
def jpeg_roundtrip():
    """``jpeg_roundtrip(img, quality)``: OpenCV JPEG encode/decode (4:2:0)."""
    return jpeg


@pytest.fixture(scope="session")
def photos_512() -> dict[str, np.ndarray]:
    """The four sample photos at 512x512."""
    return {name: load_photo(name, 512, 512) for name in PHOTO_NAMES}


@pytest.fixture(scope="session")
def photos_256() -> dict[str, np.ndarray]:
    """The four sample photos at 256x256 (one tile: the smallest accepted size)."""
    return {name: load_photo(name, 256, 256) for name in PHOTO_NAMES}


@pytest.fixture(scope="session")
def astronaut_512() -> np.ndarray:
    return load_photo("astronaut", 512, 512)


@pytest.fixture(scope="session")
def coffee_512() -> np.ndarray:
    return load_photo("coffee", 512, 512)


@pytest.fixture(scope="session")
def flat_image() -> np.ndarray:
    return make_flat(256)


@pytest.fixture(scope="session")
def gradient_image() -> np.ndarray:
    return make_gradient(256)


@pytest.fixture(scope="session")
def noise_image() -> np.ndarray:
    return make_noise(256)
