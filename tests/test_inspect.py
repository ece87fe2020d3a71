"""Tests for the forensic report (provmark._inspect) and the ``label``/``inspect``
subcommands: round trips on PNG, JPEG and WebP, stripped and tampered metadata,
wrong keys and malformed labels (which must never crash)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

import provmark
import provmark.c2pa
from provmark import Payload, metadata
from provmark._label import write_labelled
from provmark.cli import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK, main

pytestmark = pytest.mark.usefixtures("numba_one_thread")

PAYLOAD = Payload(provider=4242, content_id=987654321, label=1)
KEY = b"inspect-test-secret"
QUALITY = {".png": 95, ".jpg": 92, ".webp": 90}


@pytest.fixture(scope="module")
def labelled(astronaut_512):
    return provmark.label(astronaut_512, PAYLOAD, key=KEY, content_producer="ACME-AI",
                          produce_id="img-987654321")


@pytest.fixture(scope="module")
def files(labelled, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("labelled")
    return {ext: write_labelled(d / f"img{ext}", labelled, quality=q) for ext, q in QUALITY.items()}


def _strip(path: Path, out: Path) -> Path:
    """Re-encode through Pillow without any metadata."""
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    fmt = {".png": "PNG", ".jpg": "JPEG", ".webp": "WEBP"}[path.suffix]
    kw = {} if fmt == "PNG" else {"quality": 95}
    rgb.save(out, fmt, **kw)
    return out


@pytest.mark.parametrize("ext", list(QUALITY))
def test_round_trip_consistent(files, ext):
    rep = provmark.inspect(files[ext], key=KEY)
    assert rep.verdict == "consistent", rep.problems
    assert rep.detection.found and rep.detection.payload == PAYLOAD
    assert rep.integrity is True
    # No C2PA manifest in these files ("not checked" only without the c2pa extra).
    c2pa_state = "absent" if provmark.c2pa.available() else "not checked"
    assert rep.layers == {"metadata": "valid", "watermark": "found", "integrity": "valid",
                          "c2pa": c2pa_state, "explicit": "not checked"}
    assert rep.metadata.label.produce_id == "img-987654321"
    assert rep.found and not rep.problems
    json.dumps(rep.to_dict())  # JSON-ready


@pytest.mark.parametrize("ext", list(QUALITY))
def test_metadata_stripped(files, ext, tmp_path):
    stripped = _strip(files[ext], tmp_path / f"s{ext}")
    rep = provmark.inspect(stripped, key=KEY)
    assert rep.verdict == "metadata stripped, watermark present"
    assert rep.detection.payload == PAYLOAD
    assert rep.layers["metadata"] == "absent" and rep.integrity is None


def test_bytes_input(files):
    rep = provmark.inspect(files[".png"].read_bytes(), key=KEY)
    assert rep.verdict == "consistent" and rep.source == "<bytes>"


@pytest.mark.parametrize("field", ["produce_id", "content_producer", "label"])
def test_integrity_code_invalid(files, field):
    data = files[".jpg"].read_bytes()
    lab = metadata.read_label(data).label
    new = {"produce_id": "img-forged", "content_producer": "EVIL", "label": "1"}[field]
    if field == "label":  # same Label, different code: a code copied from another image
        forged = dataclasses.replace(
            lab, reserved_code1=metadata.integrity_code(lab, Payload(1, 2).to_bytes(), KEY))
    else:
        forged = dataclasses.replace(lab, **{field: new})
    rep = provmark.inspect(metadata.write_label(data, forged), key=KEY)
    assert rep.verdict == "integrity code invalid"
    assert rep.integrity is False and rep.layers["integrity"] == "invalid"
    assert any("integrity code" in p for p in rep.problems)
    assert rep.detection.payload == PAYLOAD


def test_label_disagrees_without_integrity_code(files):
    data = files[".png"].read_bytes()
    lab = metadata.read_label(data).label
    other = dataclasses.replace(lab, label="3", reserved_code1="")
    rep = provmark.inspect(metadata.write_label(data, other), key=KEY)
    assert rep.verdict == "metadata and watermark disagree"
    assert rep.layers["integrity"] == "absent"
    assert any("differs from the watermark" in p for p in rep.problems)


@pytest.mark.slow
def test_wrong_key(files):
    rep = provmark.inspect(files[".png"], key=b"not-the-key")
    assert not rep.detection.found and rep.detection.payload is None
    assert rep.verdict == "watermark absent"
    assert rep.layers["integrity"] == "not checked" and rep.integrity is None
    assert rep.found  # the metadata label is still valid


def _png_with_text(rgb: np.ndarray, value: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("AIGC", value)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


@pytest.mark.parametrize("value, expect", [
    ('{"AIGC":{"Label":"1","ContentProducer":"ACME"', "JSON"),
    ('{"AIGC":{"Label":"7","ContentProducer":"ACME","ProduceID":"x"}}', "Label"),
    ('{"AIGC":{"Label":"1","ContentProducer":"AC ME","ProduceID":"x"}}', "space"),
    ('{"AIGC":{"Label":"1","ContentProducer":"' + "A" * 5000 + '","ProduceID":"x"}}', "ContentProducer"),
    ('{"AIGC":{"Label":"1","ProduceID":"x"}}', "ContentProducer"),
])
def test_malformed_metadata_never_crashes(labelled, value, expect):
    data = _png_with_text(labelled.image, value)
    rep = provmark.inspect(data, key=KEY)
    assert rep.verdict == "metadata invalid, watermark present"
    assert rep.layers["metadata"] == "invalid"
    assert rep.problems and any(expect in p for p in rep.problems), rep.problems
    json.dumps(rep.to_dict())


@pytest.mark.slow
def test_truncated_xmp_and_no_label(astronaut_512, files):
    data = files[".jpg"].read_bytes()
    start = data.index(b"<x:xmpmeta")
    # zero out part of the XMP packet: the reader falls back to a text search and
    # reports the damage; the report must not crash
    broken = data[:start + 60] + b"\x00" * 40 + data[start + 100:]
    rep = provmark.inspect(broken, key=KEY)
    assert rep.detection.found
    assert rep.verdict in ("metadata invalid, watermark present",
                           "metadata stripped, watermark present", "consistent")
    assert any("not well-formed" in p for p in rep.problems), rep.problems
    buf = io.BytesIO()
    Image.fromarray(np.array(astronaut_512)).save(buf, "PNG")
    rep = provmark.inspect(buf.getvalue(), key=KEY)
    assert rep.verdict == "no label" and not rep.found


def test_inspect_input_errors(tmp_path):
    with pytest.raises(provmark.ImageError, match="no such file"):
        provmark.inspect(tmp_path / "missing.png")
    with pytest.raises(provmark.ImageError, match="not a recognised image"):
        provmark.inspect(b"hello, not an image")
    with pytest.raises(TypeError, match="provmark.detect"):
        provmark.inspect(np.zeros((8, 8, 3), np.uint8))


def test_readme_three_labels_snippet_runs(astronaut_512, tmp_path, monkeypatch, capsys):
    """The README's "All three labels at once" snippet runs as written, on its own
    (it used an ``image`` that nothing defined)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    section = readme.split("## All three labels at once", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.array(astronaut_512)).save("generated.png")
    found = provmark.label(astronaut_512, PAYLOAD, content_producer="ACME", produce_id="img-1")
    write_labelled("found-online.jpg", found, quality=92)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert metadata.read_label(Path("out.jpg").read_bytes()).found
    assert namespace["report"].verdict == "consistent"
    assert capsys.readouterr().out.strip() == "consistent"


# --------------------------------------------------------------------------- #
# CLI


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def src_png(astronaut_512, tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("cli") / "in.png"
    Image.fromarray(np.array(astronaut_512)).save(p)
    return p


def _label_args(src: Path, out: Path, *extra: str) -> list[str]:
    return ["label", str(src), "-o", str(out), "--provider", "4242", "--content-id", "77",
            "--content-producer", "ACME", "--produce-id", "img-77", *extra]


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp"])
def test_cli_label_then_inspect(capsys, src_png, tmp_path, ext):
    before = hashlib.sha256(src_png.read_bytes()).hexdigest()
    key_file = tmp_path / "k"
    key_file.write_bytes(KEY + b"\n")
    out = tmp_path / f"out{ext}"
    code, stdout, err = run(capsys, *_label_args(src_png, out, "--label", "2", "--key-file",
                                                 str(key_file), "--quality", "92", "--json"))
    assert code == EXIT_OK, err
    info = json.loads(stdout)
    assert info["metadata"]["Label"] == "2" and info["metadata"]["ReservedCode1"].startswith("pm1:")
    assert info["explicit_text_height_px"] >= 0.05 * 512
    assert hashlib.sha256(src_png.read_bytes()).hexdigest() == before  # input untouched

    code, stdout, err = run(capsys, "inspect", str(out), "--key-file", str(key_file), "--json")
    assert code == EXIT_OK, err
    rep = json.loads(stdout)
    assert rep["verdict"] == "consistent"
    assert rep["watermark"]["payload"]["content_id"] == 77
    assert rep["watermark"]["payload"]["label"] == 2

    code, stdout, _ = run(capsys, "inspect", str(out), "--key-file", str(key_file))
    assert code == EXIT_OK and "CONSISTENT" in stdout and "false-alarm probability" in stdout
    assert "offset=" in stdout and "rotation=" in stdout


def test_cli_label_errors(capsys, src_png, tmp_path):
    out = tmp_path / "o.png"
    assert run(capsys, *_label_args(src_png, out))[0] == EXIT_OK
    code, _, err = run(capsys, *_label_args(src_png, out))
    assert code == EXIT_ERROR and "already exists" in err
    code, _, err = run(capsys, *_label_args(src_png, src_png, "--force"))
    assert code == EXIT_ERROR and "input" in err
    code, _, err = run(capsys, *_label_args(src_png, tmp_path / "p.png", "--text", "hello"))
    assert code == EXIT_ERROR and "GB 45438" in err
    code, _, err = run(capsys, "label", str(src_png), "-o", str(tmp_path / "q.png"),
                       "--provider", "1", "--content-id", "2", "--content-producer", "A B",
                       "--produce-id", "x")
    assert code == EXIT_ERROR and "ContentProducer" in err
    code, _, err = run(capsys, "label", str(src_png), "-o", str(tmp_path / "q.png"),
                       "--provider", "1", "--content-id", "2")
    assert code == EXIT_ERROR and "--content-producer" in err
    assert not (tmp_path / "p.png").exists() and not (tmp_path / "q.png").exists()
    code, stdout, _ = run(capsys, "label", "--help")
    assert code == 0 and "example:" in stdout


@pytest.mark.slow
def test_cli_inspect_exit_codes(capsys, src_png, tmp_path):
    marked = tmp_path / "m.png"
    assert run(capsys, *_label_args(src_png, marked, "--no-explicit"))[0] == EXIT_OK
    code, stdout, _ = run(capsys, "inspect", str(src_png), "--json")
    assert code == EXIT_NOT_FOUND and json.loads(stdout)["verdict"] == "no label"
    # The exit codes do not depend on the exhaustive sweep (the call above ran it):
    # --fast spares the rest its 4 s per unmarked image.
    code, stdout, _ = run(capsys, "inspect", str(marked), str(src_png), "--json", "--fast")
    rows = json.loads(stdout)
    assert code == EXIT_NOT_FOUND and [r["verdict"] for r in rows] == ["consistent", "no label"]
    code, _, err = run(capsys, "inspect", str(marked), str(tmp_path / "missing.png"), "--fast")
    assert code == EXIT_ERROR and "no such file" in err
    bad = tmp_path / "bad.png"
    bad.write_bytes(_png_with_text(np.array(Image.open(src_png)), "{not json"))
    code, stdout, _ = run(capsys, "inspect", str(bad), "--fast")
    assert code == EXIT_NOT_FOUND and "problem:" in stdout
    code, stdout, _ = run(capsys, "inspect", "--help")
    assert code == 0 and "example:" in stdout


def test_every_verdict_is_documented():
    """docs/inspect.md lists every verdict inspect can give (a new one needs its text)."""
    from pathlib import Path

    from provmark._inspect import VERDICTS

    doc = " ".join((Path(__file__).parents[1] / "docs" / "inspect.md").read_text("utf-8").split())
    missing = [v for v in VERDICTS if f"`{v}`" not in doc]
    assert not missing, missing
