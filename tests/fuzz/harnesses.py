"""The fuzzing harnesses: one ``check(data)`` per reader of untrusted bytes.

Each harness feeds arbitrary bytes to one reader and raises only on a bug: an
exception the reader does not document (anything but the one error type it
promises), a broken invariant (a label written and not read back, a reading that
is not bounded), or an answer that contradicts another reader. Expected refusals
are swallowed. The same functions run under atheris in ``make fuzz``
(``tests/fuzz/run.py``) and under hypothesis in ``tests/test_fuzz_short.py``.

=============  ==============================================================
harness        reader
=============  ==============================================================
``image``      :func:`provmark._io.read_image` (decoding with limits)
``containers`` :func:`provmark.metadata.read_label`: the PNG, JPEG and WebP
               walkers, the XMP reader and the label JSON parser
``writer``     :func:`provmark.metadata.write_label` on an untrusted file, then
               :func:`~provmark.metadata.read_label` must find the label
``xmp``        the XMP packet reader and updater of :mod:`provmark.metadata`
``json``       the GB 45438 JSON parser (:meth:`AIGCLabel.from_json`)
``key``        key files, :func:`provmark.cli._read_key`
=============  ==============================================================
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

LABEL_ARGS = ("1", "ACME-GEN-0001", "img-20250901-0001")
#: An input that takes longer than this (seconds) is a hang.
HANG_SECONDS = 5
#: A harness process above this resident size (MB) has failed.
RSS_LIMIT_MB = 1024
#: The pixel limit the image harness decodes under (``PROVMARK_MAX_PIXELS``):
#: provmark's default, 100 MP, needs more than the 1 GB allowed here to decode; the
#: limit itself is what the harness checks, with headers that claim gigapixels.
IMAGE_MAX_PIXELS = "16000000"
#: Where the seed corpus of each harness lives (made by ``seeds.py``).
CORPUS = Path(__file__).resolve().parent / "corpus"


@dataclass(frozen=True)
class Harness:
    """One harness: the check, the largest input worth trying, and what it fuzzes."""

    name: str
    check: Callable[[bytes], None]
    max_len: int
    modules: tuple[str, ...]  # instrumented for coverage under atheris
    about: str

    @property
    def seeds(self) -> Path:
        return CORPUS / self.name


_scratch: Path | None = None


def _scratch_file(name: str) -> Path:
    """A file in a private scratch directory (in memory when /dev/shm exists)."""
    global _scratch
    if _scratch is None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        _scratch = Path(tempfile.mkdtemp(prefix="provmark-fuzz-", dir=base))
    return _scratch / name


# --------------------------------------------------------------------------- #
# image: provmark._io.read_image
# --------------------------------------------------------------------------- #
def check_image(data: bytes) -> None:
    from provmark._image import ImageError, max_pixels
    from provmark._io import read_image

    path = _scratch_file("image")
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as in production: warnings are not errors
        try:
            img = read_image(path)
        except ImageError as exc:
            assert str(exc), "ImageError without a message"
            return
    rgb = img.rgb
    assert rgb.dtype.name == "uint8" and rgb.ndim == 3 and rgb.shape[2] == 3, rgb.shape
    assert rgb.flags.c_contiguous
    assert rgb.shape[0] * rgb.shape[1] <= max_pixels(), rgb.shape
    assert img.format in ("PNG", "JPEG", "WEBP"), img.format


# --------------------------------------------------------------------------- #
# containers: provmark.metadata.read_label
# --------------------------------------------------------------------------- #
def check_containers(data: bytes) -> None:
    from provmark import metadata as m

    try:
        r = m.read_label(data)
    except ValueError as exc:
        # the one documented error: not a PNG, JPEG or WebP file at all
        assert "unsupported image format" in str(exc), exc
        return
    assert r.container in ("png", "jpeg", "webp"), r.container
    assert len(r.problems) <= m.MAX_PROBLEMS, len(r.problems)
    assert all(isinstance(p, str) and len(p) < 20_000 for p in r.problems)
    if r.raw_json is not None:
        assert len(r.raw_json) <= m.MAX_JSON_LENGTH + 100, len(r.raw_json)
    if r.digital_source_type is not None:
        assert len(r.digital_source_type) <= 1200, len(r.digital_source_type)
    if r.label is not None:
        assert r.source in ("xmp", "png-text") and r.raw_json is not None
        assert m.AIGCLabel.from_json(r.label.to_json()) == r.label
        assert r.declared_label in (None, r.label.label)
    assert r.declared_label in (None, "1", "2", "3")


# --------------------------------------------------------------------------- #
# writer: provmark.metadata.write_label on an untrusted file
# --------------------------------------------------------------------------- #
def check_writer(data: bytes) -> None:
    from provmark import metadata as m

    label = m.AIGCLabel(*LABEL_ARGS)
    for replace in (False, True):
        try:
            out = m.write_label(data, label, replace_malformed_xmp=replace)
        except ValueError as exc:
            assert str(exc), "ValueError without a message"
            continue
        r = m.read_label(out)
        assert r.label == label, (replace, r.problems)
        assert r.digital_source_type == m.DIGITAL_SOURCE_TYPE_TRAINED, r.digital_source_type
        # writing again changes nothing: relabelling does not grow the file
        assert m.write_label(out, label) == out, "relabelling changed the file"
        return


# --------------------------------------------------------------------------- #
# xmp: the packet reader and updater
# --------------------------------------------------------------------------- #
def check_xmp(data: bytes) -> None:
    from provmark import metadata as m

    candidates, dst, problems = m._read_xmp(data)
    assert len(candidates) <= m.MAX_AIGC_PROPERTIES, len(candidates)
    assert all(isinstance(c, str) for c in candidates) and isinstance(problems, list)
    assert dst is None or isinstance(dst, str)
    value = m.AIGCLabel(*LABEL_ARGS).to_json(wrapped=False)
    try:
        out = m._update_xmp(data, value, replace_malformed=False)
    except ValueError as exc:
        assert "cannot be updated" in str(exc), exc
        return
    got, got_dst, _ = m._read_xmp(out)
    assert got == [value] and got_dst == m.DIGITAL_SOURCE_TYPE_TRAINED, (got, got_dst)


# --------------------------------------------------------------------------- #
# json: the GB 45438 label JSON parser
# --------------------------------------------------------------------------- #
def check_json(data: bytes) -> None:
    from provmark import metadata as m

    for text in (data, data.decode("latin-1")):
        label, problems, declared = m._parse_label_json(text)
        assert declared in (None, "1", "2", "3"), declared
        assert all(isinstance(p, str) for p in problems) and len(problems) <= 12
        try:
            strict = m.AIGCLabel.from_json(text)
        except ValueError as exc:
            assert str(exc).startswith("invalid AIGC label JSON"), exc
            assert label is None or problems
        else:
            assert strict == label and not problems
        if label is not None:
            assert m.AIGCLabel.from_json(label.to_json()) == label
            assert m.AIGCLabel.from_json(label.to_json(wrapped=False)) == label


# --------------------------------------------------------------------------- #
# key: provmark.cli._read_key
# --------------------------------------------------------------------------- #
def check_key(data: bytes) -> None:
    from provmark import cli

    path = _scratch_file("key")
    path.write_bytes(data)
    try:
        key = cli._read_key(str(path))
    except cli._UsageError as exc:
        assert str(path) in str(exc), exc
        return
    assert isinstance(key, bytes) and key, key
    assert len(key) <= cli.KEY_FILE_MAX_BYTES
    assert data.startswith(key) and data[len(key):] in (b"", b"\n", b"\r\n"), (data, key)


HARNESSES = {
    h.name: h
    for h in (
        Harness("image", check_image, 64 * 1024, ("provmark", "PIL"),
                "provmark._io.read_image: header checks, then decoding"),
        Harness("containers", check_containers, 64 * 1024, ("provmark.metadata",),
                "metadata.read_label: PNG/JPEG/WebP walkers, XMP, label JSON"),
        Harness("writer", check_writer, 64 * 1024, ("provmark.metadata",),
                "metadata.write_label on untrusted files, read back"),
        Harness("xmp", check_xmp, 64 * 1024, ("provmark.metadata",),
                "XMP packet reader and updater"),
        Harness("json", check_json, 16 * 1024, ("provmark.metadata",),
                "GB 45438 label JSON parser"),
        Harness("key", check_key, 8 * 1024, ("provmark.cli",),
                "cli._read_key: key files"),
    )
}
