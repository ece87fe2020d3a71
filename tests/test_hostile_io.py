"""Tests for provmark._io and provmark._image against hostile or lossy files: headers
that claim billions of pixels, formats provmark does not read, 16-bit and animated
images, and outputs that other processes create or that the file system refuses.

Every test here failed before the fix it guards (issue: hostile input, races and
honest output)."""

from __future__ import annotations

import errno
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from provmark import ImageError
from provmark._image import MAX_PIXELS, as_rgb_array
from provmark._io import atomic_output, read_image, write_image

# The helpers this issue added are imported where used, so that each test fails on
# its own (not the whole module) against the code before the fix.


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_header_only(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    """A valid PNG signature and IHDR with an empty image stream: tens of bytes that
    claim ``width`` x ``height`` pixels (a decompression bomb's header)."""
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"")) + _chunk(b"IEND", b""))


def jpeg_claiming(tmp_path: Path, width: int, height: int) -> Path:
    """A small JPEG whose SOF0 header is patched to claim ``width`` x ``height``."""
    path = tmp_path / f"claims-{width}x{height}.jpg"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, quality=90)
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- #
# Decoding is bounded before it starts


def test_png_bomb_is_refused_from_its_header(tmp_path):
    from provmark._io import probe_image
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(30000, 30000))
    assert path.stat().st_size < 70
    with pytest.raises(ImageError) as exc:
        read_image(path)
    msg = str(exc.value)
    assert "bomb.png" in msg and "30000x30000" in msg
    assert f"{MAX_PIXELS:,}" in msg  # names the limit ...
    assert "--max-pixels" in msg and "PROVMARK_MAX_PIXELS" in msg  # ... and how to raise it
    with pytest.raises(ImageError, match="30000x30000"):
        probe_image(path)


@pytest.mark.parametrize("size, word", [((65000, 65000), "4,225,000,000 pixels"),
                                        ((12000, 12000), "12000x12000")],
                         ids=["beyond Pillow's error limit", "beyond the limit only"])
def test_jpeg_bomb_is_refused_before_decoding(tmp_path, size, word):
    # Pillow refuses the first itself (DecompressionBombError, formerly a traceback)
    # and only warns about the second (an error under filterwarnings=error).
    path = jpeg_claiming(tmp_path, *size)
    with pytest.raises(ImageError) as exc:
        read_image(path)
    msg = str(exc.value)
    assert word in msg and "--max-pixels" in msg and path.name in msg


def test_no_pillow_warning_for_an_image_provmark_accepts(tmp_path):
    from provmark._image import max_pixels
    from provmark._io import probe_image
    # 95 MP is under provmark's 100 MP limit but over Pillow's default 89.5 MP
    # warning threshold: Pillow's DecompressionBombWarning (an error here) must not
    # fire. Only the header is read.
    path = tmp_path / "big.png"
    path.write_bytes(png_header_only(10000, 9500))
    assert probe_image(path) == ("PNG", 10000, 9500)
    assert Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS >= max_pixels()


def test_pillow_limit_follows_provmark_limit(tmp_path, rgb, monkeypatch):
    from provmark._image import pixel_limit
    # The same consistency at a small scale with a decoded image: Pillow's limit
    # below provmark's, an image between the two.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = tmp_path / "a.png"
    Image.fromarray(rgb).save(path)  # 3072 pixels
    with pixel_limit(4000):
        assert np.array_equal(read_image(path).rgb, rgb)
    assert Image.MAX_IMAGE_PIXELS == 4000
    with pixel_limit(3000), pytest.raises(ImageError, match="3,000 pixels"):
        read_image(path)


def test_pixel_limit_from_the_environment(tmp_path, rgb, monkeypatch):
    from provmark._image import max_pixels, pixel_limit
    path = tmp_path / "a.png"
    Image.fromarray(rgb).save(path)
    monkeypatch.setenv("PROVMARK_MAX_PIXELS", "3000")
    assert max_pixels() == 3000
    with pytest.raises(ImageError, match="PROVMARK_MAX_PIXELS"):
        read_image(path)
    with pytest.raises(ImageError, match="PROVMARK_MAX_PIXELS"):
        as_rgb_array(rgb)
    with pixel_limit(5000):  # the command line's --max-pixels wins
        read_image(path)
    monkeypatch.setenv("PROVMARK_MAX_PIXELS", "2e8")
    assert max_pixels() == 200_000_000
    monkeypatch.setenv("PROVMARK_MAX_PIXELS", "lots")
    with pytest.raises(ImageError, match="PROVMARK_MAX_PIXELS"):
        max_pixels()


def test_pil_image_above_the_limit_is_refused_before_conversion(monkeypatch):
    from provmark._image import pixel_limit
    im = Image.new("P", (200, 100))
    called = []
    monkeypatch.setattr(Image.Image, "convert", lambda *a, **k: called.append(1))
    with pixel_limit(10_000), pytest.raises(ImageError, match="200x100"):
        as_rgb_array(im)
    assert called == []


def test_pixel_limit_restores():
    from provmark import _image
    from provmark._image import max_pixels, pixel_limit
    before = _image._limit_override
    with pixel_limit(123):
        assert max_pixels() == 123
    assert _image._limit_override == before


# --------------------------------------------------------------------------- #
# Formats: one list, the rest refused by name


def _save(tmp_path: Path, rgb, name: str, **kw) -> Path:
    path = tmp_path / name
    Image.fromarray(rgb).save(path, **kw)
    return path


@pytest.mark.parametrize("name, fmt, kw", [
    ("a.bmp", "BMP", {}), ("a.tiff", "TIFF", {}), ("a.gif", "GIF", {}),
    ("a.avif", "AVIF", {"quality": 90}),
])
def test_other_formats_are_refused_by_name(tmp_path, rgb, name, fmt, kw):
    path = _save(tmp_path, rgb, name, **kw)
    with pytest.raises(ImageError) as exc:
        read_image(path)
    msg = str(exc.value)
    assert name in msg and f"{fmt} files are not supported" in msg
    assert "PNG, JPEG and WebP" in msg and "convert" in msg


def test_the_accepted_formats_are_one_list():
    from provmark._io import INPUT_FORMATS
    assert set(INPUT_FORMATS) == {"PNG", "JPEG", "WEBP"}


# --------------------------------------------------------------------------- #
# Lossy inputs are refused, or converted with a note that says what was lost


@pytest.mark.parametrize("channels, kind", [(3, "RGB"), (4, "RGBA"), (1, "grey")])
def test_16_bit_png_is_refused(tmp_path, rgb, channels, kind):
    # 16-bit RGB used to be cut to 8 bits silently (16-bit grey was refused).
    deep = rgb.astype(np.uint16) * 257 + 3
    deep = deep[..., 0] if channels == 1 else deep
    if channels == 4:
        deep = np.dstack([deep, np.full(deep.shape[:2], 65535, np.uint16)])
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), deep)
    with pytest.raises(ImageError) as exc:
        read_image(path)
    msg = str(exc.value)
    assert "deep.png" in msg and "16-bit" in msg and kind in msg and "8 bits" in msg


@pytest.mark.parametrize("ext", [".png", ".webp"])
def test_animated_images_are_refused(tmp_path, rgb, ext):
    frames = [Image.fromarray(np.roll(rgb, 5 * i, axis=1)) for i in range(3)]
    path = tmp_path / f"anim{ext}"
    frames[0].save(path, save_all=True, append_images=frames[1:], lossless=True)
    with pytest.raises(ImageError) as exc:
        read_image(path)
    msg = str(exc.value)
    assert "anim" in msg and "animated" in msg and "3 frames" in msg


def test_single_frame_apng_is_read(tmp_path, rgb):
    path = tmp_path / "one.png"
    Image.fromarray(rgb).save(path, save_all=True, append_images=[])
    assert np.array_equal(read_image(path).rgb, rgb)


def test_multi_picture_jpeg_reads_the_primary_with_a_note(tmp_path, rgb):
    path = tmp_path / "camera.jpg"
    Image.fromarray(rgb).save(path, format="MPO", save_all=True,
                              append_images=[Image.fromarray(rgb[::-1])], quality=95)
    img = read_image(path)
    assert img.format == "JPEG" and img.rgb.shape == rgb.shape
    assert len(img.notes) == 1 and "MPO" in img.notes[0] and "camera.jpg" in img.notes[0]
    plain = read_image(_save(tmp_path, rgb, "plain.jpg", quality=95))
    assert plain.notes == ()


# --------------------------------------------------------------------------- #
# Output: atomic with respect to other processes


def test_a_file_created_during_the_write_is_not_replaced(tmp_path, rgb, monkeypatch):
    # Another process creates the output after the existence check, while this one
    # encodes: the old check-then-rename replaced its file.
    out = tmp_path / "race.png"
    real_save = Image.Image.save

    def save_and_lose_the_race(self, fp, *args, **kwargs):
        out.write_bytes(b"the other process's image")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_and_lose_the_race)
    with pytest.raises(ImageError, match="already exists"):
        write_image(out, rgb)
    assert out.read_bytes() == b"the other process's image"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race.png"]  # no temp file left


def test_labelled_output_is_not_replaced_either(tmp_path, monkeypatch, photo_factory):
    import provmark
    from provmark import _label
    from provmark._label import write_labelled

    res = provmark.label(photo_factory("astronaut", 512, 512), provmark.Payload(1, 2),
                         content_producer="ACME", produce_id="x-1", explicit=False)
    out = tmp_path / "l.png"
    real = _label._metadata.write_label

    def write_label_and_lose_the_race(*args, **kwargs):
        out.write_bytes(b"first")
        return real(*args, **kwargs)

    monkeypatch.setattr(_label._metadata, "write_label", write_label_and_lose_the_race)
    with pytest.raises(ImageError, match="already exists"):
        write_labelled(out, res)
    assert out.read_bytes() == b"first"
    write_labelled(out, res, overwrite=True)
    assert out.read_bytes() != b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.png"]


def test_overwrite_replaces_a_file_created_meanwhile(tmp_path, rgb):
    out = tmp_path / "o.png"
    with atomic_output(out, overwrite=True) as fh:
        out.write_bytes(b"x")
        fh.write(b"new")
    assert out.read_bytes() == b"new"


def test_without_hard_links_the_write_is_still_exclusive(tmp_path, rgb, monkeypatch):
    def no_links(src, dst, *a, **k):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    out = write_image(tmp_path / "a.png", rgb)
    assert np.array_equal(read_image(out).rgb, rgb)
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_without_hard_links_a_file_created_meanwhile_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "link", lambda *a, **k: (_ for _ in ()).throw(
        OSError(errno.EOPNOTSUPP, "Operation not supported")))
    out = tmp_path / "b.bin"
    with pytest.raises(ImageError, match="already exists"):
        with atomic_output(out, overwrite=False) as fh:
            out.write_bytes(b"other")
            fh.write(b"mine")
    assert out.read_bytes() == b"other"
    assert [p.name for p in tmp_path.iterdir()] == ["b.bin"]


@pytest.mark.parametrize("where, code", [("mkstemp", errno.EROFS), ("fsync", errno.ENOSPC),
                                         ("link", errno.EPERM)])
def test_file_system_errors_name_the_output(tmp_path, rgb, monkeypatch, where, code):
    import tempfile

    def fail(*a, **k):
        raise OSError(code, os.strerror(code))

    if where == "mkstemp":
        monkeypatch.setattr(tempfile, "mkstemp", fail)
    elif where == "fsync":
        monkeypatch.setattr(os, "fsync", fail)
    else:  # an immutable directory refuses the link (EPERM) and the O_EXCL fallback
        monkeypatch.setattr(os, "link", fail)
        real_open = os.open
        monkeypatch.setattr(os, "open", lambda p, flags, *a: fail() if flags & os.O_EXCL
                            else real_open(p, flags, *a))
    out = tmp_path / "out.png"
    with pytest.raises(OSError) as exc:
        write_image(out, rgb)
    assert exc.value.errno == code and exc.value.filename == str(out)
    assert list(tmp_path.iterdir()) == []


def test_header_checks_work_on_bytes_too():
    # For readers of in-memory files (provmark.inspect takes bytes).
    from provmark._io import open_image, probe_image

    with pytest.raises(ImageError, match=r"<bytes>: its header says 30000x30000"):
        probe_image(png_header_only(30000, 30000))
    with pytest.raises(ImageError, match=r"^upload-7: 16-bit PNG"):
        with open_image(png_header_only(300, 300, depth=16), what="upload-7"):
            pass
    assert probe_image(png_header_only(10000, 9500)) == ("PNG", 10000, 9500)


def test_inspect_api_refuses_a_bomb_from_its_header(tmp_path):
    """provmark.inspect (the API, not only the CLI) checks the header before decoding:
    a 69-byte PNG claiming 30000x30000 is an ImageError naming the limit, as a path
    and as bytes."""
    import provmark

    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(30000, 30000))
    for source in (path, path.read_bytes()):
        with pytest.raises(ImageError, match="30000x30000"):
            provmark.inspect(source)


def test_html_report_is_written_exclusively_without_overwrite(tmp_path, rgb):
    """write_html_report(overwrite=False) cannot replace a file that appears after its
    existence check: the final step is exclusive, not check-then-rename."""
    import provmark
    from provmark import _io
    from provmark._report_html import write_html_report

    src = tmp_path / "in.png"
    Image.fromarray(np.ascontiguousarray(np.tile(rgb, (6, 5, 1)))).save(src)
    report = provmark.inspect(src, tamper=False, search=False)
    out = tmp_path / "report.html"
    real = _io.atomic_output

    def racing(path, *args, **kwargs):  # another process writes the file in between
        out.write_text("the other process's report")
        return real(path, *args, **kwargs)

    _io.atomic_output = racing
    try:
        with pytest.raises(ImageError, match="exists"):
            write_html_report(report, None, out, overwrite=False)
    finally:
        _io.atomic_output = real
    assert out.read_text() == "the other process's report"
