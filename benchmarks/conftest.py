"""Shared fixtures of the benchmarks: test photos at the benchmark sizes, and the
peer adapters (loaded from ``benchmarks/peers.py`` by path: benchmarks are not a
package)."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

SIZES = {"512x512": (512, 512), "1024x1024": (1024, 1024), "1920x1080": (1080, 1920)}


@functools.lru_cache(maxsize=1)
def load_peers():
    spec = importlib.util.spec_from_file_location("provmark_bench_peers",
                                                  Path(__file__).with_name("peers.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def photo(size: tuple[int, int]) -> np.ndarray:
    """scikit-image's astronaut photo resized to ``(h, w)`` (bundled: no download)."""
    from skimage import data

    h, w = size
    return np.ascontiguousarray(cv2.resize(data.astronaut(), (w, h), interpolation=cv2.INTER_CUBIC))


@pytest.fixture(scope="session", params=list(SIZES), ids=list(SIZES))
def sized_photo(request):
    return request.param, photo(SIZES[request.param])
