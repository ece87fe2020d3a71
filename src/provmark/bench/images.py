"""The benchmark's test images: scikit-image's bundled colour photos, or a folder.

An :class:`ImageRef` names an image and the size it is benchmarked at; workers load
the pixels themselves (:func:`load`), so only the small reference crosses process
boundaries. The default photos ship inside scikit-image (nothing is downloaded);
``--images DIR`` reads every PNG, JPEG and WebP file of a folder with provmark's
own reader.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["PHOTOS", "ImageRef", "parse_size", "skimage_photos", "folder_images", "load"]

#: scikit-image's colour photos, all bundled with the package (no download).
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina", "motorcycle")
_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class ImageRef:
    """A benchmark image: where it comes from and the size it is resized to.

    ``source`` is ``"skimage"`` (``name`` is a photo of :data:`PHOTOS`) or
    ``"file"`` (``path``); ``size`` is ``(width, height)`` or None for the native
    size; ``digest`` fingerprints a file's bytes so the resume cache notices a
    changed file.
    """

    name: str
    source: str
    size: tuple[int, int] | None
    path: str = ""
    digest: str = ""

    @property
    def id(self) -> str:
        size = "native" if self.size is None else f"{self.size[0]}x{self.size[1]}"
        where = f"file:{self.name}#{self.digest}" if self.source == "file" else f"skimage:{self.name}"
        return f"{where}@{size}"


def parse_size(text: str | int | None) -> tuple[int, int] | None:
    """``"512"`` -> (512, 512); ``"1920x1080"`` -> (1920, 1080) (width x height);
    ``"native"`` or None -> None (images keep their own size)."""
    if text is None:
        return None
    if isinstance(text, int):
        text = str(text)
    t = text.strip().lower()
    if t in ("native", "0", ""):
        return None
    try:
        if "x" in t:
            w, h = (int(v) for v in t.split("x", 1))
        else:
            w = h = int(t)
    except ValueError:
        raise ValueError(f"cannot read size {text!r}: use 512, 1920x1080 (width x height) "
                         "or native") from None
    if w < 256 or h < 256:
        raise ValueError(f"size {w}x{h} is too small: provmark and invisible-watermark need "
                         "at least 256x256")
    return (w, h)


def skimage_photos(names=PHOTOS, size=(512, 512)) -> list[ImageRef]:
    """References to scikit-image's bundled photos ``names`` at ``size``."""
    out = []
    for n in names:
        if n not in PHOTOS:
            raise ValueError(f"unknown scikit-image photo {n!r}: use one of {', '.join(PHOTOS)}")
        out.append(ImageRef(n, "skimage", size))
    return out


def folder_images(folder: str | os.PathLike, size=(512, 512)) -> list[ImageRef]:
    """References to every PNG, JPEG and WebP file in ``folder`` (sorted by name)."""
    d = Path(folder)
    if not d.is_dir():
        raise ValueError(f"--images {d}: not a directory")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in _EXTENSIONS and p.is_file())
    if not files:
        raise ValueError(f"--images {d}: no .png, .jpg, .jpeg or .webp files there")
    out = []
    for p in files:
        digest = hashlib.sha256(p.read_bytes()).hexdigest()[:12]
        out.append(ImageRef(p.name, "file", size, str(p.resolve()), digest))
    return out


def _resize(img: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    import cv2

    if size is None:
        return np.ascontiguousarray(img)
    w, h = size
    if img.shape[:2] == (h, w):
        return np.ascontiguousarray(img)
    interp = cv2.INTER_AREA if img.shape[0] * img.shape[1] > w * h else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(img, (w, h), interpolation=interp))


@lru_cache(maxsize=16)
def load(ref: ImageRef) -> np.ndarray:
    """The pixels of ``ref``: HxWx3 uint8 RGB, read-only (cached per process)."""
    if ref.source == "skimage":
        from skimage import data

        img = data.stereo_motorcycle()[0] if ref.name == "motorcycle" else getattr(data, ref.name)()
        img = np.asarray(img)[..., :3]
    elif ref.source == "file":
        from provmark._io import read_image

        img = read_image(ref.path).rgb
    else:
        raise ValueError(f"unknown image source {ref.source!r}")
    out = _resize(img, ref.size)
    if min(out.shape[:2]) < 256:
        raise ValueError(f"{ref.name} is {out.shape[1]}x{out.shape[0]}: the benchmark needs at "
                         "least 256x256 (use --size)")
    out.flags.writeable = False
    return out
