"""Run methods x images x attacks x severities, in parallel, resumably.

Work is split into tasks (one method on one image and a chunk of attack cases; or
every detector on one unmarked image and a chunk of cases) that run in worker
processes (``spawn``: Numba, torch and ONNX Runtime do not survive ``fork`` well).
Each finished case is one JSON line in ``<out>/cache.jsonl``, keyed by a hash of
what determines its result (method and package version, image, attack, parameters,
seed); a run reads the cache first and only computes the missing cases, so an
interrupted run resumes where it stopped. All randomness comes from seeds derived
from ``--seed`` and the case's names, so a rerun gives the same numbers.

Three kinds of record are written:

* ``embed`` -- a method marked an image: PSNR, SSIM, MS-SSIM, time, or the error
  (e.g. provmark's ``EmbedError``) that stopped it;
* ``positive`` -- the marked image attacked and read back: exact payload, bit
  accuracy, p-value;
* ``negative`` -- the same attack on the *unmarked* image, read by each detector:
  the p-value, for the false-positive side of TPR at FPR.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .images import ImageRef
from .images import load as load_image

__all__ = [
    "CACHE_VERSION",
    "AttackCase",
    "QUICK_CASES",
    "QUICK_PHOTOS",
    "QUICK_METHODS",
    "BenchConfig",
    "BenchResult",
    "attack_cases",
    "case_key",
    "run",
]

#: Part of every cache key: bump it when a record's meaning changes.
CACHE_VERSION = 2
_SCORE_CAP = 300.0


@dataclass(frozen=True)
class AttackCase:
    """One attack at one severity: a registry attack name and its keyword overrides
    (``attack == "none"``: the unattacked marked image)."""

    attack: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def make(cls, attack: str, params: dict | None = None) -> AttackCase:
        return cls(attack, tuple(sorted((params or {}).items())))

    @property
    def kwargs(self) -> dict:
        return dict(self.params)

    def _record(self):
        from provmark import attacks as A

        return None if self.attack == "none" else A.get(self.attack)

    @property
    def family(self) -> str:
        rec = self._record()
        return "none" if rec is None else rec.family

    @property
    def severity_key(self) -> str:
        rec = self._record()
        return "" if rec is None else rec.severity_key

    @property
    def severity(self) -> str:
        rec = self._record()
        if rec is None:
            return ""
        value = self.kwargs.get(rec.severity_key, rec.params[rec.severity_key])
        return _fmt(value)

    @property
    def label(self) -> str:
        """e.g. ``jpeg quality=50`` or ``jpeg_pillow quality=50, subsampling=4:4:4``."""
        if self.attack == "none":
            return "none"
        rec = self._record()
        key = rec.severity_key
        parts = [f"{key}={_fmt(self.kwargs.get(key, rec.params[key]))}"]
        parts += [f"{k}={_fmt(v)}" for k, v in self.params if k != key]
        return f"{self.attack} {', '.join(parts)}"

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.attack == "none":
            return image
        return self._record()(image, rng=rng, **self.kwargs)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(_fmt(v) for v in value) + ")"
    return str(value)


#: The reduced grid of ``--quick``: every family, and the attacks of the peers'
#: published claims (JPEG, brightness: pass; 50% resize, crop: fail). JPEG appears
#: with OpenCV's 4:2:0 chroma subsampling and with Pillow at 4:4:4, because
#: invisible-watermark's dwtDct survives only the latter.
QUICK_CASES: tuple[AttackCase, ...] = tuple(AttackCase.make(a, p) for a, p in (
    ("none", {}),
    ("jpeg", {"quality": 90}),
    ("jpeg", {"quality": 50}),
    ("jpeg_pillow", {"quality": 90, "subsampling": "4:4:4"}),
    ("jpeg_pillow", {"quality": 50, "subsampling": "4:4:4"}),
    ("webp", {"quality": 50}),
    ("crop", {"area": 0.75}),
    ("crop", {"area": 0.5}),
    ("resize", {"scale": 0.75}),
    ("resize", {"scale": 0.5}),
    ("rotate", {"angle": 2.0}),
    ("gaussian_blur", {"sigma": 1.0}),
    ("gaussian_blur", {"sigma": 2.0}),
    ("gaussian_noise", {"sigma": 5.0}),
    ("brightness", {"factor": 0.8}),
    ("brightness", {"factor": 1.2}),
    ("contrast", {"factor": 0.5}),
    ("saturation", {"factor": 0.0}),
    ("occlude", {"area": 0.25}),
    ("social_media", {"quality": 75}),
))
#: Photos and methods of ``--quick`` (size 512x512).
QUICK_PHOTOS = ("astronaut", "coffee")
QUICK_METHODS = ("provmark@0.5", "provmark@1.0", "provmark@1.5", "provmark@1.0/40b",
                 "dwtDct", "dwtDct/32b", "dwtDct/96b", "dwtDctSvd", "rivaGan",
                 "blind-watermark", "blind-watermark/128b")


def attack_cases(selection: Iterable[str] | None = None) -> tuple[list[AttackCase], dict[str, str]]:
    """Every severity of the attacks named in ``selection`` (attack names, family
    names or ``all``; None = all), preceded by the ``none`` baseline.

    Returns the cases and ``{attack: reason}`` for attacks unavailable here.
    """
    from provmark import attacks as A

    names: list[str] = []
    for item in (selection or ["all"]):
        for part in str(item).split(","):
            part = part.strip()
            if not part or part == "none":
                continue
            if part == "all":
                group = A.names()
            elif part in A.FAMILIES:
                group = A.names(part)
            else:
                group = (A.get(part).name,)  # KeyError with suggestions
            names += [n for n in group if n not in names]
    cases = [AttackCase.make("none")]
    skipped = {}
    for n in names:
        rec = A.get(n)
        if not rec.available:
            skipped[n] = rec.unavailable_reason
            continue
        cases += [AttackCase.make(n, dict(entry)) for entry in rec.grid]
    return cases, skipped


def _seed_int(*parts) -> int:
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def message_bits(seed: int, method_name: str, image_id: str, n_bits: int) -> np.ndarray:
    """The random message a method carries in an image (deterministic)."""
    rng = np.random.default_rng(_seed_int("message", seed, method_name, image_id))
    return rng.integers(0, 2, n_bits).astype(bool)


def attack_rng(seed: int, image_id: str, case: AttackCase) -> np.random.Generator:
    """The attack's generator: the same for every method (same crop window, noise)."""
    return np.random.default_rng(_seed_int("attack", seed, image_id, case.attack, case.params))


def case_key(kind: str, who: str, version: str, image_id: str, case: AttackCase | None,
             seed: int) -> str:
    """Cache key of one record."""
    blob = json.dumps({"v": CACHE_VERSION, "kind": kind, "who": who, "version": version,
                       "image": image_id, "attack": None if case is None else case.attack,
                       "params": None if case is None else [[k, _fmt(v)] for k, v in case.params],
                       "seed": seed}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


# -- worker side -------------------------------------------------------------------

@lru_cache(maxsize=None)
def _method(spec: str):
    from .methods import parse_method

    return parse_method(spec)


@lru_cache(maxsize=4)
def _marked(spec: str, ref: ImageRef, seed: int):
    """Embed once per (method, image) and process: ``(marked or None, embed record)``."""
    from . import metrics

    method = _method(spec)
    img = load_image(ref)
    bits = message_bits(seed, method.name, ref.id, method.payload_bits)
    rec = {"kind": "embed", "method": method.name, "detector": method.detector_id,
           "image": ref.id, "payload_bits": method.payload_bits, "seed": seed}
    t0 = time.perf_counter()
    try:
        marked = method.embed(img, bits, np.random.default_rng(_seed_int("embed", seed, ref.id)))
    except Exception as exc:  # noqa: BLE001  (recorded: EmbedError and peers' refusals)
        rec.update(error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - t0)
        return None, rec
    rec["seconds"] = round(time.perf_counter() - t0, 4)
    rec["psnr"] = round(metrics.psnr(img, marked), 3)
    rec["ssim"] = round(metrics.ssim(img, marked), 5)
    rec["ms_ssim"] = round(metrics.ms_ssim(img, marked), 5)
    rec["error"] = None
    marked.flags.writeable = False
    return marked, rec


def _score(p: float) -> float:
    return round(min(_SCORE_CAP, -math.log10(max(p, 10.0**-_SCORE_CAP))), 4)


def _case_fields(case: AttackCase) -> dict:
    return {"attack": case.attack, "family": case.family, "case": case.label,
            "params": {k: _fmt(v) for k, v in case.params},
            "severity_key": case.severity_key, "severity": case.severity}


def _read(method, attacked, expected) -> tuple[dict, float]:
    t0 = time.perf_counter()
    try:
        readout = method.detect(attacked)
    except Exception as exc:  # noqa: BLE001  (an image a detector refuses: "no mark")
        return {"abstained": True, "bit_accuracy": 0.5, "exact": False, "p_value": 1.0,
                "score": 0.0, "found": None, "info": {},
                "error": f"detect: {type(exc).__name__}: {exc}"}, time.perf_counter() - t0
    p = method.p_value(readout, expected)
    if readout.bits is None:
        acc = 0.5  # abstaining scores what a coin would
    else:
        acc = float(np.mean(np.asarray(readout.bits, bool) == expected))
    return {"abstained": readout.bits is None, "bit_accuracy": round(acc, 5),
            "exact": bool(method.exact(readout, expected)), "p_value": float(p),
            "score": _score(p), "found": readout.found, "info": readout.info,
            "error": None}, time.perf_counter() - t0


def run_positive_task(task: dict) -> list[dict]:
    """Embed ``task['method']`` into one image and read it back after each case."""
    spec, ref, seed = task["method"], task["image"], task["seed"]
    method = _method(spec)
    marked, embed_rec = _marked(spec, ref, seed)
    out = [dict(embed_rec, key=task["embed_key"])]
    expected = message_bits(seed, method.name, ref.id, method.payload_bits)
    for key, case in task["cases"]:
        rec = {"key": key, "kind": "positive", "method": method.name,
               "detector": method.detector_id, "image": ref.id, "seed": seed,
               "payload_bits": method.payload_bits, **_case_fields(case)}
        if marked is None:
            rec.update(abstained=True, bit_accuracy=0.5, exact=False, p_value=1.0, score=0.0,
                       found=None, info={}, seconds=0.0,
                       error=f"embed failed: {embed_rec['error']}")
            out.append(rec)
            continue
        try:
            attacked = case.apply(marked, attack_rng(seed, ref.id, case))
        except Exception as exc:  # noqa: BLE001
            rec.update(error=f"attack failed: {type(exc).__name__}: {exc}", attack_failed=True)
            out.append(rec)
            continue
        fields, dt = _read(method, attacked, expected)
        rec.update(fields, seconds=round(dt, 4))
        out.append(rec)
    return out


def run_negative_task(task: dict) -> list[dict]:
    """Attack one *unmarked* image with each case and read it with every detector."""
    ref, seed = task["image"], task["seed"]
    img = load_image(ref)
    out = []
    for case, keyed in task["cases"]:
        try:
            attacked = case.apply(img, attack_rng(seed, ref.id, case))
        except Exception as exc:  # noqa: BLE001
            attacked, failure = None, f"attack failed: {type(exc).__name__}: {exc}"
        for spec, key in keyed:
            method = _method(spec)
            rec = {"key": key, "kind": "negative", "method": method.detector_id,
                   "detector": method.detector_id, "image": ref.id, "seed": seed,
                   "payload_bits": method.payload_bits, **_case_fields(case)}
            if attacked is None:
                rec.update(error=failure, attack_failed=True)
            else:
                # A peer's negative is scored against the message it would carry here.
                expected = message_bits(seed, method.name, ref.id, method.payload_bits)
                fields, dt = _read(method, attacked, expected)
                rec.update(fields, seconds=round(dt, 4))
            out.append(rec)
    return out


def _run_task(task: dict) -> list[dict]:
    import warnings

    with warnings.catch_warnings():
        if task.get("quiet_warnings"):
            warnings.simplefilter("ignore")  # peers' deprecation chatter, in workers only
        if task["kind"] == "positive":
            return run_positive_task(task)
        return run_negative_task(task)


# -- parent side -------------------------------------------------------------------

@dataclass
class BenchConfig:
    """What to run.

    Attributes
    ----------
    methods : list of str
        Method specs (:func:`provmark.bench.methods.resolve_methods`).
    images : list of ImageRef
    cases : list of AttackCase
    out : Path
        Output directory (the cache lives in ``out/cache.jsonl``).
    seed : int
    jobs : int
        Worker processes; 1 runs everything in this process.
    resume : bool
        Read the cache (False: start it afresh).
    negatives : bool
        Also run the unmarked images (needed for TPR at FPR).
    """

    methods: list[str]
    images: list[ImageRef]
    cases: list[AttackCase]
    out: Path = Path("bench-output")
    seed: int = 0
    jobs: int = 1
    resume: bool = True
    negatives: bool = True
    command: str = ""


@dataclass
class BenchResult:
    """Everything the report needs."""

    config: BenchConfig
    methods: list
    skipped_methods: dict[str, str]
    records: list[dict]
    computed: int = 0
    cached: int = 0
    seconds: float = 0.0
    skipped_attacks: dict[str, str] = field(default_factory=dict)


class Progress:
    """A plain-text progress bar on stderr; when stderr is not a terminal, a line at
    every tenth of the cases or every 30 s. The time left is estimated from the
    rough cost of the work done and left (slow methods run first), not the count."""

    def __init__(self, total: int, *, cached: int = 0, total_cost: float = 0.0,
                 stream=None, enabled: bool = True):
        self.total, self.done, self.cached = total, 0, cached
        self.total_cost, self.done_cost = total_cost, 0.0
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self._last_decile = -1
        self._last_print = self.t0

    def update(self, n: int, cost: float = 0.0) -> None:
        self.done += n
        self.done_cost += cost
        if not self.enabled:
            return
        frac = self.done / self.total
        now = time.perf_counter()
        elapsed = now - self.t0
        work = self.done_cost / self.total_cost if self.total_cost > 0 else frac
        eta = f"{elapsed / work - elapsed:4.0f} s" if 0 < work < 1 and elapsed > 1 else "   ?"
        if self.done >= self.total:
            eta = "   0 s"
        text = (f"{self.done}/{self.total} cases  {elapsed:5.0f} s elapsed  eta {eta}"
                + (f"  ({self.cached} from cache)" if self.cached else ""))
        if self.tty:
            width = 30
            bar = "#" * int(width * frac) + "." * (width - int(width * frac))
            end = "\n" if self.done >= self.total else ""
            print(f"\r[{bar}] {text}", end=end, file=self.stream, flush=True)
        else:
            decile = int(10 * frac)
            if decile > self._last_decile or now - self._last_print >= 30:
                self._last_decile = max(decile, self._last_decile)
                self._last_print = now
                print(f"bench: {text}", file=self.stream, flush=True)


def read_cache(path: Path) -> dict[str, dict]:
    """Records of a cache file by key; a torn last line (interrupted write) is ignored."""
    done: dict[str, dict] = {}
    if not path.exists():
        return done
    with path.open("r", encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "key" in rec:
                done[rec["key"]] = rec
    return done


def _plan(config: BenchConfig, methods) -> tuple[list[dict], list[str], int]:
    """Tasks for the missing records; all planned keys; number of planned cases."""
    seed = config.seed
    keys: list[str] = []
    pairs = []
    for m in methods:
        spec = m.name
        for ref in config.images:
            ekey = case_key("embed", m.name, m.version, ref.id, None, seed)
            keyed = [(case_key("positive", m.name, m.version, ref.id, c, seed), c)
                     for c in config.cases]
            keys.append(ekey)
            keys += [k for k, _ in keyed]
            pairs.append((m, spec, ref, ekey, keyed))
    detectors: dict[str, Any] = {}
    for m in methods:
        detectors.setdefault(m.detector_id, m)
    neg_plan = []
    if config.negatives:
        for ref in config.images:
            for c in config.cases:
                keyed = [(d.name, case_key("negative", did, d.version, ref.id, c, seed))
                         for did, d in detectors.items()]
                keys += [k for _, k in keyed]
                neg_plan.append((ref, c, keyed))
    return pairs, neg_plan, keys


#: Target length of one task in seconds (by the rough costs below).
_TASK_SECONDS = 8.0
#: Rough seconds per case at 512x512 on a loaded core, to size tasks and start the
#: slow ones first.
_COST = {"rivaGan": 2.5, "blind-watermark": 0.5, "dwtDctSvd": 0.1, "dwtDct": 0.05,
         "provmark": 0.08}


def _cost(name: str) -> float:
    if name.endswith(":exhaustive"):
        return 1.5  # the scale/rotation sweep: ~1 s found, 2-4 s on unmarked images
    base = name.split("/")[0].split("@")[0]
    return _COST.get(base, 0.1)


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)] or [[]]


def run(config: BenchConfig, *, progress: bool = True, log: Callable[[str], None] | None = None
        ) -> BenchResult:
    """Run (or resume) the benchmark described by ``config``.

    Peers that are not installed are skipped with a message (``make peers``).
    Interrupting (Ctrl-C) keeps every finished case in the cache; rerunning the
    same command computes only the rest.
    """
    from .methods import resolve_methods

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t_start = time.perf_counter()
    methods, skipped = resolve_methods(config.methods)
    for spec, why in skipped.items():
        log(f"bench: skipping {spec}: {why}")
    if not methods:
        raise ValueError("no method left to run (every requested peer is missing): "
                         "add provmark or run `make peers`")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    cache_path = out / "cache.jsonl"
    if not config.resume and cache_path.exists():
        cache_path.unlink()
    done = read_cache(cache_path)

    pairs, neg_plan, keys = _plan(config, methods)
    seed = config.seed
    quiet = config.jobs > 1
    tasks: list[tuple[float, int, dict]] = []
    total_cases = 0
    cached_cases = 0
    n_pairs = max(len(pairs), 1)
    per_pair = max(1, math.ceil(4 * config.jobs / n_pairs)) if config.jobs > 1 else 1
    for m, spec, ref, ekey, keyed in pairs:
        missing = [(k, c) for k, c in keyed if k not in done]
        total_cases += len(keyed)
        cached_cases += len(keyed) - len(missing)
        if not missing and ekey in done:
            continue
        # Chunks: enough tasks to keep every worker busy, and none much longer than
        # _TASK_SECONDS, so that slow methods do not hold the progress bar still.
        size = min(math.ceil(len(missing) / per_pair),
                   max(2, int(_TASK_SECONDS / _cost(m.name))))
        for chunk in _chunks(missing, max(1, size)):
            tasks.append((_cost(m.name) * (len(chunk) + 2), len(chunk),
                          {"kind": "positive", "method": spec, "image": ref, "seed": seed,
                           "embed_key": ekey, "cases": chunk, "quiet_warnings": quiet}))
    # Negatives: slow detectors get tasks of their own, the fast ones share one
    # (the attack is then computed once for all of them).
    by_group: dict[tuple, list] = {}
    for ref, c, keyed in neg_plan:
        missing = [(spec, k) for spec, k in keyed if k not in done]
        total_cases += len(keyed)
        cached_cases += len(keyed) - len(missing)
        for spec, k in missing:
            group = spec if _cost(spec) >= 0.5 else "fast"
            items = by_group.setdefault((ref, group), [])
            if not items or items[-1][0] != c:
                items.append((c, []))
            items[-1][1].append((spec, k))
    for (ref, _), items in by_group.items():
        per_case = max(sum(_cost(spec) for spec, _ in keyed) for _, keyed in items)
        size = max(1, int(_TASK_SECONDS / per_case))
        for chunk in _chunks(items, size):
            n = sum(len(k) for _, k in chunk)
            cost = sum(_cost(s) for _, k in chunk for s, _ in k)
            tasks.append((cost, n, {"kind": "negative", "image": ref, "seed": seed,
                                    "cases": chunk, "quiet_warnings": quiet}))
    tasks.sort(key=lambda t: -t[0])
    bar = Progress(total_cases, cached=cached_cases, total_cost=sum(t[0] for t in tasks),
                   enabled=progress)
    bar.update(cached_cases)
    computed = 0

    with cache_path.open("a", encoding="utf-8") as cache:
        if not _ends_with_newline(cache_path):
            cache.write("\n")  # end a line torn by an interrupted write
        def accept(records: list[dict]) -> int:
            n = 0
            for rec in records:
                if rec["kind"] != "embed":
                    n += 1
                if rec["key"] in done:
                    continue
                done[rec["key"]] = rec
                cache.write(json.dumps(rec, default=_json_default) + "\n")
            cache.flush()
            return n

        if config.jobs <= 1 or len(tasks) <= 1:
            for cost, _, task in tasks:
                n = accept(_run_task(task))
                computed += n
                bar.update(n, cost)
        else:
            computed += _run_pool(tasks, config.jobs, accept, bar, log, cache_path)

    records = [done[k] for k in keys if k in done]
    return BenchResult(config=config, methods=methods, skipped_methods=skipped,
                       records=records, computed=computed, cached=cached_cases,
                       seconds=time.perf_counter() - t_start)


def _ends_with_newline(path: Path) -> bool:
    """True for an empty file or one whose last byte is a newline."""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return True
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


_WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1"}


def _run_pool(tasks, jobs, accept, bar, log, cache_path) -> int:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # One thread per worker: the workers already fill the cores. The environment is
    # copied into each spawned worker when it starts.
    saved = {k: os.environ.get(k) for k in _WORKER_ENV}
    os.environ.update(_WORKER_ENV)
    computed = 0
    ctx = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx)
    clean_exit = False
    try:
        pending = {executor.submit(_run_task, task): cost for cost, _, task in tasks}
        waiting = set(pending)
        while waiting:
            finished, waiting = wait(waiting, return_when=FIRST_COMPLETED)
            for fut in finished:
                n = accept(fut.result())
                computed += n
                bar.update(n, pending[fut])
        clean_exit = True
    except KeyboardInterrupt:
        log(f"\nbench: interrupted; finished cases are kept in {cache_path}: "
            "run the same command again to resume")
        raise
    finally:
        # On an error or Ctrl-C: drop the queued tasks; what finished is cached.
        executor.shutdown(wait=clean_exit, cancel_futures=not clean_exit)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return computed


def default_jobs() -> int:
    """Worker processes by default: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def summarise(records: Sequence[dict]) -> str:
    """One line: how many records of each kind."""
    kinds: dict[str, int] = {}
    for r in records:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    return ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
