"""Make the golden files of format v1 (docs/format.md): small marked images, their
payloads and keys, and digests of every keyed draw, in ``tests/golden/``.

    python tests/golden/make_golden.py

The files are a contract: ``tests/test_golden.py`` decodes every one, recomputes the
digests and re-embeds the PNG cases. Run this script again only for a new format
version (and keep the old files for the old version's tests): a change that breaks
the golden tests without one would make every mark already written unreadable.

An *informative* change of the embedder (docs/format.md sections 5.2-5.3 and 9: its
strength, closed loop, template amplitude or quality floors) moves the pixels that
re-embedding gives without touching what a reader needs. It never rewrites these
files; it records the new embedder's output for the cases it changed, next to them:

    python tests/golden/make_golden.py --embedder-revision 2 --why "..."

writes ``embedder-r2/<case>.png`` and ``embedder.json`` (revision, reason, files),
which the re-embedding test compares with instead of the golden PNG. The golden files
are still decoded, as marks written by earlier versions.

Sources: 256x256 and 320x288 crops of the bundled sample photo (stored as PNG here so
that no JPEG decoder is in the loop), and two smooth synthetic images defined by a
formula (:func:`gradient`): one small, and one of 1408x1408 whose template sits on the
factor-2 lattice (stored as a JPEG only, decoded by the tests; a JPEG encoder's output
is not pinned across library versions, so it is not re-embedded).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
TEST_KEY = b"provmark golden test key"


def gradient(h: int, w: int) -> np.ndarray:
    """A smooth sky-like RGB image (generated images are often smooth), exact in
    integers: the same pixels on every machine."""
    y, x = np.mgrid[0:h, 0:w]
    r = 60 + (120 * y) // h + (40 * x) // w
    g = 90 + (100 * y) // h + (20 * ((x * 7 + y * 3) % 256)) // 256
    b = 200 - (80 * y) // h + (30 * x) // w
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def sample_crop(top: int, left: int, h: int, w: int) -> np.ndarray:
    from importlib.resources import files

    with Image.open(files("provmark.data") / "sample.jpg") as im:
        rgb = np.asarray(im.convert("RGB"))
    return np.ascontiguousarray(rgb[top:top + h, left:left + w])


def derivation_digests(key: bytes) -> dict[str, str]:
    """SHA-256 of each keyed draw of ``key`` (little-endian int64 / float64 bytes)."""
    from provmark import _codec
    from provmark._layout import keyed_layout
    from provmark._template import keyed_template

    lay = keyed_layout(key)
    out = {}
    for name, arr, dtype in (("code_slots", lay.code_slots, "<i8"),
                             ("pilot_slots", lay.pilot_slots, "<i8"),
                             ("pilot_bits", lay.pilot_bits, "<i8"),
                             ("dither", lay.dither, "<f8")):
        out[name] = hashlib.sha256(np.ascontiguousarray(arr, dtype).tobytes()).hexdigest()
    # The template's lattice points and phases (every lattice factor shares them: a
    # factor only stretches the period, docs/format.md 3.2).
    t = keyed_template(key)
    blob = (np.ascontiguousarray(t.lattice, "<i8").tobytes()
            + np.ascontiguousarray(t.phase, "<f8").tobytes())
    out["template"] = hashlib.sha256(blob).hexdigest()
    out["whitening"] = bytes(_codec._whitening(key)).hex()
    return out


CASES = (
    # name, source, key name, payload (provider, content_id, label), formats
    ("photo-256-public", ("sample", 96, 128, 256, 256), "public", (7, 42, 1), ("png", "jpg")),
    ("photo-320x288-testkey", ("sample", 40, 100, 288, 320), "test", (123456, 987654321, 2),
     ("png", "jpg")),
    ("gradient-272x256-testkey", ("gradient", 272, 256), "test", (1, 1, 3), ("png",)),
    ("gradient-1408-public", ("gradient", 1408, 1408), "public", (16777215, 2**40 - 1, 1),
     ("jpg",)),
)


def source(spec) -> np.ndarray:
    if spec[0] == "sample":
        return sample_crop(*spec[1:])
    return gradient(*spec[1:])


def main() -> None:
    import provmark
    from provmark._template import template_factor

    keys = {"public": provmark.PUBLIC_KEY, "test": TEST_KEY}
    manifest = {"format_version": 1, "keys": {"public": "provmark.PUBLIC_KEY",
                                              "test": TEST_KEY.decode()},
                "derivation": {name: derivation_digests(k) for name, k in keys.items()},
                "cases": []}
    for name, spec, key_name, (provider, content_id, label), formats in CASES:
        rgb = source(spec)
        payload = provmark.Payload(provider=provider, content_id=content_id, label=label)
        marked = provmark.embed(rgb, payload, key=keys[key_name])
        entry = {"name": name, "source": list(spec), "key": key_name,
                 "payload": {"provider": provider, "content_id": content_id, "label": label},
                 "size": [rgb.shape[1], rgb.shape[0]],
                 "template_factor": template_factor(*rgb.shape[:2]), "files": {}}
        for fmt in formats:
            buf = io.BytesIO()
            if fmt == "png":
                Image.fromarray(marked).save(buf, "PNG", optimize=True)
            else:
                Image.fromarray(marked).save(buf, "JPEG", quality=90)
            data = buf.getvalue()
            (HERE / f"{name}.{fmt}").write_bytes(data)
            entry["files"][fmt] = {"file": f"{name}.{fmt}",
                                   "sha256": hashlib.sha256(data).hexdigest()}
        entry["marked_pixels_sha256"] = hashlib.sha256(marked.tobytes()).hexdigest()
        manifest["cases"].append(entry)
        print(name, rgb.shape, {f: len((HERE / v["file"]).read_bytes())
                                for f, v in entry["files"].items()})
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def write_embedder_references(revision: int, why: str) -> None:
    """Record the current embedder's output for the PNG cases whose re-embedding no
    longer equals their golden file (an informative embedder change, see above)."""
    import provmark

    keys = {"public": provmark.PUBLIC_KEY, "test": TEST_KEY}
    manifest = json.loads((HERE / "manifest.json").read_text())
    path = HERE / "embedder.json"
    record = json.loads(path.read_text()) if path.exists() else {"revision": 1,
                                                                 "history": [], "reembed": {}}
    if revision <= record["revision"]:
        raise SystemExit(f"embedder revision {revision} is not above the recorded "
                         f"{record['revision']}")
    folder = HERE / f"embedder-r{revision}"
    for case in manifest["cases"]:
        if "png" not in case["files"]:
            continue
        marked = provmark.embed(source(case["source"]), provmark.Payload(**case["payload"]),
                                key=keys[case["key"]])
        current = record["reembed"].get(case["name"], case["files"]["png"])["file"]
        with Image.open(HERE / current) as im:
            if np.array_equal(np.asarray(im.convert("RGB")), marked):
                continue
        folder.mkdir(exist_ok=True)
        buf = io.BytesIO()
        Image.fromarray(marked).save(buf, "PNG", optimize=True)
        name = f"{folder.name}/{case['name']}.png"
        (HERE / name).write_bytes(buf.getvalue())
        record["reembed"][case["name"]] = {"file": name,
                                           "sha256": hashlib.sha256(buf.getvalue()).hexdigest()}
        print("re-embedding changed:", case["name"])
    record["history"].append({"revision": revision, "why": why})
    record["revision"] = revision
    path.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedder-revision", type=int,
                        help="record an informative embedder change (never a format change)")
    parser.add_argument("--why", help="what changed, with --embedder-revision")
    args = parser.parse_args()
    if args.embedder_revision is None:
        main()
    elif not args.why:
        parser.error("--embedder-revision needs --why")
    else:
        write_embedder_references(args.embedder_revision, args.why)
