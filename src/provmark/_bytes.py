"""Bytes in, bytes out: :func:`embed_bytes`, :func:`label_bytes`, :func:`detect_bytes`.

What a generation service, a pipeline or an HTTP handler holds is an encoded file,
not a pixel array. This module owns the step from such a file to the marked file:
which output format and quality are used (:func:`output_format`,
:func:`output_quality`) and which metadata travels along. Decoding is
:func:`provmark._io.read_image_bytes` (the same header checks, pixel limit and
errors as reading a file), encoding is :func:`provmark._io.encode_image` (and
:func:`provmark._label.encode_labelled` for the label layers): nothing here
encodes pixels itself, so a file marked through the bytes API, the command line,
the batch engine (local or Ray) or the HTTP service is byte for byte the same.

Carried from the input into the output: the EXIF block, the ICC profile and the
XMP packet (byte for byte; :func:`label_bytes` adds the GB 45438 label to that
packet and keeps its other properties), and PNG text chunks when the output is
PNG. Not carried: JPEG comments and APP segments other than EXIF, ICC and XMP,
extended XMP, and the extra pictures of a multi-picture JPEG (a warning says so).
EXIF orientation is not applied: the mark lives in the stored pixel grid, and the
EXIF block, orientation included, is kept as it was.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from . import metadata as _metadata
from ._detect import Detection, detect
from ._embed import embed
from ._image import ImageError
from ._io import LoadedImage, check_quality, encode_image, read_image_bytes
from ._label import encode_labelled, label
from ._payload import Payload

#: Output format names accepted by ``format=`` (case-insensitive, an optional
#: leading dot) -> Pillow's name.
OUTPUT_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
#: JPEG and WebP quality when ``quality=None`` (a lossless WebP input stays lossless).
DEFAULT_QUALITY = 95
#: File extension written for each output format.
EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}


@dataclass(frozen=True)
class Encoded:
    """An encoded output and what the batch engine records about it.

    Attributes
    ----------
    data : bytes
        The output file.
    format : str
        Pillow's name of its format: ``"PNG"``, ``"JPEG"`` or ``"WEBP"``.
    width, height : int
        Pixel size (that of the input).
    notes : tuple of str
        What reading the input dropped (e.g. the extra pictures of an MPO file).
    label : AIGCLabel or None
        The signed metadata label written (:func:`label_bytes` only).
    explicit_box : tuple of int or None
        The visible label's plate ``(x0, y0, x1, y1)`` (:func:`label_bytes` with
        ``explicit``), and ``explicit_text_height`` its text height in pixels.
    mark_seconds : float
        Time spent in :func:`provmark.embed` / :func:`provmark.label`.
    psnr_db : float or None
        PSNR of the marked pixels against the input's, when asked for (``measure``).
    """

    data: bytes
    format: str
    width: int
    height: int
    notes: tuple[str, ...] = ()
    label: _metadata.AIGCLabel | None = None
    explicit_box: tuple[int, int, int, int] | None = None
    explicit_text_height: int = 0
    mark_seconds: float = 0.0
    psnr_db: float | None = None


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of one shape (inf when identical)."""
    d = (a.astype(np.int32) - b).ravel()
    mse = float(np.dot(d, d)) / d.size
    return float("inf") if mse == 0 else 10 * float(np.log10(255.0**2 / mse))


def output_format(format: str | None, source_format: str) -> str:
    """Pillow's name of the output format: ``format`` ("png", "jpeg"/"jpg", "webp",
    any case, with or without a leading dot), or the input's own format when None.

    Raises
    ------
    ImageError
        An unknown ``format``.
    """
    if format is None:
        return "JPEG" if source_format == "MPO" else source_format
    if not isinstance(format, str):
        raise TypeError(f"format must be a str or None, not {type(format).__name__}")
    name = OUTPUT_FORMATS.get(format.lower().lstrip("."))
    if name is None:
        raise ImageError(f"format={format!r}: use 'png', 'jpeg' (or 'jpg') or 'webp', or None "
                         "to keep the input's format")
    return name


def output_quality(quality: int | None, fmt: str, *, lossless_source: bool = False
                   ) -> tuple[int, bool]:
    """``(quality, lossless)`` for encoding as ``fmt``.

    ``quality=None`` gives :data:`DEFAULT_QUALITY` (95: the mark survives much
    stronger recompression later, and 95 keeps the file close to the source), except
    that a lossless WebP written as WebP stays lossless. A quality of 100 makes WebP
    lossless (as on the command line). PNG ignores quality.

    Raises
    ------
    ImageError
        ``quality`` outside 1..100.
    """
    if quality is None:
        return DEFAULT_QUALITY, lossless_source and fmt == "WEBP"
    return check_quality(quality), False


def _check_data(data) -> None:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be the encoded image file as bytes, not {type(data).__name__}")


def _read_for_output(data: bytes, format: str | None, quality: int | None, what: str
                     ) -> tuple[LoadedImage, str, int, bool]:
    """Decode ``data`` to be written again: ``(source, output format, quality,
    lossless)`` by :func:`output_format` and :func:`output_quality`. An unknown
    ``format`` or a bad ``quality`` fails before anything is decoded."""
    if format is not None:
        output_format(format, "PNG")
    if quality is not None:
        check_quality(quality)
    src = read_image_bytes(data, what=what)
    fmt = output_format(format, src.format)
    q, lossless = output_quality(quality, fmt, lossless_source=src.lossless)
    return src, fmt, q, lossless


def encode_embedded(data: bytes, payload: Payload, *, key: bytes | str | None = None,
                    format: str | None = None, quality: int | None = None,
                    strength: float = 1.0, min_psnr: float = 40.0, adapt: bool = True,
                    what: str = "<bytes>", measure: bool = False) -> Encoded:
    """:func:`embed_bytes` returning an :class:`Encoded` (with the notes instead of
    warnings); ``what`` names the input in error messages; ``measure`` also
    computes the PSNR."""
    _check_data(data)
    if not isinstance(payload, Payload):
        raise TypeError(f"payload must be a provmark.Payload, not {type(payload).__name__}")
    src, fmt, q, lossless = _read_for_output(data, format, quality, what)
    t0 = time.perf_counter()
    marked = embed(src.rgb, payload, key=key, strength=strength, min_psnr=min_psnr, adapt=adapt)
    seconds = time.perf_counter() - t0
    out = encode_image(marked, fmt, quality=q, lossless=lossless, **src.metadata)
    h, w = src.rgb.shape[:2]
    return Encoded(out, fmt, int(w), int(h), src.notes, mark_seconds=seconds,
                   psnr_db=psnr_db(src.rgb, marked) if measure else None)


def encode_labelled_bytes(data: bytes, payload: Payload, *, content_producer: str,
                          produce_id: str, key: bytes | str | None = None,
                          format: str | None = None, quality: int | None = None,
                          explicit: bool = True, text: str = "AI生成",
                          position: str = "bottom-right", strength: float = 1.0,
                          min_psnr: float = 40.0, adapt: bool = True,
                          what: str = "<bytes>", measure: bool = False, c2pa=None) -> Encoded:
    """:func:`label_bytes` returning an :class:`Encoded` (with the notes instead of
    warnings, the signed label and the visible label's box); ``what`` names the
    input in error messages; ``measure`` also computes the PSNR; ``c2pa`` (a
    :class:`provmark.c2pa.C2paSigner`) signs a C2PA manifest into the output."""
    _check_data(data)
    src, fmt, q, lossless = _read_for_output(data, format, quality, what)
    t0 = time.perf_counter()
    labelled = label(src.rgb, payload, content_producer=content_producer,
                     produce_id=produce_id, key=key, explicit=explicit, text=text,
                     position=position, strength=strength, min_psnr=min_psnr, adapt=adapt,
                     c2pa=c2pa)
    seconds = time.perf_counter() - t0
    out = encode_labelled(labelled, fmt, quality=q, lossless=lossless, **src.metadata)
    h, w = src.rgb.shape[:2]
    return Encoded(out, fmt, int(w), int(h), src.notes, labelled.label, labelled.explicit_box,
                   labelled.explicit_text_height, seconds,
                   psnr_db(src.rgb, labelled.image) if measure else None)


def _warn(notes: tuple[str, ...]) -> None:
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=3)


def embed_bytes(data: bytes, payload: Payload, *, key: bytes | str | None = None,
                format: str | None = None, quality: int | None = None,
                strength: float = 1.0, min_psnr: float = 40.0, adapt: bool = True) -> bytes:
    """Embed ``payload`` into an encoded image and return the encoded marked image.

    The bytes of a PNG, JPEG or WebP file are decoded (with the checks of
    :func:`provmark.detect`'s file readers: format, pixel limit, 8 bits per channel,
    still image), marked with :func:`provmark.embed` and encoded again, keeping the
    EXIF block, the ICC profile and the XMP packet byte for byte (and PNG text chunks
    when the output is PNG). The result is the same bytes as
    ``encode_image(embed(pixels), ...)`` with that metadata: the command line, the
    batch engine (local and Ray) and the HTTP service all go through this function.

    Parameters
    ----------
    data : bytes
        The image file (PNG, JPEG or WebP).
    payload : Payload
        What the watermark carries.
    key : bytes, str or None, optional
        The watermark key; None is the public key.
    format : {"png", "jpeg", "jpg", "webp"} or None, optional
        Output format (any case). None keeps the input's format (a multi-picture
        JPEG becomes a plain JPEG).
    quality : int or None, optional
        JPEG/WebP quality 1..100. None: 95, except that a lossless WebP input
        written as WebP stays lossless; 100 writes WebP lossless. JPEG at 90 and
        above keeps full-resolution chroma (4:4:4), below it 4:2:0. PNG ignores it.
    strength, min_psnr, adapt : optional
        Passed to :func:`provmark.embed`.

    Returns
    -------
    bytes
        The marked image file.

    Raises
    ------
    ImageError
        Not an image, a truncated or corrupt file, a format other than PNG, JPEG or
        WebP, 16 bits per channel, an animation, transparency, more pixels than the
        limit, an unknown ``format``, a bad ``quality``, or metadata the output
        format cannot hold. The message says what to do.
    EmbedError
        The image cannot carry a mark that reads back (see :func:`provmark.embed`).

    Warns
    -----
    UserWarning
        When reading dropped something (the extra pictures of a multi-picture JPEG).

    Examples
    --------
    >>> import provmark
    >>> data = open("generated.png", "rb").read()  # doctest: +SKIP
    >>> marked = provmark.embed_bytes(data, provmark.Payload(4242, 7), format="jpeg",
    ...                               quality=92)  # doctest: +SKIP
    >>> provmark.detect_bytes(marked).payload  # doctest: +SKIP
    Payload(provider=4242, content_id=7, label=1)
    """
    res = encode_embedded(data, payload, key=key, format=format, quality=quality,
                          strength=strength, min_psnr=min_psnr, adapt=adapt)
    _warn(res.notes)
    return res.data


def label_bytes(data: bytes, payload: Payload, *, content_producer: str, produce_id: str,
                key: bytes | str | None = None, format: str | None = None,
                quality: int | None = None, explicit: bool = True, text: str = "AI生成",
                position: str = "bottom-right", strength: float = 1.0,
                min_psnr: float = 40.0, adapt: bool = True, c2pa=None) -> bytes:
    """All three GB 45438 labels on an encoded image, returned as an encoded image.

    :func:`provmark.label` (visible label, then the watermark over the final
    pixels, then the signed metadata label) on the decoded file, encoded as in
    :func:`embed_bytes` with the metadata label written into the XMP packet: an XMP
    packet carried over from the input is updated in place, its other properties
    kept. Equal to :func:`provmark.write_labelled`'s file for the same options.

    Parameters
    ----------
    data : bytes
        The image file (PNG, JPEG or WebP).
    payload : Payload
        What the watermark carries; its label is also the metadata ``Label``.
    content_producer, produce_id : str
        GB 45438 ``ContentProducer`` and ``ProduceID`` (see :func:`provmark.label`).
    key : bytes, str or None, optional
        Watermark key and integrity-code key; None is the public key.
    format, quality : optional
        As in :func:`embed_bytes`.
    explicit, text, position, strength, min_psnr, adapt : optional
        As in :func:`provmark.label`.
    c2pa : provmark.c2pa.C2paSigner, optional
        Also sign a C2PA manifest into the output (see :func:`provmark.label`).

    Returns
    -------
    bytes
        The labelled image file.

    Raises
    ------
    ImageError
        As :func:`embed_bytes`; also an input XMP packet too malformed to update.
    ValueError
        Invalid metadata fields, label text or position.
    EmbedError
        The image cannot carry a mark that reads back.

    Examples
    --------
    >>> import provmark
    >>> out = provmark.label_bytes(open("gen.png", "rb").read(), provmark.Payload(4242, 7),
    ...                            content_producer="ACME", produce_id="img-7")  # doctest: +SKIP
    >>> provmark.inspect(out).verdict  # doctest: +SKIP
    'consistent'
    """
    res = encode_labelled_bytes(
        data, payload, content_producer=content_producer, produce_id=produce_id, key=key,
        format=format, quality=quality, explicit=explicit, text=text, position=position,
        strength=strength, min_psnr=min_psnr, adapt=adapt, c2pa=c2pa)
    _warn(res.notes)
    return res.data


def detect_bytes(data: bytes, *, key: bytes | str | None = None,
                 search: bool | str = True) -> Detection:
    """:func:`provmark.detect` on an encoded image (PNG, JPEG or WebP file bytes).

    Raises
    ------
    ImageError
        The bytes are not a readable image of a supported kind (as
        :func:`embed_bytes`).

    Examples
    --------
    >>> import provmark
    >>> provmark.detect_bytes(open("found-online.jpg", "rb").read()).found  # doctest: +SKIP
    True
    """
    _check_data(data)
    src = read_image_bytes(data)
    return detect(src.rgb, key=key, search=search)

