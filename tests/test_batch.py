"""The batch engine (provmark._batch): planning, the per-item work, the manifest and
resuming, fsspec locations (memory://) and the local pool."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import provmark
from provmark import _batch
from provmark._batch import BatchError, IdPolicy, Manifest, Options, Row

pytestmark = pytest.mark.usefixtures("numba_one_thread")

PROVIDER = 4242


def _encode(rgb: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_16bit(size: int = 260) -> bytes:
    raw = b"".join(b"\x00" + b"\x80\x00" * 3 * size for _ in range(size))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def images(photo_factory) -> dict[str, bytes]:
    """Four small photos as PNG/JPEG/WebP files' bytes, keyed by file name."""
    out = {}
    for i, (name, fmt, ext) in enumerate([("coffee", "PNG", "png"), ("chelsea", "JPEG", "jpg"),
                                          ("astronaut", "WEBP", "webp"), ("rocket", "PNG", "png")]):
        rgb = photo_factory(name, 320 + 16 * i, 288)
        out[f"{name}.{ext}"] = _encode(rgb, fmt, **({} if fmt == "PNG" else {"quality": 92}))
    return out


@pytest.fixture
def src_dir(tmp_path, images) -> Path:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    for i, (name, data) in enumerate(sorted(images.items())):
        (d / ("sub" if i == 3 else "") / name).write_bytes(data)
    return d


def _decode(data: bytes) -> provmark.Payload | None:
    return provmark.detect_bytes(data).payload


# --------------------------------------------------------------------------- #
# Listing and planning


def test_list_sources_of_a_directory(src_dir, tmp_path):
    (src_dir / "notes.txt").write_text("not listed")
    (src_dir / ".hidden.png").write_bytes(b"skipped")
    sources, corpus = _batch.list_sources([src_dir])
    assert corpus
    assert [s.name for s in sources] == ["astronaut.webp", "chelsea.jpg", "coffee.png",
                                         "sub/rocket.png"]
    one, corpus = _batch.list_sources([src_dir / "coffee.png", tmp_path / "missing.png"])
    assert not corpus and [s.name for s in one] == ["coffee.png", "missing.png"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BatchError, match="no PNG, JPEG or WebP"):
        _batch.list_sources([empty])


def test_plan_consecutive_ids_and_output_names(src_dir, tmp_path):
    sources, _ = _batch.list_sources([src_dir])
    p = _batch.plan(sources, str(tmp_path / "out"), Options(format="jpeg"),
                    ids=IdPolicy(first=1000), provider=PROVIDER, label=2)
    assert [t.payload.content_id for t in p.tasks] == [1000, 1001, 1002, 1003]
    assert {t.payload.label for t in p.tasks} == {2}
    assert [Path(t.output).relative_to(tmp_path / "out").as_posix() for t in p.tasks] == [
        "astronaut.jpg", "chelsea.jpg", "coffee.jpg", "sub/rocket.jpg"]
    with pytest.raises(BatchError, match="runs past"):
        _batch.plan(sources, str(tmp_path / "o"), Options(), ids=IdPolicy(first=2**40 - 2),
                    provider=1)


def test_plan_ids_from_csv_and_from_names(src_dir, tmp_path):
    sources, _ = _batch.list_sources([src_dir])
    csv = tmp_path / "ids.csv"
    csv.write_text("input,content_id,produce_id\n"
                   f"{src_dir / 'coffee.png'},7,img-7\n"   # by path
                   "chelsea.jpg,0x10,img-16\nastronaut.webp,9,img-9\nsub/rocket.png,11,img-11\n")
    p = _batch.plan(sources, str(tmp_path / "o"), Options(), ids=IdPolicy(csv=str(csv)),
                    provider=PROVIDER)
    assert {t.name: t.payload.content_id for t in p.tasks} == {
        "astronaut.webp": 9, "chelsea.jpg": 16, "coffee.png": 7, "sub/rocket.png": 11}
    csv.write_text("input,content_id\nchelsea.jpg,1\n")
    with pytest.raises(BatchError, match="no row for astronaut.webp, coffee.png"):
        _batch.plan(sources, str(tmp_path / "o"), Options(), ids=IdPolicy(csv=str(csv)),
                    provider=1)
    csv.write_text("name,id\n")
    with pytest.raises(BatchError, match="input,content_id"):
        _batch.plan(sources, str(tmp_path / "o"), Options(), ids=IdPolicy(csv=str(csv)),
                    provider=1)
    by_name = _batch.plan(sources, str(tmp_path / "o"), Options(), ids=IdPolicy(from_name=True),
                          provider=1)
    ids = [t.payload.content_id for t in by_name.tasks]
    assert ids == [_batch.name_content_id(s.name) for s in sources]
    assert len(set(ids)) == 4 and all(0 <= i < 2**40 for i in ids)
    digest = hashlib.sha256(b"provmark/content-id/coffee.png").digest()
    assert _batch.name_content_id("coffee.png") == int.from_bytes(digest[:5], "big")


def test_plan_refuses_what_would_go_wrong(src_dir, tmp_path):
    sources, _ = _batch.list_sources([src_dir])
    # two inputs, one output name
    dup = sources + [_batch.Source(str(tmp_path / "elsewhere" / "coffee.png"), "coffee.png")]
    with pytest.raises(BatchError, match="would both write"):
        _batch.plan(dup, str(tmp_path / "o"), Options(), ids=IdPolicy(first=1), provider=1)
    # writing into the input directory in the input's own format
    with pytest.raises(BatchError, match="is the input"):
        _batch.plan(sources, str(src_dir), Options(), ids=IdPolicy(first=1), provider=1)
    label = Options(mode="label", content_producer="ACME")
    with pytest.raises(BatchError, match="ProduceID per image"):
        _batch.plan(sources, str(tmp_path / "o"), label, ids=IdPolicy(first=1), provider=1)
    with pytest.raises(BatchError, match="same ProduceID"):
        _batch.plan(sources, str(tmp_path / "o"), label, ids=IdPolicy(first=1), provider=1,
                    produce_id="fixed")
    with pytest.raises(BatchError, match="ProduceID 'img 1' is invalid"):
        _batch.plan(sources[:1], str(tmp_path / "o"), label, ids=IdPolicy(first=1), provider=1,
                    produce_id="img {content_id}")
    ok = _batch.plan(sources, str(tmp_path / "o"), label, ids=IdPolicy(first=5), provider=1,
                     produce_id="img-{stem}-{content_id}")
    assert [t.produce_id for t in ok.tasks][:2] == ["img-astronaut-5", "img-chelsea-6"]


# --------------------------------------------------------------------------- #
# The per-item work


def _tasks(src_dir, out, options, first=100):
    sources, _ = _batch.list_sources([src_dir])
    return _batch.plan(sources, str(out), options, ids=IdPolicy(first=first), provider=PROVIDER,
                       produce_id="img-{content_id}").tasks


def test_process_writes_what_the_bytes_api_writes(src_dir, tmp_path):
    options = Options(format="webp", quality=90)
    for task in _tasks(src_dir, tmp_path / "out", options):
        row = _batch.process(task, options)
        assert row.ok, row.error
        data = Path(task.input).read_bytes()
        out = Path(row.output).read_bytes()
        assert out == provmark.embed_bytes(data, task.payload, format="webp", quality=90)
        assert row.output_sha256 == hashlib.sha256(out).hexdigest()
        assert row.input_sha256 == hashlib.sha256(data).hexdigest()
        assert (row.input_bytes, row.output_bytes) == (len(data), len(out))
        assert row.payload == {"provider": PROVIDER, "content_id": task.payload.content_id,
                               "label": 1}
        assert row.format == "webp" and row.width > 0 and not row.reused
        assert Row.from_dict(json.loads(json.dumps(row.to_dict()))) == row


def test_label_mode_rows_carry_the_signed_label(src_dir, tmp_path):
    options = Options(mode="label", content_producer="ACME-01")
    task = _tasks(src_dir, tmp_path / "out", options)[1]
    row = _batch.process(task, options)
    assert row.ok, row.error
    assert row.metadata["ProduceID"] == task.produce_id == "img-101"
    assert row.metadata["ReservedCode1"].startswith("pm1:") and row.explicit_box is not None
    rep = provmark.inspect(row.output)
    assert rep.verdict == "consistent" and rep.detection.payload == task.payload


@pytest.mark.parametrize("content, word", [
    (b"", "empty"),
    (b"%PDF-1.4 not an image", "PDF files are not supported"),
    (b"hello" * 40, "not a recognised image"),
    (_png_16bit(), "16-bit PNG"),
    ("truncated", "corrupt or truncated"),
])
def test_bad_inputs_are_failed_rows(tmp_path, images, content, word):
    src = tmp_path / "bad.png"
    src.write_bytes(images["coffee.png"][:3000] if content == "truncated" else content)
    task = _batch.Task(0, str(src), str(tmp_path / "out" / "bad.png"), "bad.png",
                       provmark.Payload(1, 2))
    row = _batch.process(task, Options())
    assert row.status == "failed" and word in row.error and str(src) in row.error
    assert not (tmp_path / "out" / "bad.png").exists()
    missing = _batch.process(_batch.Task(0, str(tmp_path / "nope.png"), task.output, "nope.png",
                                         task.payload), Options())
    assert missing.status == "failed" and "no such file" in missing.error


def test_existing_output_adopted_only_when_identical(src_dir, tmp_path):
    options = Options()
    task = _tasks(src_dir, tmp_path / "out", options)[2]
    first = _batch.process(task, options)
    assert first.ok and not first.reused
    again = _batch.process(task, options)  # e.g. killed after writing, before the manifest
    assert again.ok and again.reused and again.output_sha256 == first.output_sha256
    other = _batch.process(_batch.Task(task.index, task.input, task.output, task.name,
                                       provmark.Payload(PROVIDER, 999)), options)
    assert other.status == "failed" and "already exists" in other.error
    assert hashlib.sha256(Path(task.output).read_bytes()).hexdigest() == first.output_sha256
    forced = _batch.process(_batch.Task(task.index, task.input, task.output, task.name,
                                        provmark.Payload(PROVIDER, 999)),
                            Options(overwrite=True))
    assert forced.ok and _decode(Path(task.output).read_bytes()).content_id == 999


def test_stale_temporaries_are_removed(tmp_path):
    out = tmp_path / "x.png"
    stale = [tmp_path / ".x.png.abc123.tmp", tmp_path / ".x.png.zz.tmp"]
    for p in stale:
        p.write_bytes(b"half")
    keep = tmp_path / ".y.png.abc.tmp"
    keep.write_bytes(b"another output's")
    assert _batch.remove_stale_temporaries([str(out), str(tmp_path / "nodir" / "z.png")]) == 2
    assert not any(p.exists() for p in stale) and keep.exists()


# --------------------------------------------------------------------------- #
# The manifest and resuming


def test_manifest_resume_skips_done_and_refuses_other_settings(src_dir, tmp_path):
    path = tmp_path / "m.jsonl"
    options = Options(format="jpeg")
    sources, _ = _batch.list_sources([src_dir])
    with Manifest.open(path) as m:
        p = _batch.plan(sources, str(tmp_path / "out"), options, ids=IdPolicy(first=1),
                        provider=PROVIDER, manifest=m)
        assert len(p.tasks) == 4 and p.done == []
        for task in p.tasks[:2]:
            m.append(_batch.process(task, options))
    # a torn last line (a crash while writing it) is ignored
    with open(path, "ab") as fh:
        fh.write(b'{"input": "half a li')
    with Manifest.open(path) as m:
        assert set(m.done) == {t.input for t in p.tasks[:2]}
        p2 = _batch.plan(sources, str(tmp_path / "out"), options, ids=IdPolicy(first=1),
                         provider=PROVIDER, manifest=m)
        assert [t.input for t in p2.tasks] == [t.input for t in p.tasks[2:]]
        assert len(p2.done) == 2
        with pytest.raises(BatchError, match="other settings"):
            _batch.plan(sources, str(tmp_path / "out"), Options(format="jpeg", quality=80),
                        ids=IdPolicy(first=1), provider=PROVIDER, manifest=m)
        with pytest.raises(BatchError, match="content ID 1, and this run would give it 5"):
            _batch.plan(sources, str(tmp_path / "out"), options, ids=IdPolicy(first=5),
                        provider=PROVIDER, manifest=m)
        with pytest.raises(BatchError, match="another provmark run is using it"):
            Manifest.open(path)
        m.append(_batch.process(p2.tasks[0], options))
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and json.loads(lines[-2])["input"] == p2.tasks[0].input


def test_manifest_must_be_local_and_a_file(tmp_path):
    with pytest.raises(BatchError, match="local file"):
        Manifest.open("s3://bucket/manifest.jsonl")
    with pytest.raises(BatchError, match="is a directory"):
        Manifest.open(tmp_path)
    bad = tmp_path / "not-a-manifest.jsonl"
    bad.write_text("hello\nworld\n")
    with pytest.raises(BatchError, match="line 1 is not a manifest row"):
        Manifest.open(bad)


def test_run_batch_records_rows_and_stops_cleanly_on_ctrl_c(src_dir, tmp_path):
    options = Options()
    sources, _ = _batch.list_sources([src_dir])
    seen = []

    def interrupt_after_two(row):
        seen.append(row)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with Manifest.open(tmp_path / "m.jsonl") as m:
        p = _batch.plan(sources, str(tmp_path / "out"), options, ids=IdPolicy(first=1),
                        provider=PROVIDER, manifest=m)
        with pytest.raises(_batch.Interrupted) as info:
            _batch.run_batch(p.tasks, options, manifest=m, workers=1,
                             progress=interrupt_after_two)
    s = info.value.summary
    assert (s.done, s.remaining, s.interrupted) == (2, 2, True)
    with Manifest.open(tmp_path / "m.jsonl") as m:
        p = _batch.plan(sources, str(tmp_path / "out"), options, ids=IdPolicy(first=1),
                        provider=PROVIDER, manifest=m)
        assert len(p.tasks) == 2
        summary = _batch.run_batch(p.tasks, options, manifest=m, workers=1)
    assert (summary.done, summary.failed, summary.images) == (2, 0, 2)
    assert summary.images_per_second > 0 and summary.mb_per_second > 0
    assert "2 marked, 0 failed" in summary.text()
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert sorted(r["content_id"] for r in rows) == [1, 2, 3, 4]
    for r in rows:
        assert _decode(Path(r["output"]).read_bytes()).content_id == r["content_id"]


# --------------------------------------------------------------------------- #
# fsspec: memory://


def test_memory_urls_in_and_out(images):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    for name, data in images.items():
        fs.pipe_file(f"/batch-in/{name}", data)
    fs.pipe_file("/batch-in/broken.jpg", b"\xff\xd8\xff\xe0 truncated")
    try:
        sources, corpus = _batch.list_sources(["memory://batch-in/"])
        assert corpus and [s.name for s in sources][0] == "astronaut.webp"
        assert all(s.location.startswith("memory://") for s in sources)
        options = Options(format="png")
        p = _batch.plan(sources, "memory://batch-out/", options, ids=IdPolicy(first=50),
                        provider=PROVIDER)
        rows = []
        summary = _batch.run_batch(p.tasks, options, workers=2, progress=rows.append)
        assert (summary.done, summary.failed) == (4, 1)
        for row in rows:
            if row.name == "broken.jpg":
                assert not row.ok and "corrupt or truncated" in row.error
                continue
            out = fs.cat_file(row.output.split("://", 1)[1])
            assert row.output.startswith("memory://batch-out/") and row.output.endswith(".png")
            assert _decode(out).content_id == row.content_id
            assert hashlib.sha256(out).hexdigest() == row.output_sha256
        # an existing object with other bytes is not replaced
        again = _batch.run_batch(p.tasks[:1], Options(format="png", quality=80), workers=1)
        assert again.done == 1  # PNG ignores quality: same bytes, adopted
        chelsea = next(t for t in p.tasks if t.name == "chelsea.jpg")
        other = _batch.process(_batch.Task(0, chelsea.input, chelsea.output, "x",
                                           provmark.Payload(PROVIDER, 1)), options)
        assert other.status == "failed" and "already exists" in other.error
    finally:
        fs.rm("/batch-in", recursive=True)
        if fs.exists("/batch-out"):
            fs.rm("/batch-out", recursive=True)


def test_urls_need_fsspec_only_beyond_file(src_dir, tmp_path, monkeypatch):
    sources, _ = _batch.list_sources([src_dir.as_uri()])  # file:// without fsspec
    assert len(sources) == 4 and sources[0].location == str(src_dir / "astronaut.webp")
    monkeypatch.setitem(__import__("sys").modules, "fsspec.core", None)
    with pytest.raises(BatchError, match=r"provmark\[scale\]"):
        _batch.list_sources(["s3://bucket/prefix/"])


# --------------------------------------------------------------------------- #
# The process pool: the same bytes as in-process


@pytest.mark.slow
def test_two_workers_write_the_same_bytes_as_one(src_dir, tmp_path):
    options = Options(format="jpeg", quality=92)
    sources, _ = _batch.list_sources([src_dir])
    digests = []
    for workers in (1, 2):
        p = _batch.plan(sources, str(tmp_path / f"out{workers}"), options,
                        ids=IdPolicy(first=1), provider=PROVIDER)
        rows: list[Row] = []
        summary = _batch.run_batch(p.tasks, options, workers=workers, progress=rows.append)
        assert summary.done == 4
        digests.append({r.name: r.output_sha256 for r in rows})
    assert digests[0] == digests[1]


@pytest.mark.slow
def test_a_worker_killed_by_the_system_stops_the_run_with_a_clear_error(src_dir, tmp_path):
    import os
    import signal

    options = Options()
    sources, _ = _batch.list_sources([src_dir])
    p = _batch.plan(sources, str(tmp_path / "out"), options, ids=IdPolicy(first=1),
                    provider=PROVIDER)
    with _batch.WorkerPool(2) as pool, Manifest.open(tmp_path / "m.jsonl") as m:
        pids = list(pool._pool._processes)

        killed = []

        def oom_killer(row):  # what the kernel's OOM killer does to a worker
            # Once: rows already finished may still arrive after the kill, and the
            # dead worker's pid is gone by then.
            if not killed:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        with pytest.raises(BatchError, match="worker process died.*fewer --workers.*resume"):
            _batch.run_batch(p.tasks, options, manifest=m, pool=pool, progress=oom_killer)
    recorded = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert recorded and all(Path(r["output"]).is_file() for r in recorded)
