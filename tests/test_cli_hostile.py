"""Tests for the ``provmark`` command line against hostile input, races between
processes and failing file systems, and for output that says what really happened.

Most tests run the CLI in-process; the race and the file-size limit run real
processes (the installed interpreter running ``provmark.cli.main``). Every test here
failed before the fix it guards (issue: hostile input, races and honest output).
"""

from __future__ import annotations

import errno
import io
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import provmark
from provmark import Payload
from provmark._io import read_image, write_image
from provmark.cli import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK, main

pytestmark = pytest.mark.usefixtures("numba_one_thread")

PAYLOAD = Payload(provider=77, content_id=4242, label=1)
SUBCOMMANDS = ("embed", "detect", "check", "label", "inspect")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``provmark argv...`` in-process; returns (exit code, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: --help, usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """Tens of bytes of PNG whose header claims ``width`` x ``height`` RGB pixels."""
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"")) + _chunk(b"IEND", b""))


def argv_for(sub: str, src: Path, out: Path) -> list[str]:
    """A complete command line of ``sub`` reading ``src`` (writing ``out``)."""
    return {
        "embed": ["embed", str(src), "-o", str(out), "--provider", "1", "--content-id", "2"],
        "detect": ["detect", str(src)],
        "check": ["check", str(src)],
        "label": ["label", str(src), "-o", str(out), "--provider", "1", "--content-id", "2",
                  "--content-producer", "ACME", "--produce-id", "p-2"],
        "inspect": ["inspect", str(src), "--fast"],
    }[sub]


@pytest.fixture(scope="module")
def files(tmp_path_factory, photo_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile")
    photo = photo_factory("coffee", 512, 384)
    paths = {"plain": write_image(d / "plain.png", photo),
             "plain2": write_image(d / "plain2.png", photo_factory("chelsea", 512, 384)),
             "marked": write_image(d / "marked.png", provmark.embed(photo, PAYLOAD)),
             "flat": write_image(d / "flat.png", np.full((256, 256, 3), 128, np.uint8))}
    paths["bomb"] = d / "bomb.png"
    paths["bomb"].write_bytes(bomb_png())
    return paths


def _one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# --------------------------------------------------------------------------- #
# A decompression bomb: exit 2 everywhere, and batches go on


@pytest.mark.parametrize("sub", SUBCOMMANDS)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_bomb_exits_2_in_every_subcommand(capsys, tmp_path, files, sub, as_json):
    out = tmp_path / "out.png"
    argv = argv_for(sub, files["bomb"], out) + (["--json"] if as_json else [])
    code, _, stderr = run(capsys, *argv)
    assert code == EXIT_ERROR
    line = _one_line_error(stderr)
    assert line.startswith(f"provmark {sub}: ") and "bomb.png" in line
    assert "100,000,000 pixels" in line and "--max-pixels" in line
    assert not out.exists()


def test_bomb_through_the_installed_entry_point(files, tmp_path):
    exe = Path(sys.executable).with_name("provmark")
    for argv in (["detect", str(files["bomb"])],
                 argv_for("embed", files["bomb"], tmp_path / "o.png")):
        proc = subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=120)
        assert proc.returncode == EXIT_ERROR, proc.stderr
        _one_line_error(proc.stderr)
        assert "30000x30000" in proc.stderr


def test_detect_mixed_batch_reports_every_good_file(capsys, files):
    paths = [str(files["marked"]), str(files["bomb"]), str(files["plain"])]
    code, stdout, stderr = run(capsys, "detect", *paths, "--json")
    assert code == EXIT_ERROR
    rows = json.loads(stdout)
    assert [r["input"] for r in rows] == paths
    assert rows[0]["found"] is True and rows[0]["payload"]["content_id"] == PAYLOAD.content_id
    assert "30000x30000" in rows[1]["error"]
    assert rows[2]["found"] is False
    _one_line_error(stderr)


def test_batch_embed_goes_on_past_a_bomb(capsys, tmp_path, files):
    out = tmp_path / "out"
    code, stdout, stderr = run(capsys, "embed", str(files["plain"]), str(files["bomb"]),
                               str(files["plain2"]), "-o", str(out), "--provider", "5",
                               "--content-id", "10", "--json")
    assert code == EXIT_ERROR
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [("error" in r) for r in rows] == [False, True, False]
    assert sorted(p.name for p in out.iterdir()) == ["plain.png", "plain2.png"]
    assert provmark.detect(read_image(out / "plain2.png").rgb).payload == Payload(5, 12)
    assert "bomb.png" in _one_line_error(stderr)


def test_max_pixels_option(capsys, files, tmp_path):
    code, _, stderr = run(capsys, "detect", str(files["plain"]), "--max-pixels", "150000")
    assert code == EXIT_ERROR
    assert "512x384" in stderr and "150,000 pixels" in stderr
    code, _, _ = run(capsys, "detect", str(files["marked"]), "--max-pixels", "2e5")
    assert code == EXIT_OK
    code, _, stderr = run(capsys, "detect", str(files["marked"]), "--max-pixels", "many")
    assert code == EXIT_ERROR and "--max-pixels" in stderr


# --------------------------------------------------------------------------- #
# Eight processes racing to write the same output


_RACER = """
import sys, time
from pathlib import Path
from provmark.cli import main
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
ready.write_text("ready")
while not go.exists():
    time.sleep(0.002)
sys.exit(main(sys.argv[3:]))
"""


def _race(tmp_path: Path, src: Path, n: int, extra: list[str]) -> tuple[Path, list]:
    """Start ``n`` processes that each embed ``src`` into the same output with a
    different content ID, release them at once, and collect their results."""
    script = tmp_path / "racer.py"
    script.write_text(_RACER)
    sync, out_dir = tmp_path / "sync", tmp_path / "out"
    sync.mkdir()
    out_dir.mkdir()
    out = out_dir / "race.png"
    go = sync / "go"
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    procs = [subprocess.Popen(
        [sys.executable, str(script), str(sync / f"ready-{i}"), str(go), "embed", str(src),
         "-o", str(out), "--provider", "9", "--content-id", str(100 + i), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in range(n)]
    try:
        deadline = time.monotonic() + 120
        while len(list(sync.glob("ready-*"))) < n:
            assert time.monotonic() < deadline, "racers did not start"
            assert all(p.poll() is None for p in procs), "a racer died while starting"
            time.sleep(0.01)
        go.write_text("go")
        results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return out, results


def test_eight_processes_racing_for_one_output(tmp_path, files):
    out, results = _race(tmp_path, files["plain"], 8, [])
    codes = [code for code, _, _ in results]
    assert sorted(codes) == [EXIT_OK] + [EXIT_ERROR] * 7, results
    for code, stdout, stderr in results:
        assert "Traceback" not in stderr
        if code == EXIT_ERROR:
            assert "already exists" in _one_line_error(stderr) and stdout == ""
    winner = codes.index(EXIT_OK)
    assert "marked" in results[winner][1]
    # The file is whole and it is the winner's.
    assert provmark.detect(read_image(out).rgb).payload == Payload(9, 100 + winner)
    assert [p.name for p in out.parent.iterdir()] == ["race.png"]  # no temp files


def test_racing_with_force_leaves_one_whole_file(tmp_path, files):
    out, results = _race(tmp_path, files["plain"], 4, ["--force"])
    assert [code for code, _, _ in results] == [EXIT_OK] * 4, results
    payload = provmark.detect(read_image(out).rgb).payload
    assert payload is not None and 100 <= payload.content_id < 104
    assert [p.name for p in out.parent.iterdir()] == ["race.png"]


# --------------------------------------------------------------------------- #
# Outputs the file system refuses


def _refuse(monkeypatch, code: int) -> None:
    """Make every new file in the destination directory fail with ``code`` (what a
    read-only file system, an immutable directory or a full disk does)."""
    import tempfile

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", fail)


@pytest.mark.parametrize("code, word", [(errno.EROFS, "read-only"), (errno.EPERM, "not permitted"),
                                        (errno.ENOSPC, "disk is full")])
@pytest.mark.parametrize("sub", ["embed", "label"])
def test_unwritable_output_is_one_line(capsys, monkeypatch, tmp_path, files, sub, code, word):
    _refuse(monkeypatch, code)
    out = tmp_path / "out.png"
    rc, _, stderr = run(capsys, *argv_for(sub, files["plain"], out))
    assert rc == EXIT_ERROR
    line = _one_line_error(stderr)
    assert str(out) in line and word in line.lower()


def test_unwritable_output_in_a_batch_is_reported_and_the_batch_goes_on(
        capsys, monkeypatch, tmp_path, files):
    import tempfile

    real = tempfile.mkstemp

    def refuse_the_first(*args, **kwargs):
        if ".plain.png." in kwargs.get("prefix", ""):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse_the_first)
    out = tmp_path / "out"
    rc, stdout, stderr = run(capsys, "embed", str(files["plain"]), str(files["plain2"]),
                             "-o", str(out), "--provider", "1", "--content-id", "1")
    assert rc == EXIT_ERROR
    assert "plain.png" in _one_line_error(stderr) and "read-only" in stderr.lower()
    assert [p.name for p in out.iterdir()] == ["plain2.png"]
    assert "plain2.png: marked" in stdout


def test_batch_with_an_existing_output_goes_on(capsys, tmp_path, files):
    out = tmp_path / "out"
    out.mkdir()
    (out / "plain.png").write_bytes(b"keep")
    (out / "plain2.png").mkdir()  # a directory where the output should go
    third = tmp_path / "third.png"
    third.write_bytes(files["marked"].read_bytes())
    rc, stdout, stderr = run(capsys, "embed", str(files["plain"]), str(files["plain2"]),
                             str(third), "-o", str(out), "--provider", "1", "--content-id", "1")
    assert rc == EXIT_ERROR
    errors = stderr.strip().splitlines()
    assert len(errors) == 2 and "Traceback" not in stderr
    assert "plain.png: already exists" in errors[0] and "plain2.png: is a directory" in errors[1]
    assert (out / "plain.png").read_bytes() == b"keep"
    assert (out / "third.png").is_file()


def test_demo_into_an_unwritable_place(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(provmark, "embed", _must_not_run)
    target = tmp_path / "a-file"
    target.write_bytes(b"x")
    rc, _, stderr = run(capsys, "demo", "--out", str(target))
    assert rc == EXIT_ERROR and "not a directory" in _one_line_error(stderr)
    _refuse_tmpfile(monkeypatch)
    rc, _, stderr = run(capsys, "demo", "--out", str(tmp_path / "d"))
    assert rc == EXIT_ERROR and "read-only" in _one_line_error(stderr).lower()


def _refuse_tmpfile(monkeypatch) -> None:
    import tempfile

    def fail(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "TemporaryFile", fail)


def _must_not_run(*args, **kwargs):
    raise AssertionError("the work ran although the command line was already known to fail")


_LIMITED = """
import resource, signal, sys
from provmark.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
warm = main(sys.argv[2:4] + ["-o", sys.argv[1], "--provider", "1", "--content-id", "1"])
assert warm == 0, warm  # loads the kernels (and writes their cache) before the limit
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
sys.exit(main(sys.argv[2:]))
"""


def test_a_full_disk_is_one_line_and_the_batch_goes_on(tmp_path, files):
    # A real write failure: the process may not write files over 64 KiB (EFBIG, as
    # a full disk gives ENOSPC); the PNG output is larger, the JPEG one is not.
    script = tmp_path / "limited.py"
    script.write_text(_LIMITED)
    small = tmp_path / "small.jpg"
    Image.open(files["plain2"]).save(small, quality=90)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "warm.png"), "embed", str(files["plain"]),
         str(small), "-o", str(out), "--provider", "3", "--content-id", "30", "--quality", "30"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "NUMBA_NUM_THREADS": "1"})
    assert proc.returncode == EXIT_ERROR, proc.stderr
    line = _one_line_error(proc.stderr)
    assert str(out / "plain.png") in line and "too large" in line.lower()
    assert [p.name for p in out.iterdir()] == ["small.jpg"]  # no partial or temp file
    assert provmark.detect(read_image(out / "small.jpg").rgb).payload == Payload(3, 31)


# --------------------------------------------------------------------------- #
# Silent loss: refused with a message, or converted with a warning


def test_unsupported_and_lossy_inputs_are_refused(capsys, tmp_path, files):
    import cv2

    rgb = read_image(files["plain"]).rgb
    bmp = tmp_path / "in.bmp"
    Image.fromarray(rgb).save(bmp)
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), rgb[..., ::-1].astype(np.uint16) * 257)
    anim = tmp_path / "anim.webp"
    frames = [Image.fromarray(np.roll(rgb, 9 * i, axis=0)) for i in range(2)]
    frames[0].save(anim, save_all=True, append_images=frames[1:], quality=90)
    for src, word in ((bmp, "BMP files are not supported"), (deep, "16-bit"),
                      (anim, "animated WebP with 2 frames")):
        for sub in ("embed", "detect"):
            out = tmp_path / "out.png"
            rc, _, stderr = run(capsys, *argv_for(sub, src, out))
            assert rc == EXIT_ERROR and word in _one_line_error(stderr)
            assert not out.exists()


def test_multi_picture_jpeg_warns_what_is_dropped(capsys, tmp_path, files):
    rgb = read_image(files["plain"]).rgb
    src = tmp_path / "camera.jpg"
    Image.fromarray(rgb).save(src, format="MPO", save_all=True,
                              append_images=[Image.fromarray(rgb[::-1])], quality=95)
    out = tmp_path / "out.jpg"
    rc, stdout, stderr = run(capsys, *argv_for("embed", src, out), "--json")
    assert rc == EXIT_OK
    assert "warning" in stderr and "MPO" in stderr
    assert "MPO" in json.loads(stdout)["warnings"][0]


@pytest.mark.parametrize("content, ok", [(b"k" * 4096, True), (b"k" * 4097, False)],
                         ids=["4096 bytes", "4097 bytes"])
def test_key_file_size_limit(capsys, tmp_path, files, content, ok):
    key = tmp_path / "key.bin"
    key.write_bytes(content)
    rc, _, stderr = run(capsys, "detect", str(files["marked"]), "--key-file", str(key))
    if ok:
        assert rc == EXIT_NOT_FOUND  # read as a key: the wrong one
    else:
        assert rc == EXIT_ERROR and "4096 bytes" in _one_line_error(stderr)


def test_key_file_dev_zero(capsys, files):
    t0 = time.perf_counter()
    rc, _, stderr = run(capsys, "detect", str(files["marked"]), "--key-file", "/dev/zero")
    assert rc == EXIT_ERROR and "larger than 4096 bytes" in _one_line_error(stderr)
    assert time.perf_counter() - t0 < 5


# --------------------------------------------------------------------------- #
# Honest output


def test_check_self_test_failure_is_not_can_carry(capsys, files):
    rc, stdout, _ = run(capsys, "check", str(files["flat"]), "--self-test")
    assert rc == EXIT_NOT_FOUND
    assert "can carry the mark" not in stdout and "FAILED" in stdout
    rc, stdout, _ = run(capsys, "check", str(files["flat"]), "--self-test", "--json")
    assert rc == EXIT_NOT_FOUND and json.loads(stdout)["jpeg50_survives"] is False
    # Without the self-test nothing says it failed.
    rc, stdout, _ = run(capsys, "check", str(files["flat"]))
    assert rc == EXIT_OK and "can carry the mark" in stdout
    rc, stdout, _ = run(capsys, "check", "--help")
    assert "1 it carries the mark but the self-test failed" in " ".join(stdout.split())


def test_format_with_one_input(capsys, monkeypatch, tmp_path, files):
    out = tmp_path / "out.png"
    monkeypatch.setattr(provmark, "embed", _must_not_run)
    rc, _, stderr = run(capsys, *argv_for("embed", files["plain"], out), "--format", ".jpg")
    assert rc == EXIT_ERROR and "--format .jpg" in _one_line_error(stderr)
    assert not out.exists()
    monkeypatch.undo()
    # -o naming a directory: the output goes inside, in the --format asked for.
    rc, stdout, _ = run(capsys, *argv_for("embed", files["plain"], tmp_path), "--format", ".jpg")
    assert rc == EXIT_OK and (tmp_path / "plain.jpg").is_file()


@pytest.mark.parametrize("sub, argv_extra, setup, word", [
    ("embed", ["--quality", "0"], None, "quality"),
    ("embed", [], "exists", "already exists"),
    ("embed", [], "nodir", "does not exist"),
    ("label", [], "exists", "already exists"),
    ("label", ["--quality", "101"], None, "quality"),
    ("inspect", ["--html", "{tmp}/no-such-dir/report.html"], None, "does not exist"),
])
def test_errors_come_before_the_work(capsys, monkeypatch, tmp_path, files, sub, argv_extra,
                                     setup, word):
    for name in ("embed", "label", "inspect", "detect"):
        monkeypatch.setattr(provmark, name, _must_not_run)
    out = tmp_path / ("no-such-dir/out.png" if setup == "nodir" else "out.png")
    if setup == "exists":
        out.write_bytes(b"keep")
    argv = argv_for(sub, files["plain"], out) + [a.format(tmp=tmp_path) for a in argv_extra]
    rc, _, stderr = run(capsys, *argv)
    assert rc == EXIT_ERROR and word in stderr and "Traceback" not in stderr
    if setup == "exists":
        assert out.read_bytes() == b"keep"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_and_result_lines_do_not_overwrite_each_other(monkeypatch, tmp_path, files):
    screen = _Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setattr(sys, "stderr", screen)
    out = tmp_path / "out"
    rc = main(["embed", str(files["plain"]), str(files["bomb"]), str(files["plain2"]),
               "-o", str(out), "--provider", "1", "--content-id", "1"])
    assert rc == EXIT_ERROR
    # What a terminal shows: a carriage return starts the line again.
    visible = [line.rsplit("\r", 1)[-1].rstrip() for line in screen.getvalue().split("\n")]
    visible = [line for line in visible if line]
    results = [line for line in visible if "marked provider" in line or "provmark embed:" in line]
    assert len(results) == 3
    assert results[0].startswith(str(out / "plain.png") + ": marked")
    assert results[1].startswith("provmark embed: ") and "bomb.png" in results[1]
    assert results[2].startswith(str(out / "plain2.png") + ": marked")
    assert visible[-1].startswith("[" + "#" * 30 + "] 3/3")


def _unmarked_detection(found: bool, used: bool):
    from provmark import Detection

    return Detection(
        found=found, payload=PAYLOAD if found else None, false_alarm_probability=1e-20 if found
        else 1.0, sync_score=3.1, hypotheses=5000, reason="decoded" if found else
        "Reed-Solomon decoding failed",
        details={"decode_attempts": 4, "aligned_sync_score": 0.4,
                 "candidates": [(3.1, 2, 4, 1, 0)], "tile_phase": (1, 0),
                 "template": {"score": 2.3, "scale_y": 0.91, "scale_x": 0.92,
                              "rotation": 1.5, "used": used},
                 "scale_sweep": None})


def test_explain_never_says_a_geometry_was_used_when_nothing_was_found(capsys, monkeypatch,
                                                                        files):
    monkeypatch.setattr(provmark, "detect", lambda *a, **k: _unmarked_detection(False, True))
    rc, stdout, _ = run(capsys, "detect", str(files["plain"]), "--explain")
    assert rc == EXIT_NOT_FOUND
    text = stdout.lower()
    assert "searched" in text and "no geometry was used" in text
    assert "; used" not in text and "used for the decoding" not in text
    assert "chosen" not in text  # no findings on a "not found"
    rc, stdout, _ = run(capsys, "detect", str(files["plain"]), "--explain", "--json")
    assert json.loads(stdout)["search"]["template"]["used"] is False


def test_explain_says_used_when_the_decoding_used_it(capsys, monkeypatch, files):
    monkeypatch.setattr(provmark, "detect", lambda *a, **k: _unmarked_detection(True, True))
    rc, stdout, _ = run(capsys, "detect", str(files["plain"]), "--explain")
    assert rc == EXIT_OK and "used for the decoding" in stdout and "chosen" in stdout
    rc, stdout, _ = run(capsys, "detect", str(files["plain"]), "--explain", "--json")
    assert json.loads(stdout)["search"]["template"]["used"] is True
