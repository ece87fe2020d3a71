"""The service as a process: ``python -m provmark.server --config FILE`` on a loopback
port answers its health checks, does not make the first request pay the kernels'
load time, and on SIGTERM finishes the requests in flight before it stops.
"""

from __future__ import annotations

import signal
import statistics
import threading
import time

import pytest

from test_server_support import ACME, ACME_KEY, ServerProcess, encode, photo

import httpx  # noqa: E402  (skipped by the support module when absent)

pytestmark = pytest.mark.slow


def test_serve_answers_and_the_first_request_is_warm(tmp_path):
    srv = ServerProcess(tmp_path, workers=1, queue=2).start()
    try:
        assert httpx.get(srv.url + "/healthz").json()["status"] == "ok"
        ready = httpx.get(srv.url + "/readyz").json()
        assert ready["status"] == "ready" and ready["warm_up_seconds"][0] > 0
        jpeg = encode(photo("chelsea", 640, 448), "JPEG", quality=90)
        times = []
        with httpx.Client(base_url=srv.url, timeout=60) as client:
            for i in range(4):
                t0 = time.perf_counter()
                r = client.post(f"/v1/embed?provider={ACME}&content_id={i}", content=jpeg,
                                headers={"X-API-Key": ACME_KEY, "Content-Type": "image/jpeg"})
                times.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
        # Loading the kernels in a fresh process costs about a second; the warmed
        # worker answers the first request as fast as the later ones.
        assert times[0] < 2 * statistics.median(times[1:]) + 0.15, times
    finally:
        srv.stop()
    assert "workers stopped" in srv.log()


def test_sigterm_finishes_requests_in_flight(tmp_path):
    srv = ServerProcess(tmp_path, workers=1, queue=2, graceful_shutdown_seconds=60).start()
    unmarked = encode(photo("astronaut", 512, 384), "JPEG", quality=90)
    result = {}

    def slow_request():
        # The exhaustive search of an unmarked image takes seconds.
        try:
            result["response"] = httpx.post(srv.url + "/v1/inspect?search=exhaustive",
                                            content=unmarked, timeout=120)
        except httpx.HTTPError as exc:  # pragma: no cover - the failure being tested for
            result["error"] = exc

    try:
        t = threading.Thread(target=slow_request)
        t.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if httpx.get(srv.url + "/readyz").json()["admitted"] == 1:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the request was never admitted")
        srv.proc.send_signal(signal.SIGTERM)
        t.join(120)
        srv.proc.wait(60)
    finally:
        srv.stop()
    assert "error" not in result, result.get("error")
    resp = result["response"]
    assert resp.status_code == 200 and resp.json()["verdict"] == "no label"
    log = srv.log()
    # uvicorn stopped accepting, waited for the request, then the workers stopped.
    assert log.index("Shutting down") < log.index('"path": "/v1/inspect"')
    assert log.index('"path": "/v1/inspect"') < log.index("workers stopped")
    with pytest.raises(httpx.ConnectError):
        httpx.get(srv.url + "/healthz", timeout=2)


def test_bad_configuration_exits_2(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "provmark.toml"
    path.write_text('[server]\nworkers = "two"\n', encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "provmark.server", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "workers must be an integer" in proc.stderr and str(path) in proc.stderr
