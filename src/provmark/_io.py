"""Reading and writing image files safely: bounded decoding, clear errors, atomic output.

This module owns which files provmark reads (:data:`INPUT_FORMATS`: PNG, JPEG and
WebP, still and at most 8 bits per channel; everything else is refused with a message
that says what to do) and how it writes them. Reading checks the header before any
pixel is decoded: the format, the pixel count against :func:`provmark._image.max_pixels`
(a 69-byte PNG can claim 30000x30000), the bit depth and the frame count. It returns
the stored pixels (no EXIF rotation is applied: the mark lives in the stored pixel
grid) plus the EXIF and ICC blocks so that writing can carry them over. Writing goes
to a temporary file in the destination directory, is flushed to disk and then moved
into place in one atomic step: without ``overwrite`` by a hard link, which fails if
another process created the file meanwhile (never check-then-rename), with it by
:func:`os.replace`. A crash never leaves a half-written file and the input is never
overwritten. Failures of the file system come out as :class:`OSError` naming the
destination (:func:`describe_os_error` makes them one line).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._image import ImageError, as_rgb_array, sync_pillow_limit, too_large_message

#: The image formats provmark reads: Pillow's format name -> the name in messages.
#: The one list; BMP, TIFF, GIF, AVIF, HEIF and others are refused (convert to PNG).
INPUT_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP"}
#: The same list as text, for messages and help.
SUPPORTED_TEXT = "PNG, JPEG and WebP"
#: Output formats by file extension.
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
#: Formats refused by name, recognised from their first bytes (for the message only;
#: these files are never handed to a decoder).
_OTHER_FORMATS = (
    (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"), (b"\x00\x00\x01\x00", "ICO"), (b"8BPS", "PSD"),
    (b"\xff\x0a", "JPEG XL"), (b"\x00\x00\x00\x0cJXL ", "JPEG XL"), (b"%PDF", "PDF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"\xff\x4f\xff\x51", "JPEG 2000"),
)
_FTYP_BRANDS = {b"avif": "AVIF", b"avis": "AVIF", b"heic": "HEIC", b"heix": "HEIC",
                b"mif1": "HEIF", b"msf1": "HEIF"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR = {0: "grey", 2: "RGB", 3: "palette", 4: "grey with alpha", 6: "RGBA"}
_EXIF_HEADER = b"Exif\x00\x00"
_BOMB_SIZE = re.compile(r"\((\d+) pixels\)")
#: Errors of :func:`os.link` that mean "this file system has no hard links".
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS,
                  errno.EXDEV}


@dataclass(frozen=True)
class PngText:
    """One PNG text chunk to carry over: ``keyword`` and ``text``; ``lang`` and
    ``translated`` are None for a tEXt/zTXt chunk and strings for an iTXt one."""

    keyword: str
    text: str
    lang: str | None = None
    translated: str | None = None


@dataclass(frozen=True)
class LoadedImage:
    """Pixels and the metadata blocks worth carrying over.

    ``notes`` says what reading dropped that a careful user would want to know
    (e.g. the extra pictures of a multi-picture JPEG); empty when nothing was lost.
    """

    rgb: np.ndarray
    format: str
    exif: bytes | None
    icc_profile: bytes | None
    notes: tuple[str, ...] = ()
    #: The XMP packet (bytes as stored; the first one of a JPEG with several).
    xmp: bytes | None = None
    #: PNG text chunks other than XMP, as :data:`PngText` entries (PNG input only).
    png_text: tuple[PngText, ...] = ()
    #: True for a lossless WebP (VP8L) input: kept lossless when written as WebP again.
    lossless: bool = False

    @property
    def metadata(self) -> dict:
        """The keyword arguments of :func:`encode_image` that carry this file's
        metadata (EXIF, ICC profile, XMP, PNG text) into an output."""
        return {"exif": self.exif, "icc_profile": self.icc_profile, "xmp": self.xmp,
                "png_text": self.png_text}


def _other_format(prefix: bytes) -> str | None:
    for magic, name in _OTHER_FORMATS:
        if prefix.startswith(magic):
            return name
    if prefix[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(prefix[8:12], "ISO media (HEIF/AVIF family)")
    return None


def _png_header(prefix: bytes) -> tuple[int, int, int, int] | None:
    """``(width, height, bit depth, colour type)`` from a PNG's IHDR, which the
    format requires to be the first chunk; None if ``prefix`` is not that."""
    if len(prefix) < 26 or not prefix.startswith(_PNG_SIGNATURE) or prefix[12:16] != b"IHDR":
        return None
    return (int.from_bytes(prefix[16:20], "big"), int.from_bytes(prefix[20:24], "big"),
            prefix[24], prefix[25])


def _decode_errors() -> tuple[type[BaseException], ...]:
    """What a decoder raises on bad data (Pillow raises more than OSError)."""
    import struct
    import zlib

    from PIL import Image

    return (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error,
            zlib.error, Image.DecompressionBombError, Image.DecompressionBombWarning)


def _bomb_message(what: str, exc: Exception, limit: int) -> str:
    m = _BOMB_SIZE.search(str(exc))
    claimed = f"{int(m.group(1)):,} pixels" if m else "more pixels than Pillow's limit"
    return (f"{what}: the header claims {claimed}, above provmark's limit of {limit:,} pixels "
            f"({limit / 1e6:g} MP); refused before decoding: downscale it, or raise the limit "
            "with --max-pixels N on the command line, or PROVMARK_MAX_PIXELS=N in the environment")


@contextlib.contextmanager
def open_image(source: str | os.PathLike | bytes, *, what: str | None = None):
    """Open an image file (a path, or the file's bytes) for reading after every check
    that needs only its header.

    Yields ``(image, notes)``: a PIL image whose pixels are not decoded yet, and the
    notes for :attr:`LoadedImage.notes`. The file is closed on exit. ``what`` names
    the image in messages (default: the path, or ``<bytes>``).

    Raises
    ------
    ImageError
        Missing or unreadable file, a directory, a format other than
        :data:`INPUT_FORMATS`, more pixels than :func:`~provmark._image.max_pixels`,
        16 bits per channel, or an animation; the message names the file and the fix.
    """
    from PIL import Image, UnidentifiedImageError

    limit = sync_pillow_limit()
    if isinstance(source, (bytes, bytearray, memoryview)):
        what = what or "<bytes>"
        fh = io.BytesIO(bytes(source))
    else:
        p = Path(source)
        what = what or str(p)
        if not p.exists():
            raise ImageError(f"{what}: no such file")
        if p.is_dir():
            raise ImageError(f"{what}: is a directory, not an image file")
        try:
            fh = open(p, "rb")  # noqa: SIM115 - closed below, after the caller's block
        except OSError as exc:
            raise ImageError(f"{what}: cannot read ({exc.strerror or exc})") from None
    with fh:
        try:
            prefix = fh.read(64)
            fh.seek(0)
        except OSError as exc:
            raise ImageError(f"{what}: cannot read ({exc.strerror or exc})") from None
        png = _png_header(prefix)
        if png is not None:
            w, h, depth, colour = png
            if w * h > limit:  # refused from the header alone, before Pillow sees it
                raise ImageError(too_large_message(what, w, h, limit, header=True))
            if depth == 16:
                kind = _PNG_COLOUR.get(colour, f"colour type {colour}")
                raise ImageError(
                    f"{what}: 16-bit PNG ({kind}, 16 bits per channel): provmark reads 8 bits per "
                    "channel and would drop the low 8 bits: convert it to 8 bits yourself "
                    "(e.g. ImageMagick: magick in.png -depth 8 out.png) and keep the 16-bit original")
        try:
            im = Image.open(fh, formats=list(INPUT_FORMATS))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(_bomb_message(what, exc, limit)) from None
        except UnidentifiedImageError:
            other = _other_format(prefix)
            if other is not None:
                raise ImageError(
                    f"{what}: {other} files are not supported (provmark reads {SUPPORTED_TEXT}): "
                    "convert it to PNG (lossless) first") from None
            raise ImageError(f"{what}: not a recognised image file ({SUPPORTED_TEXT} are "
                             "supported)") from None
        except MemoryError:
            raise ImageError(f"{what}: not enough memory to read the header") from None
        except Exception as exc:  # hostile headers: any decoder failure is the file's fault
            raise ImageError(f"{what}: the image data is corrupt or truncated ({exc}); re-export "
                             "it or use an intact copy") from None
        with im:
            w, h = im.size
            if w * h > limit:
                raise ImageError(too_large_message(what, w, h, limit, header=True))
            notes: list[str] = []
            frames = int(getattr(im, "n_frames", 1) or 1)
            if im.format == "MPO":
                if frames > 1:
                    notes.append(f"{what}: multi-picture JPEG (MPO) with {frames} pictures: only "
                                 f"the primary picture is read; the other {frames - 1} are "
                                 "not carried into the output")
            elif frames > 1:
                name = INPUT_FORMATS.get(im.format or "", im.format)
                raise ImageError(
                    f"{what}: animated {name} with {frames} frames: provmark marks still images "
                    "and would keep only the first frame: export the frame you want as a "
                    "still PNG and mark that")
            yield im, tuple(notes)


def probe_image(path: str | os.PathLike) -> tuple[str, int, int]:
    """Check a file as :func:`read_image` would, decoding nothing; returns
    ``(format, width, height)``. Raises :class:`ImageError` like :func:`open_image`."""
    with open_image(path) as (im, _):
        return _format_name(im), int(im.size[0]), int(im.size[1])


def _format_name(im) -> str:
    return "JPEG" if im.format == "MPO" else (im.format or "?")


def read_image(path: str | os.PathLike) -> LoadedImage:
    """Read a PNG, JPEG or WebP file as HxWx3 uint8 RGB.

    The header is checked first (:func:`open_image`); only then are the pixels
    decoded, so an image above the pixel limit costs nothing.

    Raises
    ------
    ImageError
        Missing file, not an image, a refused format, too many pixels, truncated or
        corrupt data, or an image provmark refuses (16-bit, transparency, animation,
        ...); the message names the file and the fix.
    """
    p = Path(path)
    return _load(p, str(p))


def read_image_bytes(data: bytes, *, what: str = "<bytes>") -> LoadedImage:
    """:func:`read_image` on an encoded file held in memory; ``what`` names it in
    messages. Raises :class:`ImageError` like :func:`read_image` (also for data
    that is not ``bytes``-like: a :class:`TypeError`)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be the encoded image file as bytes, not {type(data).__name__}")
    if not len(data):
        raise ImageError(f"{what}: empty (0 bytes), not an image file")
    return _load(bytes(data), what)


def _load(source: Path | bytes, what: str) -> LoadedImage:
    with open_image(source, what=what) as (im, notes):
        fmt = _format_name(im)
        lossless = fmt == "WEBP" and _webp_is_lossless(im)
        try:
            im.load()
        except MemoryError:
            w, h = im.size
            raise ImageError(f"{what}: not enough memory to decode {w}x{h} pixels; lower "
                             "--max-pixels or downscale it") from None
        except _decode_errors() as exc:
            raise ImageError(
                f"{what}: the image data is corrupt or truncated ({exc}); re-export it or use an "
                "intact copy") from None
        exif = im.info.get("exif")
        icc = im.info.get("icc_profile")
        xmp = im.info.get("xmp") or None
        png_text = _png_text_of(im) if fmt == "PNG" else ()
        try:
            if im.mode == "RGB":  # the common case: no conversion copy (3-8 ms at 1080p)
                rgb, _ = as_rgb_array(np.asarray(im), what=what)
            else:
                rgb, _ = as_rgb_array(im, what=what)
        except ImageError as exc:
            msg = str(exc)
            raise ImageError(msg if what in msg else f"{what}: {msg}") from None
    return LoadedImage(np.ascontiguousarray(rgb), fmt, exif, icc, notes, xmp=xmp,
                       png_text=png_text, lossless=lossless)


def _webp_is_lossless(im) -> bool:
    """True when a WebP's bitstream is VP8L (lossless); read from the RIFF chunk
    list of the still-open file without decoding."""
    fh = im.fp
    try:
        pos = fh.tell()
        fh.seek(12)
        head = fh.read(4096)
        fh.seek(pos)
    except (AttributeError, OSError, ValueError):
        return False
    at = 0
    while at + 8 <= len(head):
        kind = head[at:at + 4]
        if kind == b"VP8L":
            return True
        if kind in (b"VP8 ", b"ANMF"):
            return False
        at += 8 + int.from_bytes(head[at + 4:at + 8], "little")
        at += at & 1
    return False


def _png_text_of(im) -> tuple[PngText, ...]:
    """The text chunks of a loaded PNG except the XMP packet (carried as ``xmp``)."""
    out = []
    for keyword, value in (getattr(im, "text", None) or {}).items():
        if keyword == "XML:com.adobe.xmp":
            continue
        lang = getattr(value, "lang", None)
        tkey = getattr(value, "tkey", None)
        out.append(PngText(str(keyword), str(value), lang, tkey))
    return tuple(out)


# --------------------------------------------------------------------------- #
# Writing


def describe_os_error(exc: OSError) -> str:
    """One line for a failed file operation: the file, the reason and what to do."""
    where = exc.filename if exc.filename is not None else None
    reason = exc.strerror or str(exc)
    hint = {
        errno.EROFS: "the file system is read-only: choose an output on a writable one",
        errno.EACCES: "permission denied: choose a writable output location",
        errno.EPERM: "not permitted (an immutable or protected directory?): choose another "
                     "output location",
        errno.ENOSPC: "the disk is full: free some space or write elsewhere",
        errno.EDQUOT: "the disk quota is exhausted: free some space or write elsewhere",
        errno.EFBIG: "the file is larger than this system allows here: write elsewhere",
        errno.ENOENT: "no such file or directory",
        errno.ENOTDIR: "a component of the path is not a directory",
    }.get(exc.errno)
    text = f"{where}: {reason}" if where else reason
    if hint and hint.lower() not in text.lower():
        text += f" ({hint})"
    return text


def _at(exc: OSError, path: Path) -> OSError:
    """``exc`` renamed to be about ``path`` (not our temporary file)."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _already_exists(path: Path) -> ImageError:
    return ImageError(f"{path}: already exists; pass --force (overwrite=True) to replace it")


def _create_exclusive(tmp: str, path: Path, mode: int) -> None:
    """Move ``tmp`` to ``path`` only if ``path`` does not exist, atomically: a hard
    link fails with EEXIST when another process got there first. On a file system
    without hard links, create ``path`` with O_EXCL and copy (still exclusive)."""
    try:
        os.link(tmp, path)
        return
    except FileExistsError:
        raise _already_exists(path) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise _already_exists(path) from None
    try:
        with os.fdopen(fd, "wb") as out, open(tmp, "rb") as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise


@contextlib.contextmanager
def atomic_output(path: Path, mode: int | None = None, *, overwrite: bool = True):
    """Open a temporary file beside ``path`` for binary writing; on success it is
    synced and moved to ``path`` in one atomic step, on any error it is removed.

    Parameters
    ----------
    path : path
        The destination.
    mode : int, optional
        The file's permission bits; by default those a plain ``open()`` would give
        (mkstemp creates 0600).
    overwrite : bool, default True
        Replace an existing ``path`` (:func:`os.replace`). With False the file is
        linked into place, which fails if ``path`` exists, even if another process
        created it a moment ago: exactly one of several concurrent writers wins.

    Raises
    ------
    ImageError
        ``path`` exists and not ``overwrite``.
    OSError
        The file system refused (read-only, full, permissions); ``filename`` is
        ``path``, not the temporary file.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise _at(exc, path) from None
    try:
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _create_exclusive(tmp, path, mode)
            os.unlink(tmp)
        _fsync_directory(parent)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if exc.filename in (None, tmp):
            raise _at(exc, path) from None
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_quality(quality: int) -> int:
    """``quality`` as an int if it is 1..100, else :class:`ImageError`."""
    if isinstance(quality, bool) or not 1 <= int(quality) <= 100:
        raise ImageError(f"quality={quality}: use 1..100")
    return int(quality)


def check_output(path: str | os.PathLike, *, source: str | os.PathLike | None = None,
                 overwrite: bool = False) -> str:
    """Check before any work that an image can be written to ``path``; returns its
    format (Pillow's name).

    The final word belongs to the atomic write (:func:`atomic_output`): another
    process may still create ``path`` in between, and then the write fails.

    Raises
    ------
    ImageError
        Unknown extension, ``path`` is the input ``source``, ``path`` exists and not
        ``overwrite``, or its directory does not exist.
    """
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise ImageError(f"{p}: unknown output extension {p.suffix!r}; use .png, .jpg or .webp")
    if source is not None and p.exists() and Path(source).exists() and p.samefile(source):
        raise ImageError(f"{p}: refusing to overwrite the input image; choose another output path")
    if p.is_dir():
        raise ImageError(f"{p}: is a directory; give an image file name")
    if p.exists() and not overwrite:
        raise _already_exists(p)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ImageError(f"{parent}: output directory does not exist")
    return fmt


#: PNG text longer than this (characters) is written compressed (zTXt, or iTXt with zlib).
_PNG_TEXT_COMPRESS_FROM = 1024


def _png_info(xmp: bytes | None, png_text: tuple[PngText, ...]):
    """A PngInfo holding the XMP packet (an iTXt chunk keyed ``XML:com.adobe.xmp``,
    as the PNG and XMP specifications ask) and the text chunks, or None."""
    if not xmp and not png_text:
        return None
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if xmp:
        info.add_itxt("XML:com.adobe.xmp", bytes(xmp), zip=False)
    for t in png_text:
        zip_ = len(t.text) >= _PNG_TEXT_COMPRESS_FROM
        if t.lang is None and t.translated is None:
            try:
                info.add_text(t.keyword, t.text.encode("latin-1"), zip=zip_)
                continue
            except UnicodeEncodeError:  # not Latin-1: only iTXt holds it
                pass
        info.add_itxt(t.keyword, t.text, t.lang or "", t.translated or "", zip=zip_)
    return info


def _save_options(fmt: str, quality: int, exif: bytes | None, icc_profile: bytes | None,
                  xmp: bytes | None = None, png_text: tuple[PngText, ...] = (),
                  lossless: bool = False) -> dict:
    kwargs: dict = {}
    if fmt == "PNG":
        info = _png_info(xmp, png_text)
        if info is not None:
            kwargs["pnginfo"] = info
    elif xmp:
        kwargs["xmp"] = bytes(xmp)
    if exif:
        # Pillow gives JPEG EXIF with its APP1 "Exif\0\0" header and WebP/PNG EXIF
        # without; JPEG output needs the header, PNG and WebP chunks must not have it.
        raw = exif[6:] if exif.startswith(_EXIF_HEADER) else exif
        kwargs["exif"] = _EXIF_HEADER + raw if fmt == "JPEG" else raw
    if icc_profile:
        kwargs["icc_profile"] = icc_profile
    if fmt == "JPEG":
        kwargs.update(quality=quality, subsampling="4:2:0" if quality < 90 else "4:4:4")
    elif fmt == "WEBP":
        kwargs.update(quality=quality, lossless=lossless or quality == 100, method=4)
    return kwargs


def encode_image(rgb: np.ndarray, fmt: str, *, quality: int = 95, exif: bytes | None = None,
                 icc_profile: bytes | None = None, xmp: bytes | None = None,
                 png_text: tuple[PngText, ...] = (), lossless: bool = False) -> bytes:
    """``rgb`` encoded as ``fmt`` ("PNG", "JPEG" or "WEBP") the way :func:`write_image`
    writes it, as bytes.

    ``exif``, ``icc_profile`` and ``xmp`` are written into every format (XMP: the
    standard APP1 segment of JPEG, the ``XMP`` chunk of WebP, an iTXt chunk of PNG);
    ``png_text`` only into PNG (the other formats have no place for it).
    ``quality`` applies to JPEG and WebP; WebP is lossless at 100 or with
    ``lossless``. This is the one place where provmark encodes pixels.

    Raises
    ------
    ImageError
        A bad ``quality``, or metadata the format cannot hold (a JPEG segment holds
        at most 64 KB of EXIF or XMP).
    """
    from PIL import Image

    quality = check_quality(quality)
    options = _save_options(fmt, quality, exif, icc_profile, xmp, png_text, lossless)
    buf = io.BytesIO()
    try:
        Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(buf, format=fmt, **options)
    except ValueError as exc:  # Pillow: "EXIF data is too long", "XMP data is too long", ...
        name = INPUT_FORMATS.get(fmt, fmt)
        raise ImageError(f"cannot encode as {name}: {exc} (a {name} segment holds at most "
                         "64 KB of EXIF or XMP): write PNG or WebP instead, or shorten "
                         "that metadata") from None
    return buf.getvalue()


def write_image(path: str | os.PathLike, rgb: np.ndarray, *, quality: int = 95,
                exif: bytes | None = None, icc_profile: bytes | None = None,
                source: str | os.PathLike | None = None, overwrite: bool = False) -> Path:
    """Write ``rgb`` atomically in the format given by the extension of ``path``.

    ``quality`` applies to JPEG and WebP (WebP at 100 is written lossless). Refuses
    to write over ``source`` (the input) and, unless ``overwrite``, over any existing
    file, including one another process creates while this one encodes.

    Raises
    ------
    ImageError
        See :func:`check_output`; also a bad ``quality``.
    OSError
        The file system refused the write; ``filename`` is ``path``.
    """
    from PIL import Image

    p = Path(path)
    fmt = check_output(p, source=source, overwrite=overwrite)
    quality = check_quality(quality)
    im = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    with atomic_output(p, overwrite=overwrite) as fh:
        im.save(fh, format=fmt, **_save_options(fmt, quality, exif, icc_profile))
    return p
