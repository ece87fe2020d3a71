"""Load test of the HTTP service against the same work done in-process (issue 16).

Two phases in one run, each ``--duration`` seconds with ``--clients`` concurrent
clients (default 16 for 60 s) issuing a 50/50 mix of embed and detect requests on
1080p JPEGs:

1. **service**: ``python -m provmark.server`` started by this script on a loopback
   port with ``--workers`` worker processes and a queue as long as the number of
   clients (so that a request is never refused for a full queue); each client is a
   thread with its own keep-alive ``httpx.Client``. Embed posts a 1920x1080 JPEG
   (quality 90) with an API key bound to the provider and gets the marked JPEG back;
   detect posts a marked copy re-encoded at quality 85 and gets the JSON.
2. **in-process**: a process pool of the same size, initialised and warmed exactly
   like the service's (``provmark.server._work.init_worker``), the same job functions
   on the same bytes, submitted by the same number of client threads.

The difference in throughput is the service's overhead (HTTP, request parsing,
routing, auth, logging, moving bodies between processes). Reported per phase:
requests, errors (any status other than 200, any exception), throughput, p50/p99
latency (overall and per kind), and for the service its resident memory (server
plus workers, sampled every second) averaged over the first and the last 10 s.

The bar (issue 16): 0 errors, service throughput >= 80% of in-process, RSS growth
< 10%. Linux only (memory is read from /proc).

    python benchmarks/load_test.py                        # 16 clients x 60 s, both phases
    python benchmarks/load_test.py --duration 10 --out /tmp/load.md   # a quick look

Images: scikit-image's astronaut, coffee, chelsea and rocket photos resized to
1920x1080 (nothing is downloaded).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as _dt
import io
import json
import multiprocessing
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
PROVIDER = 4242
API_KEY = "load-test-client-key-0123456789abcdef"
WATERMARK_KEY = b"load test watermark key"


# --------------------------------------------------------------------------- images


def _jpeg(rgb: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def make_images() -> tuple[list[bytes], list[bytes]]:
    """``(sources, marked)``: 1080p JPEGs to embed into, and marked copies (the
    provider's key) re-encoded at quality 85 to detect in."""
    import cv2
    import skimage.data
    from PIL import Image

    import provmark

    sources, marked = [], []
    for i, name in enumerate(PHOTOS):
        rgb = cv2.resize(getattr(skimage.data, name)(), (1920, 1080),
                         interpolation=cv2.INTER_CUBIC)
        src = _jpeg(np.ascontiguousarray(rgb), 90)
        sources.append(src)
        out = provmark.embed_bytes(src, provmark.Payload(PROVIDER, 1000 + i), key=WATERMARK_KEY)
        marked.append(_jpeg(np.asarray(Image.open(io.BytesIO(out)).convert("RGB")), 85))
    return sources, marked


# --------------------------------------------------------------------------- measurement


@dataclass
class Phase:
    name: str
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"embed": [], "detect": []})
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    rss: list[tuple[float, int]] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def summary(self) -> dict:
        def pct(values, q):
            return round(float(np.percentile(values, q)) * 1e3, 1) if values else None

        both = self.latencies["embed"] + self.latencies["detect"]
        out = {"phase": self.name, "requests": self.requests, "errors": len(self.errors),
               "seconds": round(self.seconds, 1),
               "throughput_rps": round(self.requests / self.seconds, 2) if self.seconds else 0,
               "p50_ms": pct(both, 50), "p99_ms": pct(both, 99)}
        for kind, values in self.latencies.items():
            out[f"{kind}_n"] = len(values)
            out[f"{kind}_p50_ms"] = pct(values, 50)
            out[f"{kind}_p99_ms"] = pct(values, 99)
        if self.rss:
            t0 = self.rss[0][0]
            end = self.rss[-1][0]
            first = [r for t, r in self.rss if t - t0 < 10]
            last = [r for t, r in self.rss if end - t < 10]
            out["rss_first_10s_mb"] = round(float(np.mean(first)) / 2**20, 1)
            out["rss_last_10s_mb"] = round(float(np.mean(last)) / 2**20, 1)
            out["rss_growth_pct"] = round(100 * (float(np.mean(last) / np.mean(first)) - 1), 2)
        if self.errors:
            out["first_errors"] = self.errors[:5]
        return out


def _rss_tree(pid: int) -> int:
    """Resident memory (bytes) of ``pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode("ascii", "replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def _run_clients(phase: Phase, clients: int, duration: float, call, jobs) -> None:
    """``clients`` threads, each calling ``call(client_index, kind, data)`` in a loop
    over ``jobs`` (alternating embed and detect, offset per client) until
    ``duration`` seconds have passed; latencies and errors go into ``phase``."""
    lock = threading.Lock()
    stop_at = time.monotonic() + duration
    start = threading.Barrier(clients + 1)

    def client(i: int) -> None:
        n = i
        start.wait()
        while time.monotonic() < stop_at:
            kind, data = jobs[n % len(jobs)]
            n += 1
            t0 = time.perf_counter()
            try:
                err = call(i, kind, data)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                err = f"{type(exc).__name__}: {exc}"
            dt = time.perf_counter() - t0
            with lock:
                if err:
                    phase.errors.append(f"{kind}: {err}")
                else:
                    phase.latencies[kind].append(dt)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    phase.seconds = time.monotonic() - t0


def _mix(sources: list[bytes], marked: list[bytes]) -> list[tuple[str, bytes]]:
    jobs = []
    for src, mk in zip(sources, marked):
        jobs += [("embed", src), ("detect", mk)]
    return jobs


# --------------------------------------------------------------------------- phases


def run_service(args, sources, marked, workdir: Path) -> Phase:
    import httpx

    from provmark.server import hash_api_key

    port = args.port or _free_port()
    key_file = workdir / "provider.key"
    key_file.write_bytes(WATERMARK_KEY)
    config = workdir / "provmark.toml"
    config.write_text(f"""
[server]
host = "127.0.0.1"
port = {port}
workers = {args.workers}
queue = {args.clients}
timeout_seconds = 120
log_level = "info"

[[provider]]
code = {PROVIDER}
name = "load"
key_file = "{key_file}"

[[api_key]]
name = "load-test"
hash = "{hash_api_key(API_KEY)}"
providers = [{PROVIDER}]
""", encoding="utf-8")
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "provmark.server", "--config", str(config)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    phase = Phase("service")
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited: see {workdir / 'server.log'}")
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready in 300 s")
            time.sleep(0.2)
        sessions = [httpx.Client(base_url=url, timeout=120,
                                 headers={"X-API-Key": API_KEY, "Content-Type": "image/jpeg"})
                    for _ in range(args.clients)]

        def call(i, kind, data):
            if kind == "embed":
                r = sessions[i].post(f"/v1/embed?provider={PROVIDER}&content_id={i}", content=data)
            else:
                r = sessions[i].post(f"/v1/detect?provider={PROVIDER}", content=data)
            if r.status_code != 200:
                return f"HTTP {r.status_code}: {r.text[:200]}"
            if kind == "detect" and not r.json()["found"]:
                return "detect: mark not found"
            return None

        sampling = threading.Event()

        def sample():
            while not sampling.is_set():
                phase.rss.append((time.monotonic(), _rss_tree(proc.pid)))
                sampling.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _run_clients(phase, args.clients, args.duration, call, _mix(sources, marked))
        sampling.set()
        sampler.join()
        for s in sessions:
            s.close()
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    return phase


def run_in_process(args, sources, marked) -> Phase:
    from provmark.server import _work

    ctx = multiprocessing.get_context("spawn")
    phase = Phase("in-process")
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=args.workers, mp_context=ctx, initializer=_work.init_worker,
            initargs=(50_000_000, 1)) as pool:
        seen: set[int] = set()
        while len(seen) < args.workers:  # start and warm every worker, as the service does
            seen |= {pid for pid, _ in pool.map(_ping, range(args.workers))}

        def call(i, kind, data):
            if kind == "embed":
                out = pool.submit(_work.embed_job, data, provider=PROVIDER, content_id=i,
                                  label=1, key=WATERMARK_KEY).result()
            else:
                out = pool.submit(_work.detect_job, data, key=WATERMARK_KEY).result()
            if out.status != 200:
                return f"{out.status}: {out.message}"
            if kind == "detect" and not out.body["found"]:
                return "detect: mark not found"
            return None

        _run_clients(phase, args.clients, args.duration, call, _mix(sources, marked))
    return phase


def _ping(_):
    from provmark.server import _work

    return _work.ping()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- report


def machine() -> dict:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    import fastapi
    import uvicorn

    import provmark

    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem,
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "provmark": provmark.__version__,
            "fastapi": fastapi.__version__, "uvicorn": uvicorn.__version__}


def markdown(result: dict) -> str:
    s, p = result["service"], result["in_process"]
    m = result["machine"]
    bar = result["bar"]
    ratio = result["service_over_in_process"]

    def row(x):
        return (f"| {x['phase']} | {x['requests']} | {x['errors']} | {x['throughput_rps']} | "
                f"{x['p50_ms']} | {x['p99_ms']} | {x['embed_p50_ms']} / {x['embed_p99_ms']} | "
                f"{x['detect_p50_ms']} / {x['detect_p99_ms']} |")

    ok = lambda b: "yes" if b else "NO"  # noqa: E731
    return f"""# Load test: the HTTP service against the same work in-process (issue 16)

{result['clients']} concurrent clients for {result['duration']:g} s per phase, a 50/50 mix of
embed (1920x1080 JPEG q90 in, marked JPEG out) and detect (marked copy re-encoded at q85,
the provider's key) over {result['workers']} worker process(es); the service on loopback
(uvicorn started by the script, queue = clients), then a process pool of the same size
running the same job functions in-process. Latency is per request as the client sees it.

| phase | requests | errors | throughput (req/s) | p50 (ms) | p99 (ms) | embed p50 / p99 (ms) | detect p50 / p99 (ms) |
|---|---|---|---|---|---|---|---|
{row(s)}
{row(p)}

- Service throughput / in-process: **{ratio:.1%}** (bar >= 80%: {ok(bar['throughput'])}).
- Errors: service {s['errors']}, in-process {p['errors']} (bar 0: {ok(bar['errors'])}).
- Service RSS (server + workers): {s['rss_first_10s_mb']} MB over the first 10 s,
  {s['rss_last_10s_mb']} MB over the last 10 s: **{s['rss_growth_pct']:+.2f}%**
  (bar < 10%: {ok(bar['rss'])}).

Command: `{result['command']}`
Run: {result['started']} - {result['finished']}; load average (1 min) {result['load_before']:.2f}
before, {result['load_after']:.2f} after.

Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, {m['os']}, Python {m['python']},
provmark {m['provmark']}, FastAPI {m['fastapi']}, uvicorn {m['uvicorn']}.
**The machine was shared with other work during the run** (other sessions' tests and
builds): absolute figures are noisy; the two phases ran back to back in the same run.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: the number of CPUs)")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/load_test.md"),
                        help="markdown report")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = os.getloadavg()[0]
    print("making 1080p images ...", file=sys.stderr)
    sources, marked = make_images()
    with tempfile.TemporaryDirectory(prefix="provmark-load-") as tmp:
        print(f"service phase: {args.clients} clients x {args.duration:g} s ...", file=sys.stderr)
        service = run_service(args, sources, marked, Path(tmp)).summary()
    print(json.dumps(service), file=sys.stderr)
    print(f"in-process phase: {args.clients} clients x {args.duration:g} s ...", file=sys.stderr)
    in_process = run_in_process(args, sources, marked).summary()
    print(json.dumps(in_process), file=sys.stderr)
    ratio = service["throughput_rps"] / in_process["throughput_rps"]
    result = {
        "clients": args.clients, "duration": args.duration, "workers": args.workers,
        "service": service, "in_process": in_process, "service_over_in_process": ratio,
        "bar": {"errors": service["errors"] == 0 and in_process["errors"] == 0,
                "throughput": bool(ratio >= 0.8), "rss": bool(service["rss_growth_pct"] < 10)},
        "command": "python " + " ".join(shlex.quote(a) for a in
                                        ["benchmarks/load_test.py", *(argv or sys.argv[1:])]),
        "started": started, "load_before": load_before, "load_after": os.getloadavg()[0],
        "finished": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(result), encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(result))
    return 0 if all(result["bar"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
