"""Fixtures for the attack tests: small in-memory images (nothing is downloaded)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

HEIGHT, WIDTH = 96, 128


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """scikit-image's astronaut, 96x128 (a real photo: edges, texture, skin, flat areas)."""
    img = cv2.resize(skimage.data.astronaut(), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    return _read_only(img)


@pytest.fixture(scope="session")
def texture() -> np.ndarray:
    """Seeded colourful texture in [40, 215]: no pure black or white pixels anywhere."""
    rng = np.random.default_rng(1234)
    coarse = rng.uniform(0, 255, size=(HEIGHT // 8, WIDTH // 8, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    fine = rng.normal(0, 20, size=(HEIGHT, WIDTH, 3)).astype(np.float32)
    img = np.clip(np.rint(smooth + fine), 40, 215).astype(np.uint8)
    return _read_only(img)


@pytest.fixture(scope="session")
def coords() -> np.ndarray:
    """R = row, G = column, B = 100: every pixel says where it came from."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    img = np.stack([rows, cols, np.full_like(rows, 100)], axis=2).astype(np.uint8)
    return _read_only(img)


@pytest.fixture(scope="session")
def psnr():
    """PSNR in dB between two uint8 images of the same shape (inf when identical)."""

    def _psnr(a: np.ndarray, b: np.ndarray) -> float:
        mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
        return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))

    return _psnr


@pytest.fixture(scope="session")
def hf_energy():
    """Mean squared Laplacian of the luma: a measure of high-frequency energy."""

    def _hf(img: np.ndarray) -> float:
        grey = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY).astype(np.float64)
        lap = cv2.Laplacian(grey, cv2.CV_64F, ksize=1)
        return float(np.mean(lap[2:-2, 2:-2] ** 2))

    return _hf
