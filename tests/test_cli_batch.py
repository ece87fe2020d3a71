"""The command line's batch mode: embed/label over directories and URLs with a
manifest, resuming after SIGKILL or Ctrl-C, bad inputs, and detect/inspect over a
directory with --jsonl and a summary."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import provmark
from provmark.cli import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK, main

pytestmark = pytest.mark.usefixtures("numba_one_thread")

NAMES = ("astronaut", "coffee", "chelsea", "rocket")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _photos(photo_factory, d: Path, n: int, size=(320, 256)) -> list[Path]:
    """``n`` small photos in ``d`` (PNG, JPEG and WebP in turn), two in a subdirectory."""
    paths = []
    for i in range(n):
        rgb = photo_factory(NAMES[i % 4], size[0] + 8 * (i % 5), size[1])
        ext, fmt = [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP")][i % 3]
        p = d / ("deep" if i in (1, 5) else "") / f"img{i:02d}.{ext}"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(rgb)).save(p, format=fmt,
                                                        **({} if fmt == "PNG" else {"quality": 92}))
        paths.append(p)
    return paths


def _rows(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]


def _temporaries(d: Path) -> list[Path]:
    return [p for p in d.rglob("*") if p.name.endswith(".tmp")]


def _check_complete(src: Path, out: Path, manifest: Path, first_id: int) -> list[dict]:
    """Every input marked exactly once, each output decodes its row's payload, IDs
    consecutive in sorted input order, no temporary file."""
    rows = _rows(manifest)
    done = [r for r in rows if r["status"] == "done"]
    inputs = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    assert sorted(r["name"] for r in done) == inputs  # each input exactly once
    assert len({r["input"] for r in done}) == len(done)
    for r in done:
        det = provmark.detect(np.asarray(Image.open(r["output"]).convert("RGB")))
        assert det.found and det.payload.content_id == r["content_id"]
        assert r["content_id"] == first_id + inputs.index(r["name"])
    outputs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert outputs == sorted(Path(r["output"]).relative_to(out).as_posix() for r in done)
    assert _temporaries(out) == []
    return rows


def _cmd(src, out, manifest, *extra) -> list[str]:
    return [sys.executable, "-m", "provmark", "embed", str(src), "-o", str(out), "--provider",
            "4242", "--content-id", "1000", "--manifest", str(manifest), *extra]


def _alive_in_session(sid: int, wait: float = 10.0) -> list[str]:
    """Processes of session ``sid`` still running (zombies excluded), after up to
    ``wait`` seconds for them to go."""
    deadline = time.monotonic() + wait
    while True:
        ps = subprocess.run(["ps", "-o", "stat=,pid=,args=", "-s", str(sid)],
                            capture_output=True, text=True).stdout
        alive = [line for line in ps.splitlines() if line.strip() and not line.lstrip().startswith("Z")]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _as_in_a_terminal() -> None:
    """Give the batch the default Ctrl-C of a terminal's foreground job: a test run
    started in the background (``make test &`` in a script) inherits SIGINT ignored,
    and the batch would then finish instead of stopping."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_rows(proc, manifest: Path, n: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if manifest.exists() and len(_rows(manifest)) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the batch did not get going")


# --------------------------------------------------------------------------- #
# Killed halfway, then run again


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "Ctrl-C"])
def test_interrupted_batch_resumes_and_marks_each_input_once(tmp_path, photo_factory, how):
    src, out, manifest = tmp_path / "in", tmp_path / "out", tmp_path / "run.jsonl"
    n = 16
    _photos(photo_factory, src, n)
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    proc = subprocess.Popen(_cmd(src, out, manifest, "--workers", "2"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_as_in_a_terminal)
    try:
        _wait_for_rows(proc, manifest, 4)
        if how == "SIGKILL":
            os.kill(proc.pid, signal.SIGKILL)  # the driver only: its workers must die too
        else:
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    if how == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
        assert _alive_in_session(proc.pid) == [], "workers outlived their killed driver"
    else:
        assert proc.returncode == 130 and "interrupted:" in err and "run it again" in err
    first = _rows(manifest)
    assert 4 <= len(first) < n, "not interrupted halfway"
    for r in first:  # a row only for an output that exists, whole
        assert r["status"] == "done" and Path(r["output"]).is_file()
    proc = subprocess.run(_cmd(src, out, manifest, "--workers", "2"), env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert f"{len(first)} already done" in proc.stderr
    rows = _check_complete(src, out, manifest, 1000)
    assert rows[: len(first)] == first  # the first run's lines are kept as they were
    # a third run has nothing left to do
    proc = subprocess.run(_cmd(src, out, manifest), env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == EXIT_OK and f"0 marked, 0 failed, {n} already done" in proc.stderr
    assert len(_rows(manifest)) == len(rows)


def test_rerun_without_manifest_adopts_identical_outputs(capsys, tmp_path, photo_factory):
    src, out = tmp_path / "in", tmp_path / "out"
    _photos(photo_factory, src, 3)
    argv = ["embed", src, "-o", out, "--provider", "1", "--content-id", "5", "--workers", "1"]
    assert run(capsys, *argv)[0] == EXIT_OK
    victim = out / "img02.webp"
    victim.unlink()  # as if the first run had been killed before writing it
    (out / ".img02.webp.k1ll3d_x.tmp").write_bytes(b"half an image")  # ... while writing it
    code, stdout, err = run(capsys, *argv, "--json")
    assert code == EXIT_OK, err
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [r["reused"] for r in rows] == [True, True, False]
    assert "2 outputs found complete and kept" in err and victim.is_file()
    assert "removed 1 temporary file" in err and _temporaries(out) == []


# --------------------------------------------------------------------------- #
# Bad inputs, formats, IDs, labels


def _deep_png(path: Path) -> None:
    import cv2

    cv2.imwrite(str(path), np.full((300, 300, 3), 40000, np.uint16))


def test_bad_inputs_are_reported_and_the_run_goes_on(capsys, tmp_path, photo_factory):
    src, out, manifest = tmp_path / "in", tmp_path / "out", tmp_path / "m.jsonl"
    _photos(photo_factory, src, 3)
    (src / "corrupt.jpg").write_bytes((src / "deep" / "img01.jpg").read_bytes()[:-4000])
    (src / "notes.png").write_bytes(b"a text file named like an image")
    _deep_png(src / "deep16.png")
    code, stdout, err = run(capsys, "embed", src, "-o", out, "--provider", "3",
                            "--content-id", "1", "--manifest", manifest, "--format", ".jpg")
    assert code == EXIT_ERROR
    rows = {r["name"]: r for r in _rows(manifest)}
    assert rows["corrupt.jpg"]["status"] == "failed" and "corrupt" in rows["corrupt.jpg"]["error"]
    assert "16-bit PNG" in rows["deep16.png"]["error"]
    assert "not a recognised image" in rows["notes.png"]["error"]
    assert sum(r["status"] == "done" for r in rows.values()) == 3
    assert "3 marked, 3 failed" in err
    assert len([line for line in err.splitlines() if line.startswith("provmark embed: ")]) == 3
    assert sorted(p.name for p in out.rglob("*.jpg")) == ["img00.jpg", "img01.jpg", "img02.jpg"]


def test_content_ids_from_csv_and_label_batch(capsys, tmp_path, photo_factory):
    src, out = tmp_path / "in", tmp_path / "out"
    paths = _photos(photo_factory, src, 3)
    csv = tmp_path / "ids.csv"
    csv.write_text("input,content_id,produce_id\nimg00.png,77,gen-a\ndeep/img01.jpg,78,gen-b\n"
                   f"{paths[2]},79,gen-c\n")
    code, stdout, err = run(capsys, "label", src, "-o", out, "--provider", "9",
                            "--content-ids", csv, "--content-producer", "ACME-9", "--json")
    assert code == EXIT_OK, err
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [(r["name"], r["content_id"], r["produce_id"]) for r in rows] == [
        ("deep/img01.jpg", 78, "gen-b"), ("img00.png", 77, "gen-a"), ("img02.webp", 79, "gen-c")]
    rep = provmark.inspect(out / "deep" / "img01.jpg")
    assert rep.verdict == "consistent" and rep.metadata.label.produce_id == "gen-b"
    assert rep.detection.payload.content_id == 78


def test_label_batch_needs_a_produce_id_template(capsys, tmp_path, photo_factory):
    src = tmp_path / "in"
    _photos(photo_factory, src, 2)
    code, _, err = run(capsys, "label", src, "-o", tmp_path / "out", "--provider", "9",
                       "--content-id", "1", "--content-producer", "ACME", "--produce-id", "same")
    assert code == EXIT_ERROR and "same ProduceID" in err
    code, stdout, err = run(capsys, "label", src, "-o", tmp_path / "out", "--provider", "9",
                            "--content-id", "1", "--content-producer", "ACME",
                            "--produce-id", "img-{content_id}", "--no-explicit")
    assert code == EXIT_OK, err
    assert "ProduceID=img-1" in stdout and "ProduceID=img-2" in stdout


def test_usage_errors(capsys, tmp_path, photo_factory):
    src = tmp_path / "in"
    _photos(photo_factory, src, 2)
    base = ["embed", src, "-o", tmp_path / "out", "--provider", "1"]
    for extra, word in ((["--content-id", "1", "--content-id-from-name"], "not allowed"),
                        (["--content-id", "1", "--ray-address", "auto"], "--engine ray"),
                        (["--content-id", "1", "--workers", "0"], "--workers 0"),
                        (["--content-id", "1", "--manifest", tmp_path / "no" / "m.jsonl"],
                         "does not exist"),
                        (["--content-id", "1", "--manifest", "s3://b/m.jsonl"], "local file"),
                        (["--content-id", "1", "-o", src / "marked"], "inside the input")):
        code, _, err = run(capsys, *base, *extra)
        assert code == EXIT_ERROR and word in err, (extra, err)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_memory_urls_through_the_command_line(capsys, images_in_memory):
    code, stdout, err = run(capsys, "embed", "memory://cli-in/", "-o", "memory://cli-out/",
                            "--provider", "12", "--content-id-from-name", "--json")
    assert code == EXIT_OK, err
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert len(rows) == 2 and all(r["output"].startswith("memory://cli-out/") for r in rows)
    code, stdout, err = run(capsys, "detect", "memory://cli-out/", "--jsonl")
    assert code == EXIT_OK, err
    found = [json.loads(line) for line in stdout.splitlines()]
    from provmark._batch import name_content_id

    assert sorted(r["payload"]["content_id"] for r in found) == sorted(
        name_content_id(n) for n in ("a.png", "b.jpg"))
    assert "2 with a mark" in err and "providers 12: 2" in err


@pytest.fixture
def images_in_memory(photo_factory):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    for name, fmt in (("a.png", "PNG"), ("b.jpg", "JPEG")):
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(photo_factory("coffee", 320, 256))).save(buf, fmt)
        fs.pipe_file(f"/cli-in/{name}", buf.getvalue())
    yield fs
    for d in ("/cli-in", "/cli-out"):
        if fs.exists(d):
            fs.rm(d, recursive=True)


# --------------------------------------------------------------------------- #
# detect and inspect over a directory


def test_detect_and_inspect_a_directory(capsys, tmp_path, photo_factory):
    src, out = tmp_path / "in", tmp_path / "corpus"
    _photos(photo_factory, src, 3)
    assert run(capsys, "embed", src, "-o", out, "--provider", "55", "--content-id", "1")[0] == 0
    (out / "plain.png").write_bytes((src / "img00.png").read_bytes())
    (out / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 nope")
    code, stdout, err = run(capsys, "detect", out, "--jsonl", "--workers", "1")
    assert code == EXIT_ERROR  # one unreadable file
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [Path(r["input"]).name for r in rows] == [
        "broken.jpg", "img01.jpg", "img00.png", "img02.webp", "plain.png"]
    assert "error" in rows[0] and [r.get("found") for r in rows[1:]] == [True, True, True, False]
    assert ("5 images" in err and "3 with a mark, 1 without, 1 errors" in err
            and "providers 55: 3" in err and "labels 1: 3" in err)
    (out / "broken.jpg").unlink()
    code, stdout, err = run(capsys, "inspect", out, "--fast", "--jsonl")
    assert code == EXIT_NOT_FOUND
    verdicts = [json.loads(line)["verdict"] for line in stdout.splitlines()]
    assert verdicts == ["metadata stripped, watermark present"] * 3 + ["no label"]
    assert "verdicts metadata stripped, watermark present: 3, no label: 1" in err


@pytest.mark.slow
def test_detect_with_two_workers_matches_one(capsys, tmp_path, photo_factory):
    src, out = tmp_path / "in", tmp_path / "marked"
    _photos(photo_factory, src, 6)
    assert run(capsys, "embed", src, "-o", out, "--provider", "8", "--content-id", "1")[0] == 0
    results = []
    for workers in ("1", "2"):
        code, stdout, _ = run(capsys, "detect", out, "--json", "--workers", workers)
        assert code == EXIT_OK
        results.append([(r["input"], r["payload"]) for r in json.loads(stdout)])
    assert results[0] == results[1]


# --------------------------------------------------------------------------- #
# --engine ray: the CLI hands the planned tasks to provmark.integrations.ray.run_batch


def test_engine_ray_is_called_with_the_plan(capsys, tmp_path, photo_factory, monkeypatch):
    import types

    import provmark.integrations
    from provmark import _batch

    src, manifest = tmp_path / "in", tmp_path / "m.jsonl"
    _photos(photo_factory, src, 3)
    calls = []

    def run_batch(tasks, options, *, manifest=None, workers=None, progress=None, address=None):
        calls.append({"tasks": tasks, "options": options, "manifest": manifest,
                      "workers": workers, "address": address})
        return _batch.run_batch(tasks, options, manifest=manifest, workers=1, progress=progress)

    fake = types.ModuleType("provmark.integrations.ray")
    fake.run_batch = run_batch
    monkeypatch.setitem(sys.modules, "provmark.integrations.ray", fake)
    monkeypatch.setattr(provmark.integrations, "ray", fake, raising=False)
    code, stdout, err = run(capsys, "embed", src, "-o", tmp_path / "out", "--provider", "6",
                            "--content-id", "10", "--manifest", manifest, "--engine", "ray",
                            "--workers", "3", "--ray-address", "ray://head:10001")
    assert code == EXIT_OK, err
    (call,) = calls
    assert [t.payload.content_id for t in call["tasks"]] == [10, 11, 12]
    assert call["workers"] == 3 and call["address"] == "ray://head:10001"
    assert isinstance(call["manifest"], _batch.Manifest) and call["options"].mode == "embed"
    assert len(_rows(manifest)) == 3 and "3 marked, 0 failed" in err
    monkeypatch.setitem(sys.modules, "provmark.integrations.ray", None)  # Ray not installed
    monkeypatch.delattr(provmark.integrations, "ray")
    code, _, err = run(capsys, "embed", src, "-o", tmp_path / "out2", "--provider", "6",
                       "--content-id", "10", "--engine", "ray")
    assert code == EXIT_ERROR and "pip install 'provmark[ray]'" in err
