"""Tests for the ``provmark`` command line (provmark.cli), run in-process with the
output captured, plus one run of the installed entry point in a subprocess.

Exit codes (cli.py's module docstring): 0 done / found in every image, 1 no mark in
at least one image and no input error, 2 usage or input error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import provmark
from provmark import Payload
from provmark._io import write_image
from provmark.cli import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK, main

pytestmark = pytest.mark.usefixtures("numba_one_thread")

PAYLOAD = Payload(provider=4242, content_id=123456789, label=2)
KEY = b"cli-test-secret"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``provmark argv...`` in-process; returns (exit code, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: --help, usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory, photo_factory) -> dict[str, Path]:
    """An unmarked PNG, marked copies (public key and secret key), a corrupt file and
    key files; made with the API so the detect tests do not depend on ``embed``."""
    d = tmp_path_factory.mktemp("cli")
    img = photo_factory("coffee", 512, 512)
    paths = {"plain": write_image(d / "plain.png", img),
             "marked": write_image(d / "marked.png", provmark.embed(img, PAYLOAD)),
             "marked_key": write_image(d / "marked_key.png",
                                       provmark.embed(img, PAYLOAD, key=KEY))}
    paths["small"] = write_image(d / "small.png", img[:100, :100])
    paths["corrupt"] = d / "corrupt.jpg"
    paths["corrupt"].write_bytes((d / "plain.png").read_bytes()[:1000])
    paths["key"] = d / "key.txt"
    paths["key"].write_bytes(KEY + b"\n")
    paths["key_raw"] = d / "key_raw.bin"
    paths["key_raw"].write_bytes(KEY)
    paths["wrong_key"] = d / "wrong.txt"
    paths["wrong_key"].write_bytes(b"not-the-key\n")
    paths["empty_key"] = d / "empty.txt"
    paths["empty_key"].write_bytes(b"")
    paths["newline_key"] = d / "newline.txt"
    paths["newline_key"].write_bytes(b"\n")
    return paths


# --------------------------------------------------------------------------- #
# embed -> detect


@pytest.mark.parametrize("ext, extra", [(".png", []), (".jpg", ["--quality", "90"]),
                                        (".webp", [])], ids=["png", "jpeg-q90", "webp"])
def test_embed_then_detect(capsys, tmp_path, files, ext, extra):
    out = tmp_path / f"out{ext}"
    code, stdout, stderr = run(capsys, "embed", str(files["plain"]), "-o", str(out),
                               "--provider", "4242", "--content-id", "123456789",
                               "--label", "2", *extra)
    assert code == EXIT_OK, stderr
    assert out.exists() and "4242" in stdout and "PSNR" in stdout
    code, stdout, stderr = run(capsys, "detect", str(out))
    assert code == EXIT_OK, stdout + stderr
    assert "FOUND" in stdout
    assert "provider=4242" in stdout and "content_id=123456789" in stdout and "label=2" in stdout


def test_embed_json(capsys, tmp_path, files):
    out = tmp_path / "out.png"
    code, stdout, _ = run(capsys, "embed", str(files["plain"]), "-o", str(out),
                          "--provider", "0x10", "--content-id", "99", "--json")
    assert code == EXIT_OK
    info = json.loads(stdout)
    assert info["payload"] == {"label": 1, "provider": 16, "content_id": 99}
    assert info["output"] == str(out)
    assert (info["width"], info["height"]) == (512, 512)
    assert info["psnr_db"] >= 40
    assert provmark.detect(np.asarray(Image.open(out))).payload == Payload(16, 99)


def test_embed_never_modifies_the_input(capsys, tmp_path, files):
    before = files["plain"].read_bytes()
    code, _, _ = run(capsys, "embed", str(files["plain"]), "-o", str(tmp_path / "x.jpg"),
                     "--provider", "1", "--content-id", "1")
    assert code == EXIT_OK
    assert files["plain"].read_bytes() == before


def test_embed_from_jpeg_input(capsys, tmp_path, files):
    src = tmp_path / "in.jpg"
    code, _, _ = run(capsys, "embed", str(files["plain"]), "-o", str(src), "--provider", "1",
                     "--content-id", "1", "--quality", "95")
    assert code == EXIT_OK
    out = tmp_path / "out.webp"
    code, _, err = run(capsys, "embed", str(src), "-o", str(out), "--provider", "7",
                       "--content-id", "8", "--label", "3")
    assert code == EXIT_OK, err
    code, stdout, _ = run(capsys, "detect", str(out), "--json")
    assert code == EXIT_OK
    assert json.loads(stdout)["payload"]["provider"] == 7


# --------------------------------------------------------------------------- #
# detect: exit codes and JSON


def test_detect_found_json(capsys, files):
    code, stdout, _ = run(capsys, "detect", str(files["marked"]), "--json")
    assert code == EXIT_OK
    row = json.loads(stdout)
    assert isinstance(row, dict)
    assert row["found"] is True and row["input"] == str(files["marked"])
    assert row["payload"]["provider"] == 4242 and row["payload"]["label"] == 2
    assert row["false_alarm_probability"] <= 1e-9


@pytest.mark.slow
def test_detect_exhaustive_reads_a_resized_small_image(capsys, files, tmp_path, monkeypatch):
    """A 0.75x copy of a 512x512 source: the default search reads it through the
    template. Where the template did not survive (here: every lock refused), the
    default search cannot resynchronise it; --exhaustive sweeps the scale and finds
    it, and --explain says so."""
    import cv2

    import provmark
    from provmark._io import read_image

    small = cv2.resize(read_image(files["marked"]).rgb, (384, 384), interpolation=cv2.INTER_AREA)
    path = write_image(tmp_path / "small.png", small)
    code, _, _ = run(capsys, "detect", str(path))
    assert code == EXIT_OK
    monkeypatch.setattr(provmark._detect, "LOCK_Z", float("inf"))
    # (the uncropped sweep reads the template's phases without a lock)
    monkeypatch.setattr(provmark._detect._Search, "coherent_uncropped", lambda self: False)
    monkeypatch.setattr(provmark._detect._Search, "pilot_scales", lambda self: False)
    monkeypatch.setattr(provmark._detect._Search, "pilot_rotations", lambda self: False)
    code, _, _ = run(capsys, "detect", str(path))
    assert code == EXIT_NOT_FOUND
    code, stdout, _ = run(capsys, "detect", str(path), "--exhaustive", "--explain")
    assert code == EXIT_OK and "FOUND provider=4242" in stdout
    assert "exhaustive sweep:" in stdout
    # inspect sweeps by default (a forensic report tries everything); --fast does not.
    code, stdout, _ = run(capsys, "inspect", str(path), "--json")
    assert code == EXIT_OK and json.loads(stdout)["layers"]["watermark"] == "found"
    code, stdout, _ = run(capsys, "inspect", str(path), "--json", "--fast")
    assert json.loads(stdout)["layers"]["watermark"] == "absent"


def test_detect_not_found(capsys, files):
    code, stdout, _ = run(capsys, "detect", str(files["plain"]))
    assert code == EXIT_NOT_FOUND
    assert "no mark found" in stdout
    code, stdout, _ = run(capsys, "detect", str(files["plain"]), "--json")
    assert code == EXIT_NOT_FOUND
    row = json.loads(stdout)
    assert row["found"] is False and row["payload"] is None


@pytest.mark.parametrize("names, expected", [
    (["marked", "marked"], EXIT_OK),
    (["marked", "plain"], EXIT_NOT_FOUND),
    (["plain", "marked"], EXIT_NOT_FOUND),
    (["marked", "missing"], EXIT_ERROR),
    (["plain", "corrupt", "marked"], EXIT_ERROR),
    (["corrupt", "plain"], EXIT_ERROR),
    (["small", "marked"], EXIT_NOT_FOUND),  # a copy under one tile is read, not refused
])
def test_detect_several_files_mixes_exit_codes(capsys, files, tmp_path, names, expected):
    paths = [str(files[n]) if n in files else str(tmp_path / f"{n}.png") for n in names]
    code, stdout, stderr = run(capsys, "detect", *paths, "--json")
    assert code == expected
    rows = json.loads(stdout)
    assert isinstance(rows, list) and [r["input"] for r in rows] == paths  # every file reported
    for name, row in zip(names, rows):
        if name in ("marked",):
            assert row["found"] is True
        elif name in ("plain", "small"):
            assert row["found"] is False
        else:
            assert "error" in row and row["error"]


def test_detect_several_files_text(capsys, files):
    code, stdout, _ = run(capsys, "detect", str(files["marked"]), str(files["plain"]))
    assert code == EXIT_NOT_FOUND
    lines = stdout.strip().splitlines()
    assert len(lines) == 2
    assert "FOUND" in lines[0] and "no mark found" in lines[1]


def test_detect_answers_for_small_copies(capsys, files, tmp_path):
    """A copy under one tile may be a downscale of a marked image: detect reads it
    and answers (exit 1, not found), and says why when it is too small to hold
    anything."""
    code, stdout, stderr = run(capsys, "detect", str(files["small"]), "--json")
    assert code == EXIT_NOT_FOUND and not stderr
    assert json.loads(stdout)["found"] is False
    tiny = write_image(tmp_path / "tiny.png", np.zeros((40, 50, 3), np.uint8))
    code, stdout, _ = run(capsys, "detect", str(tiny), "--json")
    assert code == EXIT_NOT_FOUND and "50x40" in json.loads(stdout)["reason"]


@pytest.mark.parametrize("name, word", [("missing", "no such file"), ("corrupt", "corrupt")])
def test_detect_input_errors(capsys, files, tmp_path, name, word):
    # With several inputs, an error line that does not name its file is useless.
    path = files.get(name, tmp_path / "missing.png")
    code, stdout, stderr = run(capsys, "detect", str(path))
    assert code == EXIT_ERROR
    assert word in stderr and Path(path).name in stderr


def test_detect_not_an_image(capsys, tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is text, not a picture")
    code, _, stderr = run(capsys, "detect", str(path))
    assert code == EXIT_ERROR
    assert "not a recognised image" in stderr


# --------------------------------------------------------------------------- #
# Key files


def test_key_file_right_key_found(capsys, files):
    for key_file in ("key", "key_raw"):  # one trailing newline is not part of the key
        code, stdout, _ = run(capsys, "detect", str(files["marked_key"]),
                              "--key-file", str(files[key_file]))
        assert code == EXIT_OK, key_file
        assert "FOUND" in stdout


def test_key_file_wrong_key_not_found(capsys, files):
    code, _, _ = run(capsys, "detect", str(files["marked_key"]), "--key-file",
                     str(files["wrong_key"]))
    assert code == EXIT_NOT_FOUND
    code, _, _ = run(capsys, "detect", str(files["marked_key"]))  # public key
    assert code == EXIT_NOT_FOUND
    code, _, _ = run(capsys, "detect", str(files["marked"]), "--key-file", str(files["key"]))
    assert code == EXIT_NOT_FOUND


def test_embed_with_key_file(capsys, tmp_path, files):
    out = tmp_path / "k.png"
    code, _, _ = run(capsys, "embed", str(files["plain"]), "-o", str(out), "--provider", "3",
                     "--content-id", "4", "--key-file", str(files["key"]))
    assert code == EXIT_OK
    assert provmark.detect(np.asarray(Image.open(out)), key=KEY).payload == Payload(3, 4)
    assert run(capsys, "detect", str(out), "--key-file", str(files["key_raw"]))[0] == EXIT_OK
    assert run(capsys, "detect", str(out))[0] == EXIT_NOT_FOUND


@pytest.mark.parametrize("which", ["empty_key", "newline_key", "missing"])
def test_bad_key_file(capsys, files, tmp_path, which):
    key_file = files.get(which, tmp_path / "no-such-key.txt")
    code, _, stderr = run(capsys, "detect", str(files["marked"]), "--key-file", str(key_file))
    assert code == EXIT_ERROR
    assert "key file" in stderr
    out = tmp_path / "o.png"
    code, _, _ = run(capsys, "embed", str(files["plain"]), "-o", str(out), "--provider", "1",
                     "--content-id", "1", "--key-file", str(key_file))
    assert code == EXIT_ERROR
    assert not out.exists()


# --------------------------------------------------------------------------- #
# Usage and input errors of embed


def test_output_equal_to_input_refused(capsys, tmp_path, files):
    src = tmp_path / "in.png"
    src.write_bytes(files["plain"].read_bytes())
    before = src.read_bytes()
    for force in ([], ["--force"]):
        code, _, stderr = run(capsys, "embed", str(src), "-o", str(src), "--provider", "1",
                              "--content-id", "1", *force)
        assert code == EXIT_ERROR
        assert "input" in stderr
    assert src.read_bytes() == before


def test_existing_output_needs_force(capsys, tmp_path, files):
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    args = ["embed", str(files["plain"]), "-o", str(out), "--provider", "1", "--content-id", "1"]
    code, _, stderr = run(capsys, *args)
    assert code == EXIT_ERROR
    assert "already exists" in stderr and "--force" in stderr
    assert out.read_bytes() == b"keep me"
    code, _, _ = run(capsys, *args, "--force")
    assert code == EXIT_OK
    assert provmark.detect(np.asarray(Image.open(out))).payload == Payload(1, 1)


@pytest.mark.parametrize("args, word", [
    ([], "required"),  # no -o / --provider / --content-id
    (["-o", "{out}", "--provider", "1"], "content-id"),
    (["-o", "{out}", "--provider", "abc", "--content-id", "1"], "integer"),
    (["-o", "{out}", "--provider", "1", "--content-id", "1", "--label", "4"], "label"),
    (["-o", "{out}", "--provider", str(2**24), "--content-id", "1"], "provider"),
    (["-o", "{out}", "--provider", "-1", "--content-id", "1"], "provider"),
    (["-o", "{out}", "--provider", "1", "--content-id", str(2**40)], "content_id"),
    (["-o", "{out}", "--provider", "1", "--content-id", "1", "--quality", "0"], "quality"),
    (["-o", "{out}", "--provider", "1", "--content-id", "1", "--strength", "0"], "strength"),
    (["-o", "{dir}/out.bmp", "--provider", "1", "--content-id", "1"], "extension"),
    (["-o", "{dir}/nodir/out.png", "--provider", "1", "--content-id", "1"], "does not exist"),
    (["-o", "{out}", "--provider", "1", "--content-id", "1", "--bogus"], "unrecognized"),
])
def test_embed_usage_errors(capsys, tmp_path, files, args, word):
    out = tmp_path / "out.png"
    argv = [a.format(out=out, dir=tmp_path) for a in args]
    code, _, stderr = run(capsys, "embed", str(files["plain"]), *argv)
    assert code == EXIT_ERROR
    assert word in stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("name, word", [("missing", "no such file"), ("corrupt", "corrupt"),
                                        ("small", "256x256")])
def test_embed_input_errors(capsys, tmp_path, files, name, word):
    src = files.get(name, tmp_path / "missing.png")
    out = tmp_path / "out.png"
    code, _, stderr = run(capsys, "embed", str(src), "-o", str(out), "--provider", "1",
                          "--content-id", "1")
    assert code == EXIT_ERROR
    assert word in stderr
    assert not out.exists()


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["detect"], ["check"],
                                  ["detect", "--json"]])
def test_top_level_usage_errors(capsys, argv):
    code, _, stderr = run(capsys, *argv)
    assert code == EXIT_ERROR
    assert "usage" in stderr.lower()


def test_version(capsys):
    code, stdout, _ = run(capsys, "--version")
    assert code == 0 and provmark.__version__ in stdout


@pytest.mark.parametrize("sub", [None, "embed", "detect", "check", "demo"])
def test_help_has_an_example(capsys, sub):
    argv = ["--help"] if sub is None else [sub, "--help"]
    code, stdout, _ = run(capsys, *argv)
    assert code == 0
    assert "example" in stdout.lower()
    assert "provmark" in stdout
    assert "exit codes" in stdout


# --------------------------------------------------------------------------- #
# check and demo


def test_check_self_test_json(capsys, files):
    code, stdout, _ = run(capsys, "check", str(files["plain"]), "--self-test", "--json")
    assert code == EXIT_OK
    info = json.loads(stdout)
    assert info["ok"] is True and info["jpeg50_survives"] is True
    assert info["reasons"] == [] and info["tiles"] == pytest.approx(4.0)


def test_check_text_and_too_small(capsys, files):
    code, stdout, _ = run(capsys, "check", str(files["plain"]))
    assert code == EXIT_OK and "can carry the mark" in stdout
    # Too small for the API is still a readable file: check reports it, exit 2.
    code, stdout, stderr = run(capsys, "check", str(files["small"]), "--json")
    assert code == EXIT_ERROR
    info = json.loads(stdout)
    assert info["ok"] is False and any("256" in r for r in info["reasons"])


@pytest.mark.slow
def test_demo(capsys, tmp_path):
    out = tmp_path / "demo"
    code, stdout, stderr = run(capsys, "demo", "--out", str(out), "--json")
    assert code == EXIT_OK, stderr
    info = json.loads(stdout)
    names = ("marked.png", "difference_x10.png", "marked_q50.jpg")
    for name in names:
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    assert sorted(Path(f).name for f in info["files"]) == sorted(names)
    assert info["after_jpeg50"]["found"] is True
    assert info["after_jpeg50"]["payload"]["provider"] == info["payload_embedded"]["provider"]
    assert info["unmarked_original"]["found"] is False
    assert info["psnr_db"] >= 40
    # Running it again into the same directory works (it replaces its own outputs).
    assert run(capsys, "demo", "--out", str(out), "--json")[0] == EXIT_OK


# --------------------------------------------------------------------------- #
# The installed entry point


def test_installed_entry_point(files):
    exe = Path(sys.executable).with_name("provmark")
    assert exe.exists(), f"console script not installed next to {sys.executable}"
    proc = subprocess.run([str(exe), "detect", str(files["marked"]), str(files["plain"]),
                           "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_NOT_FOUND, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["found"] for r in rows] == [True, False]
    assert rows[0]["payload"]["content_id"] == 123456789


def test_embed_batch_writes_consecutive_content_ids(tmp_path, capsys):
    import cv2
    from skimage import data

    import provmark
    from provmark.cli import main

    src = tmp_path / "src"
    src.mkdir()
    for name in ("coffee", "chelsea"):
        cv2.imwrite(str(src / f"{name}.png"), cv2.resize(getattr(data, name)()[..., ::-1], (512, 384)))
    (src / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    code = main(["embed", str(src / "chelsea.png"), str(src / "broken.png"), str(src / "coffee.png"),
                 "-o", str(out), "--provider", "9", "--content-id", "500", "--format", ".jpg"])
    captured = capsys.readouterr()
    assert code == 2 and "broken.png" in captured.err  # one bad file: reported, others done
    found = {p.name: provmark.detect(np.asarray(Image.open(p).convert("RGB"))).payload
             for p in sorted(out.iterdir())}
    assert found == {"chelsea.jpg": provmark.Payload(9, 500), "coffee.jpg": provmark.Payload(9, 502)}


def test_embed_batch_needs_a_directory(tmp_path, files):
    from provmark.cli import main

    target = tmp_path / "file.png"
    target.write_bytes(b"x")
    assert main(["embed", str(files["plain"]), str(files["marked"]), "-o", str(target),
                 "--provider", "1", "--content-id", "1"]) == 2
