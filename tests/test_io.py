"""Tests for provmark._io: reading with clear errors, atomic writing that never loses
the input, and carrying EXIF and ICC over."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from provmark import ImageError
from provmark._io import FORMATS, LoadedImage, read_image, write_image

EXTS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
SAVE_KW = {"png": {}, "jpeg": {"quality": 95}, "webp": {"quality": 95}}


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def smooth(photo_factory) -> np.ndarray:
    return photo_factory("coffee", 96, 64)


@pytest.fixture(scope="module")
def icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture(scope="module")
def exif() -> bytes:
    ex = Image.Exif()
    ex[0x010F] = "ProvmarkTestMake"  # Make
    ex[0x0110] = "ModelX"  # Model
    return ex.tobytes()


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp")
                  or p.name.startswith("."))


def _psnr(a, b):
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


# --------------------------------------------------------------------------- #
# Reading


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_read_formats(tmp_path, smooth, fmt):
    path = tmp_path / f"a{EXTS[fmt]}"
    Image.fromarray(smooth).save(path, **SAVE_KW[fmt])
    img = read_image(path)
    assert isinstance(img, LoadedImage)
    assert img.format == fmt.upper()
    assert img.rgb.dtype == np.uint8 and img.rgb.shape == smooth.shape
    assert img.rgb.flags.c_contiguous
    assert img.exif is None and img.icc_profile is None
    assert _psnr(img.rgb, smooth) > 30


def test_read_accepts_str_path(tmp_path, rgb):
    path = tmp_path / "a.png"
    Image.fromarray(rgb).save(path)
    assert np.array_equal(read_image(str(path)).rgb, rgb)


@pytest.mark.parametrize("mode", ["L", "P", "LA", "RGBA"])
def test_read_converts_8bit_modes(tmp_path, rgb, mode):
    im = Image.fromarray(rgb).convert(mode)
    path = tmp_path / "m.png"
    im.save(path)
    out = read_image(path).rgb
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.array_equal(out, np.asarray(im.convert("RGB")))


def test_read_keeps_stored_pixel_grid(tmp_path, rgb):
    # EXIF orientation is not applied: the mark lives in the stored grid.
    ex = Image.Exif()
    ex[0x0112] = 6  # rotate 90 CW on display
    path = tmp_path / "o.jpg"
    Image.fromarray(rgb).save(path, exif=ex.tobytes(), quality=95)
    assert read_image(path).rgb.shape == rgb.shape


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file") as exc:
        read_image(tmp_path / "missing.png")
    assert "missing.png" in str(exc.value)


def test_directory(tmp_path):
    with pytest.raises(ImageError, match="directory"):
        read_image(tmp_path)


@pytest.mark.parametrize("content", [b"hello world, not an image" * 10, b"", b"\x89PNG\r\n"])
def test_non_image_file(tmp_path, content):
    path = tmp_path / "fake.png"
    path.write_bytes(content)
    with pytest.raises(ImageError) as exc:
        read_image(path)
    msg = str(exc.value)
    assert "fake.png" in msg
    assert "not a recognised image" in msg or "corrupt" in msg


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.95])
def test_truncated_jpeg(tmp_path, fraction):
    full = tmp_path / "full.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 300, 3), np.uint8)).save(
        full, quality=90)
    data = full.read_bytes()
    path = tmp_path / "trunc.jpg"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ImageError) as exc:
        read_image(path)
    msg = str(exc.value)
    assert "trunc.jpg" in msg
    assert "truncated" in msg or "corrupt" in msg
    assert "re-export" in msg or "intact" in msg  # says what to do


def test_truncated_png(tmp_path, rgb):
    full = tmp_path / "full.png"
    Image.fromarray(rgb).save(full)
    path = tmp_path / "trunc.png"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ImageError, match="truncated|corrupt"):
        read_image(path)


def _sixteen_bit(path: Path, rgb) -> None:
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(path)


def _transparent(path: Path, rgb) -> None:
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:8] = 0
    Image.fromarray(np.dstack([rgb, alpha])).save(path)


@pytest.mark.parametrize("maker, word", [(_sixteen_bit, "8"), (_transparent, "transparent")],
                         ids=["16-bit", "transparent"])
def test_refused_file_content_error_names_the_file(tmp_path, rgb, maker, word):
    # read_image's docstring: "the message names the file and the fix".
    path = tmp_path / "refused-input.png"
    maker(path, rgb)
    with pytest.raises(ImageError, match=word) as exc:
        read_image(path)
    assert "refused-input.png" in str(exc.value)


# --------------------------------------------------------------------------- #
# Writing


@pytest.mark.parametrize("ext", [".png", ".PNG", ".webp"])
def test_lossless_round_trip(tmp_path, rgb, ext):
    path = write_image(tmp_path / f"out{ext}", rgb, quality=100)
    assert isinstance(path, Path) and path.exists()
    assert np.array_equal(read_image(path).rgb, rgb)


@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".JPG", ".webp"])
def test_lossy_round_trip(tmp_path, smooth, ext):
    path = write_image(tmp_path / f"out{ext}", smooth, quality=90)
    back = read_image(path)
    assert back.format == FORMATS[ext.lower()]
    assert _psnr(back.rgb, smooth) > 30


def test_quality_changes_jpeg_size(tmp_path, smooth):
    small = write_image(tmp_path / "q20.jpg", smooth, quality=20).stat().st_size
    large = write_image(tmp_path / "q95.jpg", smooth, quality=95).stat().st_size
    assert small < large


@pytest.mark.parametrize("quality", [0, 101, -5])
def test_bad_quality(tmp_path, rgb, quality):
    with pytest.raises(ImageError, match="quality"):
        write_image(tmp_path / "q.jpg", rgb, quality=quality)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.bmp", "out.gif", "out.tiff", "out", "out.png.txt"])
def test_unknown_extension(tmp_path, rgb, name):
    with pytest.raises(ImageError, match="extension") as exc:
        write_image(tmp_path / name, rgb)
    assert ".png" in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_missing_output_directory(tmp_path, rgb):
    with pytest.raises(ImageError, match="does not exist"):
        write_image(tmp_path / "nope" / "out.png", rgb)


def test_refuses_existing_file_unless_overwrite(tmp_path, rgb):
    path = tmp_path / "out.png"
    path.write_bytes(b"precious")
    with pytest.raises(ImageError, match="already exists") as exc:
        write_image(path, rgb)
    assert "--force" in str(exc.value) or "overwrite" in str(exc.value)
    assert path.read_bytes() == b"precious"
    write_image(path, rgb, overwrite=True)
    assert np.array_equal(read_image(path).rgb, rgb)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("how", ["same path", "relative path", "symlink", "hard link"])
def test_refuses_to_overwrite_the_source(tmp_path, rgb, monkeypatch, how):
    src = tmp_path / "in.png"
    Image.fromarray(rgb).save(src)
    before = src.read_bytes()
    if how == "same path":
        out = src
    elif how == "relative path":
        monkeypatch.chdir(tmp_path)
        out = Path("in.png")
    elif how == "symlink":
        out = tmp_path / "link.png"
        out.symlink_to(src)
    else:
        out = tmp_path / "hard.png"
        os.link(src, out)
    for overwrite in (False, True):
        with pytest.raises(ImageError, match="input"):
            write_image(out, np.zeros_like(rgb), source=src, overwrite=overwrite)
    assert src.read_bytes() == before


def test_no_temp_files_after_success(tmp_path, rgb):
    for ext in (".png", ".jpg", ".webp"):
        write_image(tmp_path / f"ok{ext}", rgb)
    assert _leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.jpg", "ok.png", "ok.webp"]


@pytest.mark.parametrize("exc_type", [OSError, KeyboardInterrupt])
def test_no_temp_files_or_partial_output_after_failure(tmp_path, rgb, monkeypatch, exc_type):
    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"partial data")
        raise exc_type("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(exc_type):
        write_image(tmp_path / "new.png", rgb)
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_old_file(tmp_path, rgb, monkeypatch):
    path = tmp_path / "out.png"
    path.write_bytes(b"old contents")

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError):
        write_image(path, rgb, overwrite=True)
    assert path.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_written_file_permissions_follow_umask(tmp_path, rgb):
    # An atomic write must not change what a plain write would give: tempfile.mkstemp
    # creates 0600 files, and os.replace keeps that mode, so outputs would be
    # unreadable by anyone else (a web server, a colleague) unless fixed up.
    ref = tmp_path / "plain.bin"
    ref.write_bytes(b"")
    out = write_image(tmp_path / "out.png", rgb)
    assert oct(out.stat().st_mode & 0o777) == oct(ref.stat().st_mode & 0o777)


# --------------------------------------------------------------------------- #
# Metadata carried over


@pytest.mark.parametrize("dst", ["png", "jpeg", "webp"])
@pytest.mark.parametrize("src", ["png", "jpeg", "webp"])
def test_exif_and_icc_carried_over(tmp_path, smooth, exif, icc, src, dst):
    src_path = tmp_path / f"in{EXTS[src]}"
    Image.fromarray(smooth).save(src_path, exif=exif, icc_profile=icc, **SAVE_KW[src])
    loaded = read_image(src_path)
    assert loaded.icc_profile == icc
    assert loaded.exif is not None
    out = write_image(tmp_path / f"out{EXTS[dst]}", loaded.rgb, exif=loaded.exif,
                      icc_profile=loaded.icc_profile, source=src_path)
    with Image.open(out) as im:
        assert im.info.get("icc_profile") == icc
        tags = im.getexif()
        assert tags.get(0x010F) == "ProvmarkTestMake", f"EXIF lost going {src} -> {dst}"
        assert tags.get(0x0110) == "ModelX"
    again = read_image(out)
    assert again.icc_profile == icc and again.exif is not None
