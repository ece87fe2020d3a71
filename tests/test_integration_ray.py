"""The Ray engine (provmark.integrations.ray) on a local two-CPU Ray cluster.

The bar: on the same inputs, the Ray engine writes byte-identical outputs and the same
manifest rows as the local engine. Two CPUs and ``workers=2`` is also the set-up in
which an actor pool that reserves every CPU starves its read tasks and hangs (the
module's docstring; with Ray 2.60 a fixed pool of two 1-CPU actors stalled until Ray
Data's no-progress guard failed it, while the engine's 0.75-CPU actors finished).
That guard, set short here, and behind it a watchdog turn a hang into a failure
instead of a stuck test run.
"""

from __future__ import annotations

import faulthandler
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray", reason="the Ray engine needs ray[data] (provmark[ray])")
pytest.importorskip("ray.data", reason="the Ray engine needs ray[data] (provmark[ray])")

import provmark  # noqa: E402
from provmark import _batch  # noqa: E402
from provmark._io import encode_image  # noqa: E402
from provmark.integrations import ray as ray_engine  # noqa: E402

# Ray Data's DataContext warns about its own deprecated settings when it copies itself
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

#: Seconds without progress after which Ray Data fails the job (a hang).
NO_PROGRESS_LIMIT = 120
#: Seconds after which a hung module ends the test process with a traceback.
HANG_LIMIT = 400
PROVIDER = 4242
FIRST_ID = 100


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster with two CPUs, no dashboard, started by the test itself."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    ray.data.DataContext.get_current().execution_no_progress_timeout_s = NO_PROGRESS_LIMIT
    faulthandler.dump_traceback_later(HANG_LIMIT, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, photo_factory):
    """Seven markable photos in PNG, JPEG and WebP, and three bad inputs: a corrupt
    JPEG, a 16-bit PNG and a text file named .png."""
    root = tmp_path_factory.mktemp("ray-inputs")
    (root / "sub").mkdir()
    shots = [("astronaut", "a.png", "PNG"), ("coffee", "b.jpg", "JPEG"),
             ("chelsea", "c.webp", "WEBP"), ("rocket", "d.jpg", "JPEG"),
             ("astronaut", "sub/e.png", "PNG"), ("coffee", "sub/f.webp", "WEBP"),
             ("chelsea", "sub/g.jpg", "JPEG")]
    for index, (name, file, fmt) in enumerate(shots):
        photo = photo_factory(name, 256 + 32 * index, 256 + 16 * (index % 3))
        (root / file).write_bytes(encode_image(photo, fmt, quality=90))
    (root / "corrupt.jpg").write_bytes((root / "b.jpg").read_bytes()[:600])
    deep = np.linspace(0, 65535, 256 * 256, dtype=np.uint16).reshape(256, 256)
    Image.fromarray(deep).save(root / "deep.png")
    (root / "text.png").write_bytes(b"this is not an image\n")
    return root


def _plan(inputs, output, options, manifest=None):
    sources, _ = _batch.list_sources([str(inputs)])
    return _batch.plan(sources, str(output), options, ids=_batch.IdPolicy(first=FIRST_ID),
                       provider=PROVIDER, manifest=manifest)


def _comparable(row: _batch.Row) -> dict:
    """A row without what differs from run to run (times, locations under the
    run's own output directory)."""
    d = row.to_dict()
    for k in ("seconds", "mark_ms", "finished", "output"):
        d.pop(k, None)
    return d


@pytest.mark.slow
def test_ray_engine_writes_what_the_local_engine_writes(ray_cluster, inputs, tmp_path):
    options = _batch.Options(key=b"provider key")
    local_plan = _plan(inputs, tmp_path / "local", options)
    local_rows = []
    _batch.run_batch(local_plan.tasks, options, workers=1, progress=local_rows.append)

    manifest_path = tmp_path / "ray-manifest.jsonl"
    ray_plan = _plan(inputs, tmp_path / "ray", options)
    ray_rows = []
    with _batch.Manifest.open(manifest_path) as manifest:
        summary = ray_engine.run_batch(ray_plan.tasks, options, manifest=manifest,
                                       workers=2, progress=ray_rows.append)

    assert len(ray_plan.tasks) == 10
    assert (summary.images, summary.done, summary.failed) == (10, 7, 3)
    assert ray.is_initialized()  # a cluster it did not start is left running

    by_input = {r.input: r for r in ray_rows}
    for local in local_rows:
        row = by_input[local.input]
        assert _comparable(row) == _comparable(local)
        if local.ok:
            local_bytes = Path(local.output).read_bytes()
            ray_bytes = Path(row.output).read_bytes()
            assert ray_bytes == local_bytes, local.name
            detection = provmark.detect_bytes(ray_bytes, key=b"provider key")
            assert detection.payload == provmark.Payload(PROVIDER, row.content_id)
        else:
            assert not (tmp_path / "ray" / row.name).exists()
            assert row.error and row.error == local.error

    failed = {r.name: r.error for r in ray_rows if not r.ok}
    assert set(failed) == {"corrupt.jpg", "deep.png", "text.png"}
    assert "16" in failed["deep.png"]

    lines = [json.loads(line) for line in manifest_path.read_text().splitlines()]
    assert sorted(line["input"] for line in lines) == sorted(r.input for r in ray_rows)
    stray = [p for p in (tmp_path / "ray").rglob("*") if p.name.endswith(".tmp")]
    assert stray == []

    # resuming from the Ray run's manifest leaves nothing to do
    with _batch.Manifest.open(manifest_path) as manifest:
        again = _plan(inputs, tmp_path / "ray", options, manifest=manifest)
    assert again.tasks == [t for t in ray_plan.tasks
                           if t.input in {r.input for r in ray_rows if not r.ok}]
    assert len(again.done) == 7


@pytest.mark.slow
def test_ray_engine_adopts_outputs_of_an_interrupted_run(ray_cluster, inputs, tmp_path):
    """Outputs written by a run killed before its manifest rows: the re-run finds the
    same bytes and keeps them (``reused``) instead of failing or marking twice."""
    options = _batch.Options(format="jpeg", quality=92)
    tasks = [t for t in _plan(inputs, tmp_path / "out", options).tasks
             if t.name in ("a.png", "c.webp", "sub/e.png")]
    first = [_batch.process(t, options) for t in tasks[:2]]  # "killed" after two images
    assert all(r.ok for r in first)
    rows = []
    summary = ray_engine.run_batch(tasks, options, workers=2, progress=rows.append)
    assert (summary.done, summary.reused) == (3, 2)
    assert {r.name for r in rows if r.reused} == {"a.png", "c.webp"}
    for row in rows:
        assert row.output.endswith(".jpg")
        data = Path(row.output).read_bytes()
        assert provmark.detect_bytes(data).payload.content_id == row.content_id


@pytest.mark.slow
def test_workers_with_other_versions_stop_the_run(ray_cluster, inputs, tmp_path, monkeypatch):
    options = _batch.Options()
    tasks = _plan(inputs, tmp_path / "out", options).tasks[:2]
    monkeypatch.setattr(ray_engine, "_versions", lambda: {"provmark": "0.0.0"})
    with pytest.raises(_batch.BatchError, match="Ray job failed after 0 of 2.*same provmark"):
        ray_engine.run_batch(tasks, options, workers=1)
    assert not any((tmp_path / "out").rglob("*.*"))


def test_record_round_trip_and_refusals(tmp_path):
    task = _batch.Task(3, "s3://in/x.png", "s3://out/x.png", "x.png",
                       provmark.Payload(7, 2**40 - 1, label=2), None)
    assert ray_engine.task_from_record(ray_engine.task_record(task)) == task
    labelled = _batch.Task(0, "a.png", "b.png", "a.png", provmark.Payload(1, 1), "img-1")
    assert ray_engine.task_from_record(ray_engine.task_record(labelled)) == labelled
    options = _batch.Options()
    memory = _batch.Task(0, "memory://in/a.png", str(tmp_path / "a.png"), "a.png",
                         provmark.Payload(1, 1))
    with pytest.raises(_batch.BatchError, match="memory://.*local engine"):
        ray_engine.run_batch([memory], options)
    with pytest.raises(_batch.BatchError, match="--workers 0"):
        ray_engine.run_batch([], options, workers=0)
    assert ray_engine.run_batch([], options).images == 0
    assert ray_engine.MARK_ACTOR_CPUS + ray_engine.READ_CPUS < 1  # reads fit beside a full pool


def test_actor_refuses_other_versions():
    with pytest.raises(RuntimeError, match="same provmark, Pillow and NumPy"):
        ray_engine.MarkImages(_batch.Options(), versions={"provmark": "0.0.0"})
