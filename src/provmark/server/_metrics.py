"""The service's metrics in the Prometheus text exposition format (version 0.0.4).

This module owns what ``GET /metrics`` reports: requests by endpoint and status,
request latency histograms by endpoint, images marked, detections and marks found,
and the pool's state (workers, admitted and running requests). The few counters and
histograms are kept here in plain Python (the event loop is the only writer), so
the service needs no client library.
"""

from __future__ import annotations

import math
from collections import defaultdict

#: Latency histogram bucket bounds, seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _labels(pairs: dict) -> str:
    if not pairs:
        return ""
    text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(pairs.items()))
    return "{" + text + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Metrics:
    """Counters and histograms of one service instance."""

    def __init__(self):
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency_counts: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.marked: dict[str, int] = defaultdict(int)
        self.detections: dict[str, int] = defaultdict(int)
        self.found: dict[str, int] = defaultdict(int)

    def observe_request(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        self.requests[(method, endpoint, int(status))] += 1
        counts = self.latency_counts.setdefault(endpoint, [0] * (len(LATENCY_BUCKETS) + 1))
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                counts[i] += 1
        counts[-1] += 1
        self.latency_sum[endpoint] += seconds

    def observe_job(self, endpoint: str, info: dict) -> None:
        """Count an image marked (``info["marked"]``) or a detection and whether a
        mark was found (``info["found"]``)."""
        if info.get("marked"):
            self.marked[endpoint] += 1
        if "found" in info:
            self.detections[endpoint] += 1
            if info["found"]:
                self.found[endpoint] += 1

    def render(self, pool=None) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help_: str, samples) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value, suffix in samples:
                out.append(f"{name}{suffix}{_labels(labels)} {_num(value)}")

        family("provmark_requests_total", "counter", "HTTP requests answered.",
               [({"method": m, "endpoint": e, "status": s}, n, "")
                for (m, e, s), n in sorted(self.requests.items())])
        hist = []
        for endpoint in sorted(self.latency_counts):
            counts = self.latency_counts[endpoint]
            for bound, n in zip(LATENCY_BUCKETS, counts):
                hist.append(({"endpoint": endpoint, "le": _num(bound)}, n, "_bucket"))
            hist.append(({"endpoint": endpoint, "le": "+Inf"}, counts[-1], "_bucket"))
            hist.append(({"endpoint": endpoint}, self.latency_sum[endpoint], "_sum"))
            hist.append(({"endpoint": endpoint}, counts[-1], "_count"))
        family("provmark_request_duration_seconds", "histogram",
               "Time from the request's arrival to its response, seconds.", hist)
        family("provmark_images_marked_total", "counter",
               "Images watermarked (embed) or labelled (label).",
               [({"endpoint": e}, n, "") for e, n in sorted(self.marked.items())])
        family("provmark_detections_total", "counter", "Images examined (detect, inspect).",
               [({"endpoint": e}, n, "") for e, n in sorted(self.detections.items())])
        family("provmark_marks_found_total", "counter",
               "Examined images in which a mark was found.",
               [({"endpoint": e}, n, "") for e, n in sorted(self.found.items())])
        if pool is not None:
            family("provmark_workers", "gauge", "Worker processes in the pool.",
                   [({}, pool.workers, "")])
            family("provmark_capacity", "gauge", "Requests admitted at once (workers + queue).",
                   [({}, pool.capacity, "")])
            family("provmark_admitted_requests", "gauge",
                   "Requests holding a slot (uploading, queued or running).",
                   [({}, pool.admitted, "")])
            family("provmark_running_jobs", "gauge", "Jobs running or queued in the workers.",
                   [({}, pool.running, "")])
            family("provmark_ready", "gauge", "1 when the warmed workers take requests.",
                   [({}, int(pool.ready), "")])
        return "\n".join(out) + "\n"
