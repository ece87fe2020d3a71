"""provmark on a Ray cluster: the Ray Data callables and the engine behind ``--engine ray``.

The pipeline, one stage per concern, each the Ray Data idiom for it::

    ray.data.from_items(task records)                       # what to do: from _batch.plan
      .map_batches(read_inputs, num_cpus=READ_CPUS,         # tasks: read the bytes (fsspec)
                   compute=TaskPoolStrategy(workers / 2))
      .map_batches(MarkImages, compute=ActorPoolStrategy(1, workers),  # mark + write,
                   num_cpus=MARK_ACTOR_CPUS)                #   one manifest row per image
    -> the driver appends each row to the JSONL manifest as it streams back

The per-image work is :func:`provmark._batch.mark_item`, the very function the local
engine runs, so both engines write the same bytes and the same manifest rows (the
test checks it file by file), and a Ray run resumes from a local run's manifest and
the other way round. The reading is a separate stage of light tasks so that fetching
the next files from an object store overlaps with marking, and so that a slow store
does not hold a marking actor idle. Reading is done from the planned task records
(``from_items``) rather than with ``ray.data.read_binary_files``: the plan already
knows each file's output and payload, and the records carry them along without a
lookup from Arrow's normalised path back to the task.

Known pitfall (ray-project/ray, Ray Data's streaming executor): an actor pool that
reserves every CPU starves the read tasks and the job hangs silently; on a 2-CPU
machine, two actors of ``num_cpus=1`` do it. The mark actors here reserve
:data:`MARK_ACTOR_CPUS` (< 1) each and the read tasks :data:`READ_CPUS`, so reads
always fit beside a full pool; each actor runs one Numba thread, so ``workers``
actors keep ``workers`` cores busy.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Callable

import numpy as np

try:
    import ray
    import ray.data
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Ray engine needs Ray Data: pip install 'provmark[ray]'") from exc

from .._batch import (
    BatchError,
    Manifest,
    Options,
    Row,
    Summary,
    Tally,
    Task,
    _sigterm_as_interrupt,
    available_cores,
    in_process_only,
    mark_item,
    process,
    read_input,
    record_rows,
    summarise,
)
from .._payload import Payload

__all__ = ["MarkImages", "read_inputs", "build_dataset", "run_batch", "task_record",
           "task_from_record", "MARK_ACTOR_CPUS", "READ_CPUS"]

#: CPUs each marking actor reserves. Below 1 so that a pool as large as the cluster's
#: CPU count still leaves room for the read tasks (see the module docstring).
MARK_ACTOR_CPUS = 0.75
#: CPUs each read task reserves: reading is I/O, and must never wait for a CPU.
READ_CPUS = 0.1
#: Concurrent read tasks per marking actor. Unbounded (only READ_CPUS each), Ray Data
#: started more reader processes than the machine had cores, each importing
#: provmark: with 2 CPUs and 40 1080p JPEGs, 8 Ray worker processes at peak against
#: 4 bounded, the first row after 12.5 s against 5.7 s, the run 18.3 s against 9.8 s.
READERS_PER_WORKER = 0.5
#: Images per batch handed to an actor call: small, so rows stream back and the
#: manifest grows steadily; marking one image costs far more than Ray's per-batch
#: overhead.
MARK_BATCH = 2
#: Blocks of the input dataset per marking actor at most (a block is the unit a read
#: task or an actor receives): enough to balance the pool, few enough to schedule.
MAX_BLOCKS_PER_WORKER = 64

_TASK_FIELDS = ("index", "input", "output", "name", "provider", "content_id", "label",
                "produce_id")


def task_record(task: Task) -> dict:
    """A :class:`~provmark._batch.Task` as a flat record of scalars (a dataset row).

    No ProduceID (the embed mode) is written as ``""``, never None: Arrow turns a
    column of None into floats (NaN). A valid ProduceID is never empty.
    """
    return {"index": task.index, "input": task.input, "output": task.output,
            "name": task.name, "provider": task.payload.provider,
            "content_id": task.payload.content_id, "label": task.payload.label,
            "produce_id": task.produce_id or ""}


def task_from_record(record: dict) -> Task:
    """The :class:`~provmark._batch.Task` of a record made by :func:`task_record`."""
    produce_id = str(record.get("produce_id") or "")
    return Task(int(record["index"]), str(record["input"]), str(record["output"]),
                str(record["name"]),
                Payload(int(record["provider"]), int(record["content_id"]), int(record["label"])),
                produce_id or None)


def _records(batch: dict[str, np.ndarray]) -> list[dict]:
    columns = [name for name in _TASK_FIELDS if name in batch]
    return [{name: batch[name][i] for name in columns} for i in range(len(batch["input"]))]


def read_inputs(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ray Data stage: add each task's file as a ``data`` column (read through
    :func:`provmark._batch.read_input`: a path, ``file://`` or any fsspec URL) and
    ``read_ok``.

    A file that cannot be read gets ``read_ok=False`` (and empty ``data``):
    :class:`MarkImages` reads it again through :func:`provmark._batch.process`,
    which reports the failure in the manifest row exactly as the local engine does
    (and marks the file if the failure was transient). A column of None would come
    back from Arrow as NaN floats, hence the separate flag.
    """
    data, ok = [], []
    for location in batch["input"]:
        try:
            data.append(read_input(str(location)))
            ok.append(True)
        except Exception:  # noqa: BLE001 - a bad file is a row, not a failed job
            data.append(b"")
            ok.append(False)
    out = dict(batch)
    out["data"] = _objects(data)
    out["read_ok"] = np.array(ok, dtype=bool)
    return out


def _objects(values: list) -> np.ndarray:
    """A 1-D object array: the bytes stay Python bytes (a fixed-width ``S`` array
    would drop trailing zero bytes, which end many WebP files)."""
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def _versions() -> dict[str, str]:
    """The versions that decide an output's bytes: provmark's code and its codecs."""
    import PIL

    import provmark

    return {"provmark": provmark.__version__, "Pillow": PIL.__version__,
            "numpy": np.__version__}


class MarkImages:
    """Ray Data actor: mark each image, write its output, return its manifest row.

    Use it as :func:`build_dataset` does: ``map_batches(MarkImages,
    fn_constructor_kwargs={"options": options}, compute=ActorPoolStrategy(min_size=1,
    max_size=n), num_cpus=MARK_ACTOR_CPUS, batch_format="numpy")`` on batches holding
    the :func:`task_record` columns, ``data`` and ``read_ok`` (from
    :func:`read_inputs`). Returns the columns ``input``, ``output``, ``status``,
    ``content_id`` and ``row`` (the manifest line, JSON, as
    :meth:`provmark._batch.Row.to_dict` gives it).

    Parameters
    ----------
    options : provmark._batch.Options
        The run's settings (key, format, quality, ...), shipped once per actor.
    threads : int, default 1
        Numba threads per actor: one, so that ``n`` actors use ``n`` cores.
    max_pixels : int, optional
        The pixel limit (the driver's, so that every worker refuses the same files).
    versions : dict, optional
        The driver's :func:`_versions`; an actor whose provmark, Pillow or NumPy
        differs refuses to start, because it would write other bytes than the
        driver's engine (and than a resumed run's earlier outputs).
    """

    def __init__(self, options: Options, *, threads: int = 1, max_pixels: int | None = None,
                 versions: dict[str, str] | None = None) -> None:
        if versions is not None and _versions() != versions:
            raise RuntimeError(
                f"this Ray worker has {_versions()} and the driver {versions}: install the "
                "same provmark, Pillow and NumPy on every node (the same image or wheel), "
                "or the outputs would differ from run to run")
        if max_pixels is not None:
            from .._image import MAX_PIXELS_ENV

            os.environ[MAX_PIXELS_ENV] = str(int(max_pixels))
        import numba

        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
        self.options = options

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = []
        for record, data, read_ok in zip(_records(batch), batch["data"], batch["read_ok"]):
            task = task_from_record(record)
            if read_ok:
                rows.append(mark_item(task, bytes(data), self.options))
            else:  # process() reads again and reports the failure as the local engine does
                rows.append(process(task, self.options))
        return {
            "input": np.array([r.input for r in rows], dtype=object),
            "output": np.array([r.output for r in rows], dtype=object),
            "status": np.array([r.status for r in rows], dtype=object),
            "content_id": np.array([r.content_id for r in rows], dtype=np.int64),
            "row": np.array([json.dumps(r.to_dict(), ensure_ascii=False) for r in rows],
                            dtype=object),
        }


#: What a failed run raises: Ray's errors (a worker or actor died, an actor refused
#: to start) and Ray Data's no-progress guard (newer Ray versions).
try:
    from ray.data.exceptions import ExecutionTimeoutError
except ImportError:  # pragma: no cover - Ray before the guard
    _JOB_ERRORS: tuple[type[BaseException], ...] = (ray.exceptions.RayError,)
else:
    _JOB_ERRORS = (ray.exceptions.RayError, ExecutionTimeoutError)


def _reason(exc: BaseException) -> str:
    """One line saying why a Ray job failed: the root error of the remote traceback
    that ends a Ray error's text ("RuntimeError: ..."), else its first line (Ray
    Data's no-progress guard puts the stall there)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    roots = [line for line in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception): ", line)]
    if roots:
        return roots[-1]
    return lines[0] if lines else type(exc).__name__


#: Ray Data's loggers and the level they get during a run: the caller shows its own
#: progress, so Ray Data's progress lines (INFO) and its note that its progress bars
#: are off (a WARNING) would only interleave with it; its real warnings still show.
_QUIET_LEVELS = {"ray.data": logging.WARNING, "ray.data._internal.progress": logging.ERROR}


@contextlib.contextmanager
def _quiet_ray_data():
    loggers = {name: logging.getLogger(name) for name in _QUIET_LEVELS}
    before = {name: logger.level for name, logger in loggers.items()}
    for name, logger in loggers.items():
        logger.setLevel(_QUIET_LEVELS[name])
    try:
        yield
    finally:
        for name, logger in loggers.items():
            logger.setLevel(before[name])


def _cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _connect(address: str | None, workers: int | None) -> bool:
    """Join or start Ray; True when this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        ray.init(num_cpus=workers or available_cores(), **quiet)
    else:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or os.environ.get("RAY_ADDRESS")
            raise BatchError(f"--ray-address {where}: cannot join the Ray cluster ({exc}); "
                             "is it running (`ray start --head`), and is the address right "
                             "(host:6379, ray://host:10001 or auto)? A cluster with token "
                             "authentication also needs RAY_AUTH_MODE=token and its token "
                             "(RAY_AUTH_TOKEN, or ~/.ray/auth_token) here") from None
    return True


def build_dataset(tasks: list[Task], options: Options, *, workers: int,
                  max_pixels: int | None = None,
                  versions: dict[str, str] | None = None) -> ray.data.Dataset:
    """The Ray Data pipeline of ``tasks``: read -> mark and write -> manifest rows
    (not executed until iterated). ``versions``: what every actor must run (default:
    this process's :func:`_versions`)."""
    records = [task_record(t) for t in tasks]
    # a block is what one task or actor call receives: small blocks spread the work
    # over the pool, and a bounded count keeps the scheduling overhead small
    blocks = max(1, min(-(-len(records) // MARK_BATCH), MAX_BLOCKS_PER_WORKER * workers))
    readers = max(1, round(workers * READERS_PER_WORKER))
    return (
        ray.data.from_items(records, override_num_blocks=blocks)
        .map_batches(read_inputs, batch_format="numpy", batch_size=None, num_cpus=READ_CPUS,
                     compute=ray.data.TaskPoolStrategy(size=readers))
        .map_batches(MarkImages, batch_format="numpy", batch_size=MARK_BATCH,
                     compute=ray.data.ActorPoolStrategy(min_size=1, max_size=workers),
                     num_cpus=MARK_ACTOR_CPUS,
                     fn_constructor_kwargs={"options": options, "max_pixels": max_pixels,
                                            "versions": versions or _versions()})
    )


def run_batch(tasks: list[Task], options: Options, *, manifest: Manifest | None = None,
              workers: int | None = None, progress: Callable[[Row], None] | None = None,
              address: str | None = None) -> Summary:
    """Mark ``tasks`` on a Ray cluster; the same contract as the local
    :func:`provmark._batch.run_batch`.

    Each finished row is appended to ``manifest`` in this (the driver's) process as
    it streams back (after its output exists), then passed to ``progress``; rows
    come in completion order.

    Parameters
    ----------
    tasks : list of Task
        From :func:`provmark._batch.plan` (already without what the manifest
        records as done).
    options : Options
        The run's settings.
    manifest : Manifest, optional
        The local JSONL manifest that a re-run resumes from.
    workers : int, optional
        Marking actors at most (the pool grows from 1 as work queues). None: the
        cluster's CPU count.
    progress : callable, optional
        Called with each :class:`~provmark._batch.Row`.
    address : str, optional
        The cluster to join: ``"auto"``, ``"host:6379"`` or ``"ray://host:10001"``.
        None: the cluster in ``RAY_ADDRESS``, or the one this process already
        joined, or else a local Ray started for this run with ``workers`` CPUs (and
        stopped after it).

    Returns
    -------
    Summary

    Raises
    ------
    BatchError
        A ``memory://`` location (one file system per process: use the local
        engine), a bad ``workers``, an unreachable cluster, or a Ray failure
        during the run (what finished is in the manifest: run again to resume).
    Interrupted
        On Ctrl-C or SIGTERM; the rows that arrived are in the manifest. Images
        marked meanwhile without a row are adopted by the re-run (same bytes).

    Notes
    -----
    Every node must see the inputs and outputs at the same locations (an object
    store, or a file system mounted at the same path everywhere) and run the same
    versions of provmark, Pillow and NumPy (checked when an actor starts). The key
    travels to the workers in the run's options: run on a cluster you trust.
    """
    if workers is not None and workers < 1:
        raise BatchError(f"--workers {workers}: use 1 or more")
    local_only = [loc for t in tasks for loc in (t.input, t.output) if in_process_only(loc)]
    if local_only:
        raise BatchError(f"{local_only[0]}: memory:// is private to one process and Ray "
                         "workers are other processes; use the local engine, or a shared "
                         "location (a directory every node mounts, s3://, gs://)")
    if not tasks:
        return summarise([], 0.0)
    from .._image import max_pixels

    started = _connect(address, workers)
    tally = Tally()  # counts, not rows: a run of millions of images keeps no list
    t0 = time.perf_counter()
    try:
        pool = min(workers or _cluster_cpus(), len(tasks))
        dataset = build_dataset(tasks, options, workers=pool, max_pixels=max_pixels())
        dataset.context.enable_progress_bars = False
        dataset.context.print_on_execution_start = False
        with _sigterm_as_interrupt(), _quiet_ray_data():
            rows = (Row.from_dict(json.loads(result["row"])) for result in dataset.iter_rows())
            record_rows(rows, tally, manifest=manifest, progress=progress)
    except KeyboardInterrupt:
        raise tally.interrupted(time.perf_counter() - t0, len(tasks)) from None
    except _JOB_ERRORS as exc:
        raise BatchError(f"the Ray job failed after {tally.images} of {len(tasks)} images "
                         f"({_reason(exc)}); what finished is in the manifest: run again to "
                         "resume") from exc
    finally:
        if started:
            ray.shutdown()
    return tally.summary(time.perf_counter() - t0)

