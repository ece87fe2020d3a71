"""Long fuzzing runs of the harnesses in ``harnesses.py``, one after the other.

``make fuzz`` runs this: every harness (or those named) for ``--minutes`` each under
atheris (coverage-guided libFuzzer) when it is installed (``pip install -e
'.[fuzz]'``), else under a plain mutation fuzzer written here. Each harness runs in
its own process with the limits of issue 11: an input taking more than 5 s is a hang,
more than 1 GB of memory is a failure. The corpus a run grows is kept in
``OUT/<harness>/corpus`` and the next run starts from it (with the committed seeds
of ``tests/fuzz/corpus``); a crash, hang or out-of-memory input is saved as
``OUT/<harness>/crash-*``, ``timeout-*`` or ``oom-*``: reproduce it with
``python tests/fuzz/run.py --replay FILE --harness NAME``. The summary (executions,
time, crashes, slowest input, peak RSS per harness) is printed as a Markdown table
and written to ``OUT/summary.md`` and ``OUT/summary.json``.

Examples
--------
::

    python tests/fuzz/run.py --minutes 10                 # every harness, 10 min each
    python tests/fuzz/run.py --seconds 30 xmp containers  # two harnesses, 30 s each
    python tests/fuzz/run.py --replay fuzz-output/xmp/crash-1f2e --harness xmp
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harnesses import (  # noqa: E402
    HANG_SECONDS,
    HARNESSES,
    IMAGE_MAX_PIXELS,
    RSS_LIMIT_MB,
    Harness,
)

#: Modules instrumented for coverage, per harness (atheris rewrites their bytecode).
_INSTRUMENT = {
    "image": ("provmark._io", "provmark._image", "PIL.Image", "PIL.ImageFile",
              "PIL.PngImagePlugin", "PIL.JpegImagePlugin", "PIL.WebPImagePlugin",
              "PIL.TiffImagePlugin", "PIL.MpoImagePlugin"),
}
_ARTIFACT = re.compile(r"^(crash|timeout|oom|leak|slow-unit)-")


def _have_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- #
# Inside one harness process
# --------------------------------------------------------------------------- #
def _import_instrumented(h: Harness) -> None:
    import atheris

    modules = _INSTRUMENT.get(h.name, h.modules)
    with atheris.instrument_imports(include=list(modules)):
        for mod in modules:
            importlib.import_module(mod)


def atheris_worker(name: str, libfuzzer_args: list[str]) -> None:
    import atheris

    h = HARNESSES[name]
    _import_instrumented(h)
    atheris.Setup([sys.argv[0], *libfuzzer_args], h.check)
    atheris.Fuzz()


def _mutate(data: bytes, pool: list[bytes], rng: random.Random, max_len: int) -> bytes:
    """A few random edits: flips, inserts, deletes, repeats, splices, interesting bytes."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(7)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 2 and b:
            del b[pos : pos + rng.randint(1, 64)]
        elif op == 3 and b:
            start = rng.randrange(len(b))
            piece = b[start : start + rng.randint(1, 64)]
            b[pos:pos] = piece * rng.randint(1, 32)
        elif op == 4 and pool:
            other = rng.choice(pool)
            start = rng.randrange(len(other) + 1)
            b[pos:] = other[start : start + rng.randint(1, 4096)]
        elif op == 5 and b:
            b[min(pos, len(b) - 1)] = rng.choice((0, 0xFF, 0x7F, 0x80, 0x3C, 0x3E, 0x22, 0x26))
        elif op == 6 and len(b) >= 4:
            at = min(pos, len(b) - 4)
            b[at : at + 4] = rng.choice((b"\xff\xff\xff\xff", b"\x00\x00\x00\x00",
                                         b"\x7f\xff\xff\xff", b"\x00\x00\xff\xff"))
    return bytes(b[:max_len])


def _warm_up(h: Harness) -> None:
    """Import what the harness uses, so that no input is charged the import time."""
    for mod in _INSTRUMENT.get(h.name, h.modules):
        importlib.import_module(mod)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def mutate_worker(name: str, seconds: float, out: Path, seed: int) -> None:
    """The fallback engine: random mutations of the corpus, hang and memory limits."""
    h = HARNESSES[name]
    rng = random.Random(seed)
    corpus_dir = out / name / "corpus"
    pool = [f.read_bytes() for d in (h.seeds, corpus_dir) if d.is_dir()
            for f in sorted(d.iterdir()) if f.is_file()] or [b""]

    def on_alarm(signum, frame):
        raise TimeoutError(f"one input ran for more than {HANG_SECONDS} s")

    signal.signal(signal.SIGALRM, on_alarm)
    _warm_up(h)
    execs = crashes = 0
    slowest = 0.0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        data = _mutate(rng.choice(pool), pool, rng, h.max_len)
        t = time.monotonic()
        signal.alarm(HANG_SECONDS)
        try:
            h.check(data)
        except Exception as exc:  # noqa: BLE001 - every failure is a finding
            kind = "timeout" if isinstance(exc, TimeoutError) else "crash"
            crashes += 1
            path = out / name / f"{kind}-{execs:09d}"
            path.write_bytes(data)
            print(f"==== {kind}: {path}\n{traceback.format_exc()}", flush=True)
        finally:
            signal.alarm(0)
        slowest = max(slowest, time.monotonic() - t)
        execs += 1
        if execs % 256 == 0 and _rss_mb() > RSS_LIMIT_MB:
            path = out / name / f"oom-{execs:09d}"
            path.write_bytes(data)
            print(f"==== out-of-memory: {_rss_mb():.0f} MB > {RSS_LIMIT_MB} MB; {path}", flush=True)
            crashes += 1
            break
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"stat::number_of_executed_units: {execs}")
    print(f"stat::slowest_unit_time_sec: {slowest:.3f}")
    print(f"stat::peak_rss_mb: {peak:.0f}")
    print(f"stat::crashes: {crashes}")


# --------------------------------------------------------------------------- #
# The driver
# --------------------------------------------------------------------------- #
def _stats(log: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"stat::(\w+):\s*([\d.]+)", log)}


def run_one(h: Harness, seconds: float, out: Path, engine: str) -> dict:
    work = out / h.name
    (work / "corpus").mkdir(parents=True, exist_ok=True)
    before = {p.name for p in work.iterdir()}
    env = dict(os.environ)
    if h.name == "image":
        env["PROVMARK_MAX_PIXELS"] = IMAGE_MAX_PIXELS
    me = str(Path(__file__).resolve())
    if engine == "atheris":
        cmd = [sys.executable, me, "--worker", h.name, "--",
               str(work / "corpus"), str(h.seeds),
               f"-max_total_time={int(seconds)}", f"-timeout={HANG_SECONDS}",
               f"-rss_limit_mb={RSS_LIMIT_MB}", f"-max_len={h.max_len}",
               "-print_final_stats=1", "-report_slow_units=2",
               f"-artifact_prefix={work}/"]
    else:
        cmd = [sys.executable, me, "--worker", h.name, "--engine", "mutate",
               "--seconds", str(seconds), "--out", str(out)]
    print(f"== {h.name}: {h.about} ({engine}, {seconds:.0f} s)", flush=True)
    t0 = time.monotonic()
    with open(work / "log.txt", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    elapsed = time.monotonic() - t0
    text = (work / "log.txt").read_text(errors="replace")
    st = _stats(text)
    found = sorted(p.name for p in work.iterdir()
                   if p.name not in before and _ARTIFACT.match(p.name))
    failures = [f for f in found if not f.startswith("slow-unit-")]
    row = {
        "harness": h.name,
        "engine": engine,
        "executions": int(st.get("number_of_executed_units", 0)),
        "seconds": round(elapsed, 1),
        "failures": failures,
        "slow_units": [f for f in found if f.startswith("slow-unit-")],
        "slowest_unit_s": st.get("slowest_unit_time_sec"),
        "peak_rss_mb": st.get("peak_rss_mb"),
        "corpus": sum(1 for _ in (work / "corpus").iterdir()),
        "exit_code": proc.returncode,
    }
    print(f"   {row['executions']} executions in {elapsed:.0f} s, failures {failures or 'none'}, "
          f"slowest {row['slowest_unit_s']} s, peak RSS {row['peak_rss_mb']} MB", flush=True)
    return row


def table(rows: list[dict]) -> str:
    lines = ["| harness | engine | executions | time (s) | exec/s | crashes / hangs / OOM "
             "| slowest input (s) | peak RSS (MB) | corpus |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        rate = r["executions"] / r["seconds"] if r["seconds"] else 0
        fails = ", ".join(r["failures"]) or "0"
        lines.append(f"| {r['harness']} | {r['engine']} | {r['executions']:,} | {r['seconds']:.0f} "
                     f"| {rate:,.0f} | {fails} | {r['slowest_unit_s']} | {r['peak_rss_mb']} "
                     f"| {r['corpus']} |")
    return "\n".join(lines)


def replay(path: Path, name: str) -> int:
    h = HARNESSES[name]
    if name == "image":
        os.environ.setdefault("PROVMARK_MAX_PIXELS", IMAGE_MAX_PIXELS)
    data = path.read_bytes()
    _warm_up(h)
    t = time.perf_counter()
    try:
        h.check(data)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print(f"{path}: FAILS harness {name} after {time.perf_counter() - t:.2f} s")
        return 1
    print(f"{path}: passes harness {name} in {time.perf_counter() - t:.2f} s, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--worker" in argv:  # inside a harness process
        i = argv.index("--worker")
        name = argv[i + 1]
        if "--engine" in argv:
            seconds = float(argv[argv.index("--seconds") + 1])
            out = Path(argv[argv.index("--out") + 1])
            mutate_worker(name, seconds, out, seed=int(time.time()))
            return 0
        atheris_worker(name, argv[argv.index("--") + 1:] if "--" in argv else [])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("harnesses", nargs="*", metavar="HARNESS",
                   help=f"harnesses to run (default: all of {', '.join(HARNESSES)})")
    p.add_argument("--minutes", type=float, default=10.0, help="time per harness (default 10)")
    p.add_argument("--seconds", type=float,
                   help="time per harness in seconds (overrides --minutes)")
    p.add_argument("--out", type=Path, default=Path("fuzz-output"),
                   help="where corpora, failures and the summary go (default fuzz-output)")
    p.add_argument("--engine", choices=("auto", "atheris", "mutate"), default="auto")
    p.add_argument("--replay", type=Path, help="run one saved input through --harness")
    p.add_argument("--harness", help="the harness for --replay")
    args = p.parse_args(argv)
    if args.replay:
        if args.harness not in HARNESSES:
            p.error(f"--replay needs --harness, one of {', '.join(HARNESSES)}")
        return replay(args.replay, args.harness)
    unknown = [n for n in args.harnesses if n not in HARNESSES]
    if unknown:
        p.error(f"unknown harness(es) {unknown}; choose from {', '.join(HARNESSES)}")
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if _have_atheris() else "mutate"
    elif engine == "atheris" and not _have_atheris():
        p.error("atheris is not installed: pip install -e '.[fuzz]', or use --engine mutate")
    seconds = args.seconds if args.seconds is not None else args.minutes * 60
    rows = [run_one(HARNESSES[n], seconds, args.out, engine) for n in (args.harnesses or HARNESSES)]
    md = table(rows)
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text(md + "\n")
    (args.out / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 1 if any(r["failures"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
