"""The journal of a long benchmark run: every finished job appended as it ends, so
that the same command run again after a stop goes on where it stopped.

Used by ``robustness.py --corpus`` and ``false_positives.py --corpus`` (both can run
for an hour on 2 cores). The first line holds the run's settings, including a hash of
the code its results depend on; a journal is resumed only by a run with the same
settings, and refused with a message otherwise, so that rows of another detector or
another seed are never mixed into a table. A line cut short by a stop mid-write is
ignored: that job runs again.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import provmark


def source_fingerprint(*functions) -> str:
    """A hash of provmark's source (its attacks and the peers' adapters included) and of
    the script's ``functions`` that make the rows (not of the whole script: a change to
    how a table is printed does not make the rows stale)."""
    h = hashlib.sha256()
    for f in sorted(Path(provmark.__file__).parent.rglob("*.py")):
        h.update(str(f.relative_to(f.parents[1])).encode())
        h.update(f.read_bytes())
    for fn in functions:
        h.update(inspect.getsource(fn).encode())
    return h.hexdigest()[:16]


def finished(jobs: dict, workers: int):
    """``(key, result)`` of every job ``key: (function, argument)`` as it finishes: in
    ``workers`` processes, or in this process, in order, with ``workers == 1`` (no fork:
    a process that has run Numba's parallel kernels cannot fork safely, and a test
    does; it is also the way to debug a job)."""
    if workers == 1:
        for key, (fn, arg) in jobs.items():
            yield key, fn(arg)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(fn, arg): key for key, (fn, arg) in jobs.items()}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file: never half a table."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Journal:
    """Append-only record of a run's finished jobs, one JSON line each (see the module)."""

    def __init__(self, path: Path | None, done: dict):
        self.path, self.done = path, done

    @classmethod
    def open(cls, path: Path | None, settings: dict, parser) -> "Journal":
        """The journal at ``path`` (``None``: none kept), read back if it exists;
        ``parser.error`` if it was written with other ``settings``."""
        if path is None:
            return cls(None, {})
        done = {}
        if path.exists():
            lines = path.read_text().splitlines()
            try:
                first = json.loads(lines[0]) if lines else {}
            except json.JSONDecodeError:
                first = {}
            if first.get("settings") != settings:
                before = first.get("settings", {})
                differ = sorted(k for k in settings if before.get(k) != settings[k])
                parser.error(f"{path} is the journal of a run with other settings "
                             f"({', '.join(differ) or 'unreadable'} differ); run the same "
                             f"command to resume it, or delete it (or choose another --out) "
                             f"to start afresh")
            for line in lines[1:]:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                done[tuple(entry["key"])] = entry["result"]
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"settings": settings}) + "\n")
        return cls(path, done)

    def append(self, key, result) -> None:
        """Record a finished job (flushed to disk before the next one is taken)."""
        if self.path is None:
            return
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"key": list(key), "result": result}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def remove(self) -> None:
        """Once the run's tables are written."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
