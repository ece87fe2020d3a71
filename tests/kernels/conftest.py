"""Shared set-up for the kernel tests: the ``naive`` references and small in-memory
images (nothing is downloaded).

Every kernel test but the slow ones runs again with ``NUMBA_DISABLE_JIT=1`` (the
kernels' pure-Python bodies): ``test_modulation.py::test_kernel_bodies_without_jit``
does that in a subprocess.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

# tests/naive.py holds the reference implementations (stumpy's layout).
_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)


def _textured_rgb(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth colour field plus noise, with a dark and a bright noisy block (the
    headroom limit of the radius floor) and no exactly flat block."""
    gy, gx = np.mgrid[0:height, 0:width] / max(height, width)
    base = 128 + 70 * np.sin(5 * gy + 3 * gx)[..., None] * np.array([1.0, 0.8, 0.6])
    img = base + rng.normal(0, 12, size=(height, width, 3))
    img[0:16, 0:16] = rng.uniform(0, 4, size=(16, 16, 3))  # near black
    img[16:32, 16:32] = rng.uniform(251, 255, size=(16, 16, 3))  # near white
    return np.ascontiguousarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator per test (no global seeds)."""
    return np.random.default_rng(20251123)


@pytest.fixture
def textured_rgb():
    """Factory ``(height, width, rng) -> (H, W, 3) uint8``: a smooth colour field plus
    noise, a near-black block at (0, 0) and a near-white block at (1, 1)."""
    return _textured_rgb
