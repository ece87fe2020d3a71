"""Reading and writing image files safely: clear errors, no lost input, atomic output.

Reading returns the stored pixels (no EXIF rotation is applied: the mark lives in
the stored pixel grid) plus the EXIF and ICC blocks so that writing can carry them
over. Writing goes to a temporary file in the destination directory, is flushed to
disk and then renamed over the destination, so a crash never leaves a half-written
file, and it refuses to write over the input it was read from.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._image import ImageError, as_rgb_array


@contextlib.contextmanager
def atomic_output(path: Path, mode: int | None = None):
    """Open a temporary file beside ``path`` for binary writing; on success it is
    synced and renamed over ``path`` (readers never see a partial file), on any
    error it is removed. ``mode`` is the file's permission bits; by default those a
    plain ``open()`` would give (mkstemp creates 0600)."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise

_EXIF_HEADER = b"Exif\x00\x00"
#: Output formats by file extension.
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


@dataclass(frozen=True)
class LoadedImage:
    """Pixels and the metadata blocks worth carrying over."""

    rgb: np.ndarray
    format: str
    exif: bytes | None
    icc_profile: bytes | None


def read_image(path: str | os.PathLike) -> LoadedImage:
    """Read a PNG, JPEG or WebP file as HxWx3 uint8 RGB.

    Raises
    ------
    ImageError
        Missing file, not an image, truncated or corrupt data, or an image provmark
        refuses (16-bit, transparency, ...); the message names the file and the fix.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p}: no such file")
    if p.is_dir():
        raise ImageError(f"{p}: is a directory, not an image file")
    try:
        with Image.open(p) as im:
            im.load()
            fmt = im.format or "?"
            exif = im.info.get("exif")
            icc = im.info.get("icc_profile")
            rgb, _ = as_rgb_array(im, what=str(p))
    except UnidentifiedImageError:
        raise ImageError(f"{p}: not a recognised image file (PNG, JPEG and WebP are supported)") from None
    except ImageError as exc:
        msg = str(exc)
        raise ImageError(msg if str(p) in msg else f"{p}: {msg}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(
            f"{p}: the image data is corrupt or truncated ({exc}); re-export it or use an intact copy"
        ) from None
    return LoadedImage(np.ascontiguousarray(rgb), fmt, exif, icc)


def write_image(path: str | os.PathLike, rgb: np.ndarray, *, quality: int = 95,
                exif: bytes | None = None, icc_profile: bytes | None = None,
                source: str | os.PathLike | None = None, overwrite: bool = False) -> Path:
    """Write ``rgb`` atomically in the format given by the extension of ``path``.

    ``quality`` applies to JPEG and WebP (WebP at 100 is written lossless). Refuses
    to write over ``source`` (the input) and, unless ``overwrite``, over any existing
    file.
    """
    from PIL import Image

    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise ImageError(f"{p}: unknown output extension {p.suffix!r}; use .png, .jpg or .webp")
    if source is not None and p.exists() and Path(source).exists() and p.samefile(source):
        raise ImageError(f"{p}: refusing to overwrite the input image; choose another output path")
    if p.exists() and not overwrite:
        raise ImageError(f"{p}: already exists; pass --force (overwrite=True) to replace it")
    if not 1 <= int(quality) <= 100:
        raise ImageError(f"quality={quality}: use 1..100")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ImageError(f"{parent}: output directory does not exist")
    im = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    kwargs: dict = {}
    if exif:
        # Pillow gives JPEG EXIF with its APP1 "Exif\0\0" header and WebP/PNG EXIF
        # without; JPEG output needs the header, PNG and WebP chunks must not have it.
        raw = exif[6:] if exif.startswith(_EXIF_HEADER) else exif
        kwargs["exif"] = _EXIF_HEADER + raw if fmt == "JPEG" else raw
    if icc_profile:
        kwargs["icc_profile"] = icc_profile
    if fmt == "JPEG":
        kwargs.update(quality=int(quality), subsampling="4:2:0" if quality < 90 else "4:4:4")
    elif fmt == "WEBP":
        kwargs.update(quality=int(quality), lossless=int(quality) == 100, method=4)
    with atomic_output(p) as fh:
        im.save(fh, format=fmt, **kwargs)
    return p
