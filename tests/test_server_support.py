"""Shared helpers of the service's tests (tests/test_server*.py); no tests here.

Configurations with API keys and providers, images made in memory from scikit-image's
photos (marked with the library), a hand-made PNG whose header claims 100 megapixels,
a warmed worker pool shared by a module's apps, and a real server started on a
loopback port (``python -m provmark.server``) for the browser and shutdown tests.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the service needs the server extra: pip install "
                                      "'provmark[server]'")
pytest.importorskip("httpx", reason="the service tests drive it with httpx")

import provmark  # noqa: E402
from provmark.server import hash_api_key, parse_config  # noqa: E402
from provmark.server._pool import WorkerPool  # noqa: E402

#: Client API keys (only their hashes go into the configurations).
ACME_KEY = "acme-client-key-0123456789abcdef"
GLOBEX_KEY = "globex-client-key-fedcba9876543210"
#: Provider codes: ACME has its own secret watermark key; PUBLIC uses the public key.
ACME, GLOBEX, PUBLIC = 4242, 5151, 77
ACME_WATERMARK_KEY = b"acme secret watermark key, never sent to a client"
ACME_PRODUCER = "001191110108MA01KP2T5U00000"


def config_dict(tmp_path: Path, **server) -> dict:
    """A configuration: ACME (key file), GLOBEX (key in the environment, see
    :func:`environ`) and PUBLIC (public key); ACME_KEY may embed for ACME and PUBLIC,
    GLOBEX_KEY for GLOBEX."""
    key_file = tmp_path / "acme.key"
    key_file.write_bytes(ACME_WATERMARK_KEY + b"\n")
    return {
        "server": {"workers": 1, "queue": 4, **server},
        "provider": [
            {"code": ACME, "name": "acme", "key_file": str(key_file),
             "content_producer": ACME_PRODUCER},
            {"code": GLOBEX, "name": "globex", "key_env": "PROVMARK_TEST_GLOBEX_KEY"},
            {"code": PUBLIC, "name": "public"},
        ],
        "api_key": [
            {"name": "acme-generator", "hash": hash_api_key(ACME_KEY), "providers": [ACME, PUBLIC]},
            {"name": "globex-generator", "hash": hash_api_key(GLOBEX_KEY), "providers": [GLOBEX]},
        ],
    }


def environ() -> dict:
    return {"PROVMARK_TEST_GLOBEX_KEY": "globex watermark key"}


def make_config(tmp_path: Path, **server):
    return parse_config(config_dict(tmp_path, **server), source="test.toml", environ=environ())


def toml_text(data: dict) -> str:
    """``data`` (the shape of :func:`config_dict`) as TOML."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    lines = ["[server]"] + [f"{k} = {value(v)}" for k, v in data.get("server", {}).items()]
    for table in ("provider", "api_key"):
        for entry in data.get(table, []):
            lines += ["", f"[[{table}]]"] + [f"{k} = {value(v)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


def encode(rgb: np.ndarray, fmt: str = "JPEG", **kw) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format=fmt, **kw)
    return buf.getvalue()


def photo(name: str = "coffee", width: int = 640, height: int = 448) -> np.ndarray:
    import cv2
    import skimage.data

    src = getattr(skimage.data, name)()
    return np.ascontiguousarray(cv2.resize(src, (width, height), interpolation=cv2.INTER_AREA))


def png_bomb(width: int = 10000, height: int = 10000) -> bytes:
    """A PNG of about 100 bytes whose header claims ``width`` x ``height`` RGB pixels
    (100 megapixels by default: 300 MB if anything decoded it)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096, 9)  # the first rows only
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def start_pool(workers: int = 1, queue: int = 4, max_pixels: int = 50_000_000) -> WorkerPool:
    pool = WorkerPool(workers, queue, max_pixels=max_pixels)
    asyncio.run(pool.start())
    return pool


def stop_pool(pool: WorkerPool) -> None:
    asyncio.run(pool.close())


def marked_jpeg(provider: int = PUBLIC, content_id: int = 123456789, *, key=None,
                name: str = "coffee", quality: int = 90) -> bytes:
    """A photo marked by the library (public key by default), saved as JPEG."""
    src = encode(photo(name), "PNG")
    return provmark.embed_bytes(src, provmark.Payload(provider, content_id), key=key,
                                format="jpeg", quality=quality)


# --------------------------------------------------------------------------- a real server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m provmark.server --config FILE`` on a free loopback port."""

    def __init__(self, tmp_path: Path, **server):
        self.port = free_port()
        data = config_dict(tmp_path, host="127.0.0.1", port=self.port, **server)
        self.config_path = tmp_path / "provmark.toml"
        self.config_path.write_text(toml_text(data), encoding="utf-8")
        self.log_path = tmp_path / "server.log"
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> ServerProcess:
        import httpx

        env = dict(os.environ, **environ())
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "provmark", "serve", "--config", str(self.config_path)],
            stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n"
                                   + self.log_path.read_text(errors="replace"))
            try:
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not become ready:\n" + self.log_path.read_text())

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
