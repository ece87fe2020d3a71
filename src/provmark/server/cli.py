"""``provmark serve``: the command-line shell over :mod:`provmark.server`.

:func:`add_serve_parser` registers the subcommand on provmark's parser; FastAPI and
uvicorn are imported only when the command runs, so other subcommands (and
installs without the ``server`` extra) are unaffected.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_serve_parser", "cmd_serve"]

_EXAMPLES = """\
examples:
  provmark serve --config provmark.toml          # the API and the analyst's page
  provmark serve --config provmark.toml --check  # check the configuration and exit
  provmark serve --hash-key < api-key.txt        # the hash to put in [[api_key]] hash = ...

The configuration (limits, providers and the files or environment variables holding
their watermark keys, API key hashes and the providers each may embed for) is
documented in docs/server.md. Keys are never given on the command line.

exit codes: 0 --check or --hash-key done, 2 usage or configuration error. Stopped by
SIGTERM or SIGINT, the service finishes the requests in flight, stops its workers and
ends by that signal (as uvicorn does)."""


def add_serve_parser(sub) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to ``sub`` (an argparse subparsers action)."""
    p = sub.add_parser(
        "serve", help="run the HTTP service (embed, label, detect, inspect) and the "
                      "analyst's page",
        description="Run provmark as an HTTP service (FastAPI on uvicorn): POST /v1/embed, "
                    "/v1/label, /v1/detect, /v1/inspect; GET /healthz, /readyz, /metrics, "
                    "/docs; the analyst's page at /. Needs provmark[server].",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE",
                   help="the service's TOML configuration (see docs/server.md)")
    p.add_argument("--host", help="listen address (overrides [server] host)")
    p.add_argument("--port", type=int, help="listen port (overrides [server] port)")
    p.add_argument("--check", action="store_true",
                   help="read and check the configuration (key files included), print a "
                        "summary without secrets, and exit")
    p.add_argument("--hash-key", action="store_true",
                   help="read an API key from standard input and print the line to store "
                        "in the configuration (sha256:...); the key is not echoed")
    p.set_defaults(func=cmd_serve)
    return p


def _summary(cfg) -> str:
    lines = [f"configuration {cfg.source}: listening on {cfg.host}:{cfg.port}, "
             f"{cfg.workers} worker(s) x {cfg.threads_per_worker} thread(s), queue {cfg.queue}, "
             f"body <= {cfg.max_body_bytes:,} bytes, <= {cfg.max_pixels:,} pixels, "
             f"timeout {cfg.timeout_seconds:g} s, detection {cfg.detect}"]
    for p in cfg.providers.values():
        lines.append(f"  provider {p.code} ({p.name}): key from {p.key_source}, "
                     f"fingerprint {p.key_fingerprint}"
                     + (f", ContentProducer {p.content_producer}" if p.content_producer else ""))
    for k in cfg.api_keys:
        embeds = ", ".join(str(c) for c in sorted(k.providers)) or "none"
        reads = ", ".join(str(c) for c in sorted(k.detect_providers))
        lines.append(f"  API key {k.name}: embeds for {embeds}"
                     + (f"; also reads with the keys of {reads}" if reads else ""))
    if not cfg.api_keys:
        lines.append("  no API keys: only detection with the public key is possible"
                     if cfg.detect == "open" else "  no API keys: every request will be refused")
    return "\n".join(lines)


def cmd_serve(args) -> int:
    """Run ``provmark serve``; returns the exit code."""
    from ._config import ConfigError, ServerConfig, hash_api_key, load_config

    if args.hash_key:
        key = sys.stdin.readline()
        try:
            print(hash_api_key(key))
        except ConfigError as exc:
            print(f"provmark serve: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        print(f"provmark serve: needs the server extra ({exc.name} is missing): "
              "pip install 'provmark[server]'", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config) if args.config else ServerConfig()
    except ConfigError as exc:
        print(f"provmark serve: {exc}", file=sys.stderr)
        return 2
    if args.port is not None and not 1 <= args.port <= 65535:
        print(f"provmark serve: --port {args.port}: use 1..65535", file=sys.stderr)
        return 2
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if overrides:
        import dataclasses

        cfg = dataclasses.replace(cfg, **overrides)
    if args.check:
        print(_summary(cfg))
        return 0
    from . import serve

    print(_summary(cfg), file=sys.stderr)
    serve(cfg)
    return 0
