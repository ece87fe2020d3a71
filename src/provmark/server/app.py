"""The HTTP service: routes, authentication, limits and the analyst's page.

This module owns the HTTP side of ``provmark serve`` (FastAPI): ``POST /v1/embed``
and ``/v1/label`` (an image in, the marked or labelled file out), ``POST /v1/detect``
and ``/v1/inspect`` (JSON; ``/v1/inspect/report`` the self-contained HTML report),
``GET /healthz``, ``/readyz``, ``/metrics`` (Prometheus), the OpenAPI schema and its
documentation page, and the analyst's page at ``/``. The pixel work runs in the
warmed process pool (:mod:`provmark.server._pool`) through the library's bytes API
(:mod:`provmark.server._work`); nothing here decodes or encodes an image.

Checks, in the order a request meets them: the body size (413, from
``Content-Length`` before anything is read, and while the body streams in); the API
key (401; compared as SHA-256 digests in constant time) and the provider it may act
for (403); the parameters (422); a free slot (503 with ``Retry-After``); the upload
and the job within the request's deadline (408, 504); the image itself (413 above
the pixel limit, 415 not a supported image, 422 unusable). Every error is a JSON
object ``{"error", "message", "request_id"}`` whose message says what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import time
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from .._payload import CONTENT_ID_BITS, PROVIDER_BITS
from . import _logging, _work
from ._config import ApiKey, ServerConfig, api_key_digest
from ._metrics import Metrics
from ._pool import PoolBroken, PoolFull, WorkerPool

STATIC_DIR = Path(__file__).resolve().parent / "static"
API_KEY_HEADER = "X-API-Key"
REQUEST_ID_HEADER = "X-Request-ID"
#: Media types accepted as a raw request body (the image file itself).
RAW_TYPES = ("image/png", "image/jpeg", "image/webp", "application/octet-stream")
#: Endpoints named in metrics; anything else is counted as "other" (bounded labels).
ENDPOINTS = ("/v1/embed", "/v1/label", "/v1/detect", "/v1/inspect", "/v1/inspect/report",
             "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/")
#: Content-Security-Policy of the page and of the HTML report (no scripts in it).
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: "
            "blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

log = logging.getLogger(_logging.LOGGER_NAME)


# --------------------------------------------------------------------------- errors


class ServiceError(Exception):
    """An error answered as ``{"error": code, "message": message, "request_id"}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class ErrorBody(BaseModel):
    """Every error response."""

    error: str = Field(description="A short machine-readable code, e.g. 'missing_api_key'.")
    message: str = Field(description="What was wrong and what to do.")
    request_id: str = Field(description="The request's ID (also in the X-Request-ID header).")


def error_response(status: int, code: str, message: str, headers: dict | None = None
                   ) -> JSONResponse:
    body = {"error": code, "message": message, "request_id": _logging.request_id.get()}
    return JSONResponse(body, status_code=status, headers=headers)


_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
               413: "body_too_large", 415: "unsupported_media_type"}


def _error_docs(*statuses: int) -> dict:
    text = {400: "The request body holds no image, or a malformed multipart form.",
            401: "No API key, or one that matches no configured key.",
            403: "The API key may not act for this provider.",
            408: "The upload did not arrive within the request's time limit.",
            413: "The body is larger than the service accepts, or the image has more "
                 "pixels than its limit (a decompression bomb is refused from its header).",
            415: "Not a PNG, JPEG or WebP still image, or a body type other than an image "
                 "or a multipart form.",
            422: "A parameter is invalid, or the image cannot be used (truncated, corrupt, "
                 "transparent, too small, or it cannot carry the mark).",
            503: "Every worker and queue place is taken, or the workers are warming up "
                 "or restarting (see Retry-After).",
            504: "The image took longer than the service's time limit."}
    return {s: {"model": ErrorBody, "description": text[s]} for s in statuses}


# --------------------------------------------------------------------------- models


class PayloadOut(BaseModel):
    version: int
    label: int = Field(description="1 AI-generated, 2 possibly, 3 suspected.")
    label_meaning: str
    provider: int
    content_id: int


class DetectionOut(BaseModel):
    """`provmark.Detection.to_dict()`; non-finite numbers are null."""

    found: bool = Field(description="True only when the decoded word checks out and the "
                                    "false-alarm probability is at most 1e-9.")
    payload: PayloadOut | None
    false_alarm_probability: float | None
    sync_score: float | None
    corrected_symbols: int
    erasures: int
    hypotheses: int
    offset: list[int]
    scale: float | None
    rotation: float | None
    blocks_used: int
    bit_reliability: float | None
    key_fingerprint: str
    reason: str


class MetadataOut(BaseModel):
    found: bool
    label: dict[str, str] | None
    label_meaning: str | None
    source: str | None
    raw_json: str | None
    declared_label: str | None
    digital_source_type: str | None
    problems: list[str]


class InspectImages(BaseModel):
    evidence_heatmap: str | None = Field(
        description="PNG data: URI: the evidence heatmap over a greyscale copy (red no "
                    "mark, white undecided, blue mark as expected); null without a mark.")
    tamper_overlay: str | None = Field(
        description="PNG data: URI: missing regions in red, undecidable areas hatched.")


class InspectionOut(BaseModel):
    """`provmark.InspectionReport.to_dict()`, with the verdict's wording and class."""

    input: str
    container: str
    width: int
    height: int
    verdict: str
    verdict_class: Literal["ok", "warn", "bad", "none"] = Field(
        description="How the HTML report colours the verdict.")
    verdict_explanation: str = Field(description="The verdict in a sentence.")
    layers: dict[str, str]
    metadata: MetadataOut | None
    watermark: DetectionOut
    integrity: bool | None
    tamper: dict[str, Any]
    problems: list[str]
    images: InspectImages | None = None


class Health(BaseModel):
    status: str
    version: str


class Readiness(BaseModel):
    status: Literal["ready", "starting", "restarting", "draining", "failed"]
    workers: int
    warm_up_seconds: list[float | None]
    admitted: int
    capacity: int


# --------------------------------------------------------------------------- OpenAPI

_BINARY = {"schema": {"type": "string", "format": "binary"}}
IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image file (PNG, JPEG or WebP): the raw body with its media "
                       "type, or a multipart form whose field `file` holds it.",
        "content": {
            **{t: _BINARY for t in RAW_TYPES},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}}}},
        },
    }
}
_IMAGE_OUT = {200: {"description": "The marked image file (the input's format unless "
                                   "`format` is given).",
                    "content": {t: _BINARY for t in ("image/png", "image/jpeg", "image/webp")}}}

def _provider_q():
    return Query(ge=0, lt=2 ** PROVIDER_BITS, description="Provider code the mark carries; "
                 "the API key must be bound to it.")


def _content_id_q():
    return Query(ge=0, lt=2 ** CONTENT_ID_BITS, description="Content ID (a serial, or a "
                 "hash of the ProduceID).")


def _label_q():
    return Query(1, ge=1, le=3, description="Generation label: 1 AI-generated, 2 possibly, "
                 "3 suspected.")


def _format_q():
    return Query(None, description="Output format; default: the input's.")


def _quality_q():
    return Query(None, ge=1, le=100, description="JPEG/WebP quality; default 95 (a lossless "
                 "WebP stays lossless); 100 writes WebP lossless.")


def _read_provider_q():
    return Query(None, ge=0, lt=2 ** PROVIDER_BITS, description="Read with this provider's "
                 "watermark key (the API key must be bound to it); default: the public key.")


#: The ``search`` values of the reading endpoints, and what each passes to detection.
SEARCH = {"fast": True, "exhaustive": "exhaustive", "aligned": False}
SearchMode = Literal["fast", "exhaustive", "aligned"]


def _search_q(default: SearchMode, description: str):
    return Query(default, description=description)


# --------------------------------------------------------------------------- the app


class _State:
    def __init__(self, config: ServerConfig, pool: WorkerPool, own_pool: bool):
        self.config = config
        self.pool = pool
        self.own_pool = own_pool
        self.metrics = Metrics()
        self.phase = "starting"


def _request_context(app, state: _State):
    """Pure ASGI: request ID, body size limit, per-request log line and metrics."""
    limit = state.config.max_body_bytes

    async def middleware(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        rid = _logging.new_request_id(headers.get(REQUEST_ID_HEADER.lower()))
        token = _logging.request_id.set(rid)
        t0 = time.monotonic()
        path = scope.get("path", "")
        endpoint = path if path in ENDPOINTS else ("/static" if path.startswith("/static/")
                                                   else "other")
        status = {"code": 500, "bytes_out": 0}
        received = {"bytes": 0}
        scope.setdefault("state", {})

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                hdrs = list(message.get("headers", []))
                hdrs.append((REQUEST_ID_HEADER.encode(), rid.encode()))
                hdrs.append((b"x-content-type-options", b"nosniff"))
                message = dict(message, headers=hdrs)
            elif message["type"] == "http.response.body":
                status["bytes_out"] += len(message.get("body", b""))
            await send(message)

        async def receive_wrapper():
            message = await receive()
            if message["type"] == "http.request":
                received["bytes"] += len(message.get("body", b""))
                if received["bytes"] > limit:
                    raise ServiceError(413, "body_too_large", _too_large_text(limit))
            return message

        try:
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                # Refused before reading a byte; the connection is closed after it.
                resp = error_response(413, "body_too_large", _too_large_text(limit),
                                      headers={"Connection": "close"})
                await resp(scope, receive, send_wrapper)
            else:
                await app(scope, receive_wrapper, send_wrapper)
        finally:
            elapsed = time.monotonic() - t0
            state.metrics.observe_request(scope.get("method", "?"), endpoint, status["code"],
                                          elapsed)
            fields = {"method": scope.get("method"), "path": path[:200], "status": status["code"],
                      "ms": round(elapsed * 1e3, 1), "bytes_in": received["bytes"],
                      "bytes_out": status["bytes_out"]}
            st = scope.get("state", {})
            for name in ("api_key", "provider", "worker_ms", "error"):
                if name in st:
                    fields[name] = st[name]
            log.info("request", extra={"fields": fields})
            _logging.request_id.reset(token)

    return middleware


def _too_large_text(limit: int) -> str:
    return (f"the request body is larger than this service accepts ({limit:,} bytes); "
            "send a smaller file (re-encode or downscale the image)")


class _App(FastAPI):
    """FastAPI with :func:`_request_context` outermost, around Starlette's error
    middleware, so that even a 500 answer carries the request's ID."""

    def build_middleware_stack(self):
        return _request_context(super().build_middleware_stack(), self.state.provmark)


def create_app(config: ServerConfig, *, pool: WorkerPool | None = None) -> FastAPI:
    """The service as an ASGI application.

    Parameters
    ----------
    config : ServerConfig
        Limits, providers and API keys (:func:`provmark.server.load_config`).
    pool : WorkerPool, optional
        A pool to use instead of starting one; started here if it is not ready,
        and left running at shutdown (its owner closes it).

    Returns
    -------
    fastapi.FastAPI
        Its lifespan starts warming the worker pool (work requests get 503 until it
        is ready: no request pays the kernels' load time) and, at shutdown, lets
        running jobs finish before stopping it.
    """
    own = pool is None
    if pool is None:
        pool = WorkerPool(config.workers, config.queue, max_pixels=config.max_pixels,
                          threads_per_worker=config.threads_per_worker)
    state = _State(config, pool, own)

    async def warm_up() -> None:
        t0 = time.monotonic()
        try:
            await state.pool.start()
        except Exception as exc:  # the service cannot work: liveness reports it
            state.phase = "failed"
            log.error("the workers did not start", exc_info=exc)
            return
        state.phase = "ready"
        log.info("workers ready", extra={"fields": {
            "workers": state.pool.workers, "pids": state.pool.pids,
            "warm_up_seconds": [round(s or 0.0, 2) for s in state.pool.warm_seconds],
            "start_seconds": round(time.monotonic() - t0, 2)}})

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # The port opens at once (/healthz answers, /readyz says "starting") while the
        # workers warm up; work requests get 503 until they are ready.
        warming = None
        if state.pool.ready:
            state.phase = "ready"
        else:
            warming = asyncio.get_running_loop().create_task(warm_up())
        yield
        state.phase = "draining"
        if warming is not None and not warming.done():
            warming.cancel()
            await asyncio.gather(warming, return_exceptions=True)
        if state.own_pool:
            await state.pool.close()
            log.info("workers stopped")

    app = _App(
        title="provmark",
        version=__version__,
        summary="Robust provenance watermarks (GB 45438 implicit label), metadata labels "
                "and forensic reports for images, over HTTP.",
        description=("Embed and read provmark watermarks. Watermark keys stay on the server, "
                     "one per provider; clients authenticate with an API key (`X-API-Key`) "
                     "bound to the providers it may embed for. Images are sent as the raw "
                     "request body or as the multipart field `file`. See docs/server.md."),
        lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.provmark = state
    _install_handlers(app)
    _install_routes(app, state)
    return app


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError):
        request.scope.setdefault("state", {})["error"] = exc.code
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = f"no such endpoint: {request.url.path}; see /openapi.json or /docs"
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
        return error_response(422, "invalid_parameter", "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):  # a bug: logged with its trace
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "the service failed on this request; "
                              "the operator can find it in the logs by its request ID")


# --------------------------------------------------------------------------- helpers


def _authenticate(state: _State, presented: str | None) -> ApiKey | None:
    """The configured key matching ``presented`` (None when none was presented).

    Every configured digest is compared (hmac.compare_digest, no early exit), so the
    time taken says nothing about which key, or how much of one, matched.
    """
    if presented is None:
        return None
    digest = api_key_digest(presented)
    match = None
    for key in state.config.api_keys:
        if hmac.compare_digest(digest, key.digest):
            match = key
    if match is None:
        raise ServiceError(401, "invalid_api_key",
                           f"the {API_KEY_HEADER} header matches no key of this service; "
                           "check the key, or ask the operator for one")
    return match


def _require(principal: ApiKey | None, what: str) -> ApiKey:
    if principal is None:
        raise ServiceError(401, "missing_api_key",
                           f"{what} needs an API key: send it in the {API_KEY_HEADER} header")
    return principal


def _watermark_key(state: _State, principal: ApiKey | None, provider: int | None) -> bytes:
    """The watermark key to read with: the public key, or a provider's own key when
    ``provider`` is given and the API key is bound to it."""
    from .._keys import PUBLIC_KEY

    if provider is None:
        if state.config.detect == "api-key":
            _require(principal, "detection on this service")
        return PUBLIC_KEY
    p = _require(principal, "reading with a provider's key")
    if not p.may_detect_with(provider) or provider not in state.config.providers:
        raise ServiceError(403, "provider_not_allowed",
                           f"API key {p.name!r} may not read with provider {provider}'s key; "
                           "omit provider to read with the public key")
    return state.config.providers[provider].key


def _embedding_provider(state: _State, principal: ApiKey | None, provider: int):
    p = _require(principal, "embedding")
    if provider not in p.providers or provider not in state.config.providers:
        allowed = ", ".join(str(c) for c in sorted(p.providers)) or "none"
        raise ServiceError(403, "provider_not_allowed",
                           f"API key {p.name!r} may not embed for provider {provider} "
                           f"(it may for: {allowed})")
    return state.config.providers[provider]


def safe_filename(name: str | None, fallback: str = "image") -> str:
    """The stem of a client's file name, reduced to ``[A-Za-z0-9._-]`` (at most 64
    characters; no directories, no leading dots): it only names the download."""
    if not name:
        return fallback
    base = re.split(r"[\\/]", name)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = _FILENAME_UNSAFE.sub("_", stem).strip("._-")[:64]
    return stem or fallback


async def _read_image(request: Request, deadline: float) -> tuple[bytes, str | None]:
    """The uploaded image's bytes and the client's file name (multipart only)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()

    async def read() -> tuple[bytes, str | None]:
        if ctype == "multipart/form-data":
            form = await request.form(max_files=1, max_fields=8)
            try:
                upload = form.get("file")
                if upload is None or isinstance(upload, str):
                    raise ServiceError(400, "no_image", "the multipart form has no file field "
                                       "'file': send the image as -F file=@image.jpg")
                return await upload.read(), upload.filename
            finally:
                await form.close()
        if ctype and ctype not in RAW_TYPES:
            raise ServiceError(415, "unsupported_media_type",
                               f"request body of type {ctype!r}: send the image file as the "
                               f"body ({', '.join(RAW_TYPES)}) or as the multipart field "
                               "'file'")
        return await request.body(), None

    remaining = deadline - time.monotonic()
    try:
        data, filename = await asyncio.wait_for(read(), max(0.001, remaining))
    except asyncio.TimeoutError:
        raise ServiceError(408, "upload_timeout", "the image did not arrive within the "
                           "service's time limit; retry on a faster connection") from None
    if not data:
        raise ServiceError(400, "no_image", "the request body is empty: send the image file "
                           "(PNG, JPEG or WebP) as the body or as the multipart field 'file'")
    return data, filename


async def _run_job(state: _State, request: Request, job, **kwargs) -> _work.Outcome:
    """Admit the request, read its image and run ``job`` in a worker, all within the
    request's deadline."""
    cfg = state.config
    if not state.pool.ready:
        what = {"starting": "the workers are still warming up",
                "failed": "the workers could not be started (see the service's log)",
                "draining": "the service is shutting down"}.get(state.phase,
                                                              "the workers are restarting")
        raise ServiceError(503, "not_ready", f"{what}; retry in a few seconds",
                           {"Retry-After": "2"})
    try:
        slot = state.pool.admit()
    except PoolFull as exc:
        raise ServiceError(503, "busy", f"all {state.pool.capacity} places (workers and queue) "
                           f"are taken; retry after {exc.retry_after} s",
                           {"Retry-After": str(exc.retry_after)}) from None
    try:
        deadline = time.monotonic() + cfg.timeout_seconds
        data, filename = await _read_image(request, deadline)
        request.state.filename = filename
        remaining = max(0.001, deadline - time.monotonic())
        try:
            out = await state.pool.run(slot, job, data, timeout=remaining, **kwargs)
        except asyncio.TimeoutError:
            raise ServiceError(504, "timeout", f"the image took longer than this service's "
                               f"limit of {cfg.timeout_seconds:g} s; send a smaller image or "
                               "use a faster search") from None
        except PoolBroken as exc:
            raise ServiceError(503, "workers_restarting", f"{exc}; retry in a few seconds",
                               {"Retry-After": "5"}) from None
    finally:
        if not slot.submitted:
            slot.release()
    request.scope["state"]["worker_ms"] = out.info.get("worker_ms")
    state.metrics.observe_job(request.url.path, out.info)
    if out.status >= 400:
        raise ServiceError(out.status, out.code, out.message)
    return out


def _warning_header(info: dict) -> dict:
    notes = info.get("warnings")
    if not notes:
        return {}
    text = " | ".join(notes).encode("ascii", "replace").decode("ascii")
    return {"X-Provmark-Warnings": re.sub(r"[\r\n]+", " ", text)[:1000]}


def _file_response(out: _work.Outcome, stem: str, suffix: str, extra: dict) -> Response:
    mtype, ext = _work.media_type(out.data)
    headers = {"Content-Disposition": f'attachment; filename="{stem}.{suffix}{ext}"',
               **extra, **_warning_header(out.info)}
    return Response(out.data, media_type=mtype, headers=headers)


# --------------------------------------------------------------------------- routes


def _install_routes(app: FastAPI, state: _State) -> None:
    api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                           description="Your API key. Required to embed and label; to read "
                                       "with a provider's key; and to detect when the "
                                       "service is configured so.")

    def principal(request: Request, presented: str | None = Depends(api_key)) -> ApiKey | None:
        match = _authenticate(state, presented)
        if match is not None:
            request.scope.setdefault("state", {})["api_key"] = match.name
        return match

    errors_embed = _error_docs(400, 401, 403, 408, 413, 415, 422, 503, 504)
    errors_read = _error_docs(400, 401, 403, 408, 413, 415, 422, 503, 504)

    @app.post("/v1/embed", tags=["marking"], response_class=Response,
              responses={**_IMAGE_OUT, **errors_embed}, openapi_extra=IMAGE_BODY,
              summary="Embed a watermark: image in, marked image out")
    async def embed(request: Request,
                    provider: int = _provider_q(), content_id: int = _content_id_q(),
                    label: int = _label_q(),
                    format: Literal["png", "jpeg", "webp"] | None = _format_q(),
                    quality: int | None = _quality_q(),
                    strength: float = Query(1.0, ge=0.5, le=3.0,
                                            description="Strength multiplier (1.0 default)."),
                    who: ApiKey | None = Depends(principal)):
        """Embed `provider`, `content_id` and `label` with the provider's watermark key
        (kept on the server). The output keeps the input's EXIF, ICC profile and XMP;
        its bytes are those of `provmark.embed_bytes`."""
        prov = _embedding_provider(state, who, provider)
        request.scope["state"]["provider"] = provider
        out = await _run_job(state, request, _work.embed_job, provider=provider,
                             content_id=content_id, label=label, key=prov.key, format=format,
                             quality=quality, strength=strength)
        return _file_response(out, safe_filename(request.state.filename), "marked",
                              {"X-Provmark-Key-Fingerprint": prov.key_fingerprint})

    @app.post("/v1/label", tags=["marking"], response_class=Response,
              responses={**_IMAGE_OUT, **errors_embed}, openapi_extra=IMAGE_BODY,
              summary="All three GB 45438 labels: visible label, watermark, signed metadata")
    async def label_(request: Request,
                     provider: int = _provider_q(), content_id: int = _content_id_q(),
                     produce_id: str = Query(min_length=1, max_length=256,
                                             description="GB 45438 ProduceID of this image."),
                     label: int = _label_q(),
                     content_producer: str | None = Query(
                         None, min_length=1, max_length=256,
                         description="GB 45438 ContentProducer; default (and only value "
                                     "allowed, when configured): the provider's."),
                     explicit: bool = Query(True, description="Draw the visible label."),
                     text: str = Query("AI生成", min_length=1, max_length=64,
                                       description='Visible label text (must contain "AI" '
                                                   'and "生成" or "合成").'),
                     position: Literal["top-left", "top", "top-right", "left", "right",
                                       "bottom-left", "bottom", "bottom-right"] = "bottom-right",
                     format: Literal["png", "jpeg", "webp"] | None = _format_q(),
                     quality: int | None = _quality_q(),
                     who: ApiKey | None = Depends(principal)):
        """Draw the visible label, embed the watermark over it and write the metadata
        label (TC260:AIGC XMP) with its integrity code keyed by the provider's key."""
        prov = _embedding_provider(state, who, provider)
        request.scope["state"]["provider"] = provider
        producer = content_producer or prov.content_producer
        if producer is None:
            raise ServiceError(422, "invalid_parameter", "content_producer is required: the "
                               f"configuration sets none for provider {provider}")
        if prov.content_producer is not None and producer != prov.content_producer:
            raise ServiceError(403, "provider_not_allowed",
                               f"provider {provider}'s ContentProducer is configured as "
                               f"{prov.content_producer!r}; omit content_producer or send "
                               "that value")
        out = await _run_job(state, request, _work.label_job, provider=provider,
                             content_id=content_id, label=label, key=prov.key, format=format,
                             quality=quality, content_producer=producer,
                             produce_id=produce_id, explicit=explicit, text=text,
                             position=position)
        return _file_response(out, safe_filename(request.state.filename), "labelled",
                              {"X-Provmark-Key-Fingerprint": prov.key_fingerprint})

    @app.post("/v1/detect", tags=["reading"], response_model=DetectionOut,
              responses=errors_read, openapi_extra=IMAGE_BODY,
              summary="Detect a watermark: image in, payload and false-alarm probability out")
    async def detect(request: Request, provider: int | None = _read_provider_q(),
                     search: SearchMode = _search_q(
                         "fast", "fast: crops, resizes, rotations through the template; "
                                 "exhaustive: also sweeps scales and rotations (seconds); "
                                 "aligned: the grid only."),
                     who: ApiKey | None = Depends(principal)):
        key = _watermark_key(state, who, provider)
        out = await _run_job(state, request, _work.detect_job, key=key, search=SEARCH[search])
        return JSONResponse(out.body, headers=_warning_header(out.info))

    @app.post("/v1/inspect", tags=["reading"], response_model=InspectionOut,
              responses=errors_read, openapi_extra=IMAGE_BODY,
              summary="Forensic report as JSON: every label layer, verdict, tamper map")
    async def inspect(request: Request, provider: int | None = _read_provider_q(),
                      search: SearchMode = _search_q(
                          "exhaustive", "As for detect; a report tries everything by default."),
                      images: bool = Query(False, description="Include the evidence heatmap "
                                                              "and tamper map as PNG data: "
                                                              "URIs."),
                      who: ApiKey | None = Depends(principal)):
        key = _watermark_key(state, who, provider)
        out = await _run_job(state, request, _work.inspect_job, key=key,
                             search=SEARCH[search], images=images)
        return JSONResponse(out.body, headers=_warning_header(out.info))

    @app.post("/v1/inspect/report", tags=["reading"], response_class=Response,
              responses={200: {"description": "The self-contained HTML report (images "
                                                "inlined, no scripts).",
                               "content": {"text/html": {"schema": {"type": "string"}}}},
                         **errors_read},
              openapi_extra=IMAGE_BODY, summary="Forensic report as one self-contained HTML file")
    async def inspect_report(request: Request, provider: int | None = _read_provider_q(),
                             search: SearchMode = _search_q("exhaustive", "As for detect."),
                             who: ApiKey | None = Depends(principal)):
        key = _watermark_key(state, who, provider)
        out = await _run_job(state, request, _work.inspect_job, key=key,
                             search=SEARCH[search], html=True)
        stem = safe_filename(request.state.filename)
        return Response(out.data, media_type="text/html; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{stem}.report.html"',
            "Content-Security-Policy": REPORT_CSP, **_warning_header(out.info)})

    @app.get("/healthz", tags=["operations"], response_model=Health,
             responses={503: {"model": Health, "description": "The workers could not be "
                                                             "started: restart the service."}},
             summary="Liveness: the process answers")
    async def healthz():
        if state.phase == "failed":
            return JSONResponse({"status": "failed", "version": __version__}, status_code=503)
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["operations"], response_model=Readiness,
             responses={503: {"model": Readiness, "description": "Warming up, restarting its "
                                                                 "workers, draining, or failed."}},
             summary="Readiness: warmed workers take requests")
    async def readyz():
        pool = state.pool
        phase = state.phase
        if phase not in ("draining", "failed"):
            phase = "ready" if pool.ready else ("restarting" if phase == "ready" else "starting")
        body = {"status": phase, "workers": pool.workers,
                "warm_up_seconds": [None if s is None else round(s, 3) for s in pool.warm_seconds],
                "admitted": pool.admitted, "capacity": pool.capacity}
        return JSONResponse(body, status_code=200 if phase == "ready" else 503)

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "Prometheus text format 0.0.4."}},
             summary="Prometheus metrics")
    async def metrics():
        return PlainTextResponse(state.metrics.render(state.pool),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    def page(name: str, media_type: str, csp: str = PAGE_CSP):
        async def serve():
            return FileResponse(STATIC_DIR / name, media_type=media_type,
                                headers={"Content-Security-Policy": csp,
                                         "Cache-Control": "no-cache"})
        return serve

    app.get("/", include_in_schema=False)(page("index.html", "text/html; charset=utf-8"))
    app.get("/docs", include_in_schema=False)(page("docs.html", "text/html; charset=utf-8"))
    for name, mtype in (("app.js", "text/javascript; charset=utf-8"),
                        ("docs.js", "text/javascript; charset=utf-8"),
                        ("app.css", "text/css; charset=utf-8"),
                        ("logo.svg", "image/svg+xml")):
        app.get(f"/static/{name}", include_in_schema=False)(page(name, mtype))
