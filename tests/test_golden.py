"""Format v1's golden files (tests/golden/, made by tests/golden/make_golden.py): the
contract that a mark written today is read by every later version.

(a) every golden image decodes to its payload with its key, and to nothing with the
other key; (b) the key derivation reproduces the committed digests of every keyed draw;
(c) re-embedding the PNG cases' sources reproduces the committed marked pixels: the
golden PNG, or, where an informative embedder change (docs/format.md section 9) moved
them, the embedder's recorded output (``embedder.json``; the golden files themselves
are never rewritten and are still decoded by (a)).

If one of these fails after a change, the change altered format v1: give the new
behaviour a new format version (docs/format.md section 9) instead of editing these
files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import provmark

GOLDEN = Path(__file__).resolve().parent / "golden"
MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())
EMBEDDER = json.loads((GOLDEN / "embedder.json").read_text())


def _make_golden():
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE = _make_golden()
KEYS = {"public": provmark.PUBLIC_KEY, "test": MAKE.TEST_KEY}
FILES = [(case, fmt) for case in MANIFEST["cases"] for fmt in case["files"]]


def test_the_manifest_covers_both_keys_both_containers_and_two_lattice_factors():
    assert MANIFEST["format_version"] == 1
    assert {c["key"] for c in MANIFEST["cases"]} == {"public", "test"}
    assert {f for _, f in FILES} == {"png", "jpg"}
    assert {c["template_factor"] for c in MANIFEST["cases"]} == {1, 2}


@pytest.mark.parametrize("case, fmt", FILES, ids=[f"{c['name']}.{f}" for c, f in FILES])
def test_golden_file_decodes_to_its_payload(case, fmt):
    entry = case["files"][fmt]
    data = (GOLDEN / entry["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]  # the file itself is intact
    with Image.open(GOLDEN / entry["file"]) as im:
        rgb = np.asarray(im.convert("RGB"))
    det = provmark.detect(rgb, key=KEYS[case["key"]])
    assert det.found, det.reason
    assert det.payload == provmark.Payload(**case["payload"])
    assert det.payload.version == MANIFEST["format_version"]
    assert det.offset == (0, 0)  # written at the image origin: read on the aligned grid
    other = "test" if case["key"] == "public" else "public"
    assert provmark.detect(rgb, key=KEYS[other]).payload is None


@pytest.mark.parametrize("key_name", sorted(KEYS))
def test_key_derivation_reproduces_the_committed_digests(key_name):
    assert MAKE.derivation_digests(KEYS[key_name]) == MANIFEST["derivation"][key_name]


def test_a_one_line_change_to_the_derivation_is_caught(monkeypatch):
    """The digests see a change of the derivation: here the layout's domain name."""
    from provmark import _layout

    real = _layout.KeyStream

    class Renamed(real):
        def __init__(self, key, domain):
            super().__init__(key, "layout-v2" if domain == "layout" else domain)

    monkeypatch.setattr(_layout, "KeyStream", Renamed)
    _layout.keyed_layout.cache_clear()
    try:
        changed = MAKE.derivation_digests(KEYS["public"])
    finally:
        monkeypatch.undo()
        _layout.keyed_layout.cache_clear()
    assert changed["code_slots"] != MANIFEST["derivation"]["public"]["code_slots"]
    assert changed["template"] == MANIFEST["derivation"]["public"]["template"]


PNG_CASES = [c for c in MANIFEST["cases"] if "png" in c["files"]]


@pytest.mark.parametrize("case", PNG_CASES, ids=[c["name"] for c in PNG_CASES])
def test_re_embedding_reproduces_the_committed_pixels(case):
    """The embedder is deterministic: the same source, payload and key give the same
    pixels. Tolerance: the measurement kernels are compiled with floating-point
    contraction (kernels/_jit.py), so a CPU without fused multiply-add may round a
    texture measure differently in the last bit and move a pixel that sat at a
    rounding boundary by one grey level; at most 0.1% of the values may differ, by
    at most 1. On the machine that made the files they are identical."""
    rgb = MAKE.source(case["source"])
    marked = provmark.embed(rgb, provmark.Payload(**case["payload"]), key=KEYS[case["key"]])
    entry = EMBEDDER["reembed"].get(case["name"], case["files"]["png"])
    data = (GOLDEN / entry["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    with Image.open(GOLDEN / entry["file"]) as im:
        golden = np.asarray(im.convert("RGB"))
    diff = np.abs(marked.astype(np.int16) - golden.astype(np.int16))
    assert diff.max() <= 1
    assert (diff > 0).mean() <= 1e-3


@pytest.mark.parametrize("name", sorted(EMBEDDER["reembed"]))
def test_recorded_embedder_output_is_a_mark_of_the_same_format(name):
    """An embedder revision records pixels, not a format: its output decodes to the
    case's payload like the golden file, and the golden file is still there."""
    case = next(c for c in MANIFEST["cases"] if c["name"] == name)
    assert (GOLDEN / case["files"]["png"]["file"]).exists()
    with Image.open(GOLDEN / EMBEDDER["reembed"][name]["file"]) as im:
        rgb = np.asarray(im.convert("RGB"))
    det = provmark.detect(rgb, key=KEYS[case["key"]])
    assert det.payload == provmark.Payload(**case["payload"])
    assert [h["revision"] for h in EMBEDDER["history"]] == list(range(1, EMBEDDER["revision"] + 1))
