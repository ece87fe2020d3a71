"""The bytes API: embed_bytes, label_bytes, detect_bytes (encoded file in, encoded file out)."""

from __future__ import annotations

import functools
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms, PngImagePlugin

import provmark
from provmark import metadata
from provmark._bytes import DEFAULT_QUALITY, output_format
from provmark._io import encode_image, read_image_bytes

PAYLOAD = provmark.Payload(provider=4242, content_id=1234567, label=1)
#: A foreign XMP packet: a Dublin Core property another tool wrote.
FOREIGN_XMP = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
    b' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
    b'  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"'
    b' xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="acme-diffusion 3.1">\n'
    b'   <dc:rights><rdf:Alt><rdf:li xml:lang="x-default">(c) ACME</rdf:li></rdf:Alt></dc:rights>\n'
    b'  </rdf:Description>\n'
    b' </rdf:RDF>\n'
    b'</x:xmpmeta>\n'
    b'<?xpacket end="w"?>')


def _exif() -> bytes:
    ex = Image.Exif()
    ex[0x010F] = "ACME Camera"  # Make
    ex[0x0131] = "acme-diffusion 3.1"  # Software
    return ex.tobytes()


@functools.lru_cache(maxsize=None)
def _icc() -> bytes:  # cached: the profile holds its creation time
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _encode(rgb: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo(photo_factory) -> np.ndarray:
    return photo_factory("astronaut", 320, 288)


@pytest.fixture(scope="module")
def files(photo) -> dict[str, bytes]:
    """The photo as PNG, JPEG and WebP, each with EXIF, an ICC profile and foreign XMP."""
    exif, icc = _exif(), _icc()
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", FOREIGN_XMP)
    info.add_text("parameters", "a photo of an astronaut, steps 30")
    return {
        "PNG": _encode(photo, "PNG", exif=exif, icc_profile=icc, pnginfo=info),
        "JPEG": _encode(photo, "JPEG", quality=95, exif=exif, icc_profile=icc, xmp=FOREIGN_XMP),
        "WEBP": _encode(photo, "WEBP", quality=95, exif=exif, icc_profile=icc, xmp=FOREIGN_XMP),
    }


def _opened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


# --------------------------------------------------------------------------- #
# Round trips and options


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_round_trip_keeps_format(files, fmt):
    out = provmark.embed_bytes(files[fmt], PAYLOAD)
    assert _opened(out).format == fmt
    det = provmark.detect_bytes(out)
    assert det.found and det.payload == PAYLOAD


@pytest.mark.parametrize("fmt, name", [("PNG", "JPG"), ("JPEG", ".webp"), ("WEBP", "png"),
                                       ("PNG", "jpeg")])
def test_format_option(files, fmt, name):
    out = provmark.embed_bytes(files[fmt], PAYLOAD, format=name)
    assert _opened(out).format == output_format(name, fmt)
    assert provmark.detect_bytes(out).payload == PAYLOAD


def test_unmarked_bytes_report_no_mark(files):
    det = provmark.detect_bytes(files["PNG"])
    assert not det.found and det.payload is None


def test_quality_option(files):
    low = provmark.embed_bytes(files["JPEG"], PAYLOAD, quality=60)
    default = provmark.embed_bytes(files["JPEG"], PAYLOAD)
    assert default == provmark.embed_bytes(files["JPEG"], PAYLOAD, quality=DEFAULT_QUALITY)
    assert len(low) < len(default)
    assert provmark.detect_bytes(low).payload == PAYLOAD


def test_lossless_webp_stays_lossless(photo):
    src = _encode(photo, "WEBP", lossless=True)
    out = provmark.embed_bytes(src, PAYLOAD)
    marked = provmark.embed(photo, PAYLOAD)
    np.testing.assert_array_equal(np.asarray(_opened(out).convert("RGB")), marked)
    # an explicit quality is obeyed: lossy, so the pixels differ
    lossy = provmark.embed_bytes(src, PAYLOAD, quality=90)
    assert not np.array_equal(np.asarray(_opened(lossy).convert("RGB")), marked)


def test_png_is_lossless_and_quality_100_webp_lossless(photo):
    marked = provmark.embed(photo, PAYLOAD)
    png = provmark.embed_bytes(_encode(photo, "PNG"), PAYLOAD)
    np.testing.assert_array_equal(np.asarray(_opened(png)), marked)
    webp = provmark.embed_bytes(_encode(photo, "PNG"), PAYLOAD, format="webp", quality=100)
    np.testing.assert_array_equal(np.asarray(_opened(webp).convert("RGB")), marked)


# --------------------------------------------------------------------------- #
# Metadata


@pytest.mark.parametrize("src_fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("out_fmt", ["png", "jpeg", "webp"])
def test_exif_icc_and_xmp_kept(files, src_fmt, out_fmt):
    out = _opened(provmark.embed_bytes(files[src_fmt], PAYLOAD, format=out_fmt))
    exif = out.getexif()
    assert exif[0x010F] == "ACME Camera" and exif[0x0131] == "acme-diffusion 3.1"
    assert out.info["icc_profile"] == _icc()
    assert out.info["xmp"] == FOREIGN_XMP


def test_png_text_chunks_kept(files):
    out = _opened(provmark.embed_bytes(files["PNG"], PAYLOAD))
    assert out.text["parameters"] == "a photo of an astronaut, steps 30"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_label_bytes_adds_label_to_foreign_xmp(files, fmt):
    out = provmark.label_bytes(files[fmt], PAYLOAD, content_producer="ACME-0001",
                               produce_id="img-1234567")
    reading = metadata.read_label(out)
    assert reading.found and reading.label.produce_id == "img-1234567"
    xmp = _opened(out).info["xmp"]
    assert b"acme-diffusion 3.1" in xmp and b"(c) ACME" in xmp  # the other properties
    rep = provmark.inspect(out)
    assert rep.verdict == "consistent"
    assert _opened(out).getexif()[0x010F] == "ACME Camera"


# --------------------------------------------------------------------------- #
# One encoding path


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_embed_bytes_equals_embed_then_encode_image(files, fmt):
    src = read_image_bytes(files[fmt])
    expected = encode_image(provmark.embed(src.rgb, PAYLOAD), fmt, quality=DEFAULT_QUALITY,
                            **src.metadata)
    assert provmark.embed_bytes(files[fmt], PAYLOAD) == expected


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_label_bytes_equals_write_labelled(files, tmp_path, ext):
    src = read_image_bytes(files["JPEG"])
    res = provmark.label(src.rgb, PAYLOAD, content_producer="ACME", produce_id="id-9")
    path = provmark.write_labelled(tmp_path / f"out{ext}", res, quality=DEFAULT_QUALITY,
                                   **src.metadata)
    got = provmark.label_bytes(files["JPEG"], PAYLOAD, content_producer="ACME",
                               produce_id="id-9", format=ext)
    assert got == path.read_bytes()


def test_mpo_warns_and_writes_a_plain_jpeg(photo):
    buf = io.BytesIO()
    first, second = Image.fromarray(photo), Image.fromarray(photo[::-1].copy())
    first.save(buf, format="MPO", save_all=True, append_images=[second])
    with pytest.warns(UserWarning, match="multi-picture JPEG"):
        out = provmark.embed_bytes(buf.getvalue(), PAYLOAD)
    assert _opened(out).format == "JPEG"
    assert provmark.detect_bytes(out).payload == PAYLOAD


# --------------------------------------------------------------------------- #
# Bad input


def _png_16bit() -> bytes:
    raw = b"".join(b"\x00" + b"\x12\x34" * 3 * 300 for _ in range(300))
    ihdr = struct.pack(">IIBBBBB", 300, 300, 16, 2, 0, 0, 0)

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("make, match", [
    (lambda f: b"", "empty"),
    (lambda f: b"hello, not an image" * 10, "not a recognised image"),
    (lambda f: f["PNG"][: len(f["PNG"]) // 2], "corrupt or truncated"),
    (lambda f: f["JPEG"][:600], "corrupt or truncated"),
    (lambda f: f["WEBP"][: len(f["WEBP"]) // 2], "corrupt or truncated"),
    (lambda f: _png_16bit(), "16-bit PNG"),
    (lambda f: _encode(np.zeros((300, 300, 3), np.uint8), "GIF"), "GIF files are not supported"),
    (lambda f: _encode(np.zeros((300, 300, 3), np.uint8), "BMP"), "BMP files are not supported"),
    (lambda f: _encode(np.zeros((300, 300, 4), np.uint8), "PNG"), "transparent"),
    (lambda f: _encode(np.zeros((100, 100, 3), np.uint8), "PNG"), "smallest"),
])
def test_bad_input_is_an_image_error(files, make, match):
    data = make(files)
    with pytest.raises(provmark.ImageError, match=match):
        provmark.embed_bytes(data, PAYLOAD)
    if match != "smallest":  # detection reads small images (and says "not found")
        with pytest.raises(provmark.ImageError, match=match):
            provmark.detect_bytes(data)


def test_bad_options(files):
    with pytest.raises(provmark.ImageError, match="format='tiff'"):
        provmark.embed_bytes(files["PNG"], PAYLOAD, format="tiff")
    with pytest.raises(provmark.ImageError, match="quality=0"):
        provmark.embed_bytes(files["PNG"], PAYLOAD, quality=0)
    with pytest.raises(TypeError, match="bytes"):
        provmark.embed_bytes("generated.png", PAYLOAD)
    with pytest.raises(TypeError, match="Payload"):
        provmark.embed_bytes(files["PNG"], (4242, 1))
    with pytest.raises(ValueError, match="ContentProducer"):
        provmark.label_bytes(files["PNG"], PAYLOAD, content_producer="has space",
                             produce_id="x")


def test_xmp_too_large_for_jpeg_is_a_clear_error(photo):
    big = FOREIGN_XMP.replace(b"(c) ACME", b"x" * 70_000)
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", big)
    src = _encode(photo, "PNG", pnginfo=info)
    with pytest.raises(provmark.ImageError, match="cannot encode as JPEG.*PNG or WebP"):
        provmark.embed_bytes(src, PAYLOAD, format="jpeg")
    assert _opened(provmark.embed_bytes(src, PAYLOAD)).info["xmp"] == big
