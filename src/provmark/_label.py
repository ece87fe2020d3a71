"""``provmark.label``: all three GB 45438 layers in one call at generation time.

This module owns the order and the binding of the layers: the explicit (visible)
label is drawn first (:func:`provmark.explicit.draw_label`), the watermark is then
embedded in the labelled pixels (:func:`provmark.embed`) so that it covers the final
image, and the metadata label (:class:`provmark.metadata.AIGCLabel`) is built with
its ``Label`` taken from the payload and its ``ReservedCode1`` set to the HMAC
integrity code that binds the producer fields to the payload and the key
(:func:`provmark.metadata.sign_label`). :func:`encode_labelled` encodes the pixels
with the metadata label into a file's bytes (the one path both
:func:`write_labelled`, which writes them to a file atomically, and
:func:`provmark.label_bytes` use). With ``label(..., c2pa=signer)`` it then signs a
C2PA manifest into those bytes (:func:`provmark.c2pa.sign_manifest`), last, so that
the manifest's hard binding covers the pixels and the XMP label.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import metadata as _metadata
from ._embed import embed
from ._image import ImageError, as_rgb_array
from ._io import PngText, atomic_output, check_output, encode_image
from ._keys import normalize_key
from ._payload import Payload
from .explicit import draw_label


@dataclass(frozen=True, eq=False)
class Labelled:
    """Result of :func:`label`.

    Attributes
    ----------
    image : numpy.ndarray or PIL.Image.Image
        The labelled, watermarked pixels; a PIL image when the input was one.
    label : AIGCLabel
        The metadata label to write with the pixels (:func:`write_labelled`), its
        ``ReservedCode1`` holding the integrity code.
    payload : Payload
        The payload embedded in the pixels.
    explicit_box : tuple of int or None
        ``(x0, y0, x1, y1)`` of the visible label's plate (exclusive ends), or None
        when ``explicit=False``.
    explicit_text_height : int
        Height in pixels of the visible label's rendered ink (0 without one).
    c2pa : provmark.c2pa.C2paSigner or None
        Credentials that sign a C2PA manifest into the file when it is encoded
        (:func:`encode_labelled`, :func:`write_labelled`); None: no manifest.
    """

    image: object
    label: _metadata.AIGCLabel
    payload: Payload
    explicit_box: tuple[int, int, int, int] | None = None
    explicit_text_height: int = 0
    c2pa: object = None


def label(image, payload: Payload, *, content_producer: str, produce_id: str,
          key: bytes | str | None = None, explicit: bool = True, text: str = "AI生成",
          position: str = "bottom-right", strength: float = 1.0,
          min_psnr: float = 40.0, adapt: bool = True, c2pa=None) -> Labelled:
    """Apply the explicit label, the watermark and the metadata label in one call.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray or PIL.Image
        The generated image (at least 256x256). Not modified.
    payload : Payload
        What the watermark carries; its ``label`` (1/2/3) also becomes the metadata
        ``Label``.
    content_producer : str
        GB 45438 ``ContentProducer`` (the service's name or code): printable ASCII
        without space, ``"`` or ``\\``, at most 256 characters. Required.
    produce_id : str
        GB 45438 ``ProduceID`` (this content's ID), same rules. Required.
    key : bytes, str or None, optional
        Watermark key, also the HMAC key of the integrity code. ``None`` is the
        public key: anyone can then read the mark *and recompute the integrity
        code*, so it only detects accidental or careless edits; use a secret key
        for a code that cannot be forged.
    explicit : bool, optional
        Draw the visible label (default True).
    text, position : str, optional
        Visible label text and position (see :func:`provmark.explicit.draw_label`).
    strength, min_psnr, adapt : optional
        Passed to :func:`provmark.embed`.
    c2pa : provmark.c2pa.C2paSigner, optional
        Also sign a C2PA manifest (``c2pa.created`` with ``trainedAlgorithmicMedia``,
        ``c2pa.watermarked``, a soft binding to the payload) into the file when it is
        written (needs ``provmark[c2pa]``; the payload's label must be 1).

    Returns
    -------
    Labelled

    Raises
    ------
    ValueError
        Invalid metadata fields (the message names each), label text or position;
        :class:`provmark.c2pa.C2paError` for a payload label C2PA cannot state.
    provmark.EmbedError
        The image cannot carry a mark that reads back.

    Examples
    --------
    >>> import provmark
    >>> from PIL import Image
    >>> photo = Image.open("generated.png")  # doctest: +SKIP
    >>> out = provmark.label(photo, provmark.Payload(4242, 7), content_producer="ACME",
    ...                      produce_id="img-7")  # doctest: +SKIP
    >>> from provmark._label import write_labelled
    >>> write_labelled("generated-labelled.png", out)  # doctest: +SKIP
    >>> out.label.reserved_code1[:4]  # doctest: +SKIP
    'pm1:'
    """
    if not isinstance(payload, Payload):
        raise TypeError(f"payload must be a provmark.Payload, got {type(payload).__name__}")
    for name, value in (("content_producer", content_producer), ("produce_id", produce_id)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    k = normalize_key(key)
    # Validate the metadata fields before any pixel work (AIGCLabel names bad fields).
    unsigned = _metadata.AIGCLabel(str(payload.label), content_producer, produce_id)
    if c2pa is not None:
        from . import c2pa as _c2pa

        if not isinstance(c2pa, _c2pa.C2paSigner):
            raise TypeError(f"c2pa must be a provmark.c2pa.C2paSigner, got {type(c2pa).__name__}")
        _c2pa.check_signing(payload)  # before the pixel work: extra installed, label 1
    rgb, was_pil = as_rgb_array(image)
    box = None
    text_h = 0
    if explicit:
        drawn = draw_label(rgb, text=text, position=position)
        rgb, box, text_h = drawn.image, drawn.box, drawn.text_height_px
    marked = embed(rgb, payload, key=k, strength=strength, min_psnr=min_psnr, adapt=adapt)
    signed = _metadata.sign_label(unsigned, payload.to_bytes(), k)
    if was_pil:
        from PIL import Image
        marked = Image.fromarray(np.ascontiguousarray(marked), "RGB")
    return Labelled(image=marked, label=signed, payload=payload, explicit_box=box,
                    explicit_text_height=int(text_h), c2pa=c2pa)


def encode_labelled(labelled: Labelled, fmt: str, *, quality: int = 95,
                    exif: bytes | None = None, icc_profile: bytes | None = None,
                    xmp: bytes | None = None, png_text: tuple[PngText, ...] = (),
                    lossless: bool = False) -> bytes:
    """A :class:`Labelled` image encoded as ``fmt`` ("PNG", "JPEG" or "WEBP") with
    its metadata label, as the file's bytes.

    The pixels are encoded by :func:`provmark._io.encode_image` (with the EXIF,
    ICC profile, XMP and PNG text given), then the label is written into the XMP
    (:func:`provmark.metadata.write_label`): an XMP packet carried over from the
    input is updated in place, its other properties kept. With ``labelled.c2pa``, a
    C2PA manifest is signed into the result last (its hard binding hashes every
    other byte, so nothing may change after it).

    Raises
    ------
    ImageError
        The metadata does not fit the format, or the carried-over XMP packet is
        malformed and cannot be updated safely.
    provmark.c2pa.C2paError
        The C2PA manifest could not be signed (c2pa-python's message included).
    """
    rgb, _ = as_rgb_array(labelled.image)
    encoded = encode_image(rgb, fmt, quality=quality, exif=exif, icc_profile=icc_profile,
                           xmp=xmp, png_text=png_text, lossless=lossless)
    try:
        data = _metadata.write_label(encoded, labelled.label)
    except ValueError as exc:
        raise ImageError(
            f"cannot add the metadata label to the input's XMP ({exc}); remove the input's XMP "
            "first (e.g. exiftool -xmp:all= in.jpg)") from None
    if labelled.c2pa is not None:
        from .c2pa import sign_manifest

        data = sign_manifest(data, labelled.c2pa, payload=labelled.payload, label=labelled.label)
    return data


def write_labelled(path: str | os.PathLike, labelled: Labelled, *, quality: int = 95,
                   exif: bytes | None = None, icc_profile: bytes | None = None,
                   xmp: bytes | None = None, png_text: tuple[PngText, ...] = (),
                   lossless: bool = False, source: str | os.PathLike | None = None,
                   overwrite: bool = False) -> Path:
    """Write a :class:`Labelled` image with its metadata label to ``path`` atomically.

    The bytes are those of :func:`encode_labelled` (format from the extension: .png,
    .jpg/.jpeg, .webp), written to a temporary file next to ``path`` and moved into
    place atomically: a reader never sees a file without its label, and without
    ``overwrite`` a file another process creates meanwhile is never replaced. EXIF,
    the ICC profile, other XMP and PNG text, when given, are carried into the
    output. Refuses to write over ``source`` (the input) and, unless ``overwrite``,
    over an existing file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    p = Path(path)
    fmt = check_output(p, source=source, overwrite=overwrite)
    data = encode_labelled(labelled, fmt, quality=quality, exif=exif, icc_profile=icc_profile,
                           xmp=xmp, png_text=png_text, lossless=lossless)
    # Linked into place without overwrite: of several processes writing the same
    # path, exactly one succeeds (never check-then-rename).
    with atomic_output(p, overwrite=overwrite) as fh:
        fh.write(data)
    return p
