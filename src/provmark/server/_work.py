"""What the service's worker processes run: one function per endpoint, bytes in, an
:class:`Outcome` out.

This module owns the boundary between HTTP and the library. Each job calls the public
bytes API (:func:`provmark.embed_bytes`, :func:`provmark.label_bytes`,
:func:`provmark.detect_bytes`, :func:`provmark.inspect`) inside the service's pixel
limit, so a file marked by the service is byte for byte the library's. Expected
failures (an image that is not one, too many pixels, an image that cannot carry the
mark, bad field values) come back as an :class:`Outcome` with an HTTP status, a
short code and the library's message (shown to the client; it says what to do);
anything else is a bug and propagates. :func:`init_worker` warms every code path
at process start, so that no request pays the kernels' load or compile time.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field

#: Output formats as the API names them -> the bytes API's ``format``.
FORMAT_NAMES = ("png", "jpeg", "webp")
#: Media types by the first bytes of an encoded image.
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png", ".png"), (b"\xff\xd8\xff", "image/jpeg", ".jpg"))


@dataclass(frozen=True)
class Outcome:
    """A job's result: ``data`` (an image or HTML) or ``body`` (JSON-ready), or an
    error (``status`` >= 400, ``code``, ``message``); ``info`` carries facts for the
    response headers and metrics (format, warnings, found)."""

    status: int = 200
    data: bytes | None = None
    body: dict | None = None
    code: str = ""
    message: str = ""
    info: dict = field(default_factory=dict)


def media_type(data: bytes) -> tuple[str, str]:
    """``(media type, extension)`` of an encoded PNG, JPEG or WebP."""
    for magic, mtype, ext in _MAGIC:
        if data.startswith(magic):
            return mtype, ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", ".webp"
    return "application/octet-stream", ".bin"


# The library's messages end with how to raise the limit on the command line; a
# client of the service cannot, so that hint is replaced by the service's own.
_SERVICE_LIMIT_HINT = "ask the service's operator to raise max_pixels in its configuration"
_TOO_MANY_PIXELS = "above provmark's limit of"
_UNSUPPORTED = ("not a recognised image file", "files are not supported", "animated ",
                "16-bit PNG")


def _image_error(exc: Exception) -> Outcome:
    """The status for an :class:`~provmark.ImageError` from the bytes API: 413 for a
    pixel count above the limit (a decompression bomb is refused from its header),
    415 for a file that is not a supported image, 422 for one that cannot be used."""
    from .._image import RAISE_LIMIT_HINT

    msg = str(exc).replace("<bytes>: ", "uploaded image: ").replace("<bytes>", "uploaded image")
    if _TOO_MANY_PIXELS in msg:
        msg = msg.replace("raise the limit with " + RAISE_LIMIT_HINT, _SERVICE_LIMIT_HINT)
        return Outcome(413, code="too_many_pixels",
                       message=msg.replace(_TOO_MANY_PIXELS, "above this service's limit of"))
    if any(s in msg for s in _UNSUPPORTED):
        return Outcome(415, code="unsupported_image", message=msg)
    return Outcome(422, code="invalid_image", message=msg)


def _run(fn, *args, **kwargs) -> Outcome:
    """``fn`` under the worker's pixel limit, its expected errors as Outcomes and its
    warnings (e.g. an MPO's dropped pictures) in ``info["warnings"]``."""
    from .. import EmbedError, ImageError
    from .._image import pixel_limit

    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught, pixel_limit(_state["max_pixels"]):
            warnings.simplefilter("always", UserWarning)
            out = fn(*args, **kwargs)
    except EmbedError as exc:
        return Outcome(422, code="cannot_embed", message=str(exc))
    except ImageError as exc:
        return _image_error(exc)
    except (ValueError, TypeError) as exc:  # field values the library refuses
        return Outcome(422, code="invalid_parameter", message=str(exc))
    notes = [str(w.message).replace("<bytes>", "uploaded image") for w in caught
             if issubclass(w.category, UserWarning)]
    info = dict(out.info, worker_ms=round((time.perf_counter() - t0) * 1e3, 2),
                pid=os.getpid())
    if notes:
        info["warnings"] = notes
    return Outcome(out.status, out.data, out.body, out.code, out.message, info)


# --------------------------------------------------------------------------- jobs


def _embed(data, provider, content_id, label, key, fmt, quality, strength):
    import provmark

    payload = provmark.Payload(provider=provider, content_id=content_id, label=label)
    out = provmark.embed_bytes(data, payload, key=key, format=fmt, quality=quality,
                               strength=strength)
    return Outcome(data=out, info={"marked": True})


def embed_job(data: bytes, *, provider: int, content_id: int, label: int, key: bytes,
              format: str | None = None, quality: int | None = None,
              strength: float = 1.0) -> Outcome:
    """:func:`provmark.embed_bytes` with ``key`` (the provider's watermark key)."""
    return _run(_embed, data, provider, content_id, label, key, format, quality, strength)


def _label(data, provider, content_id, label, key, fmt, quality, content_producer,
           produce_id, explicit, text, position):
    import provmark

    payload = provmark.Payload(provider=provider, content_id=content_id, label=label)
    out = provmark.label_bytes(data, payload, content_producer=content_producer,
                               produce_id=produce_id, key=key, format=fmt, quality=quality,
                               explicit=explicit, text=text, position=position)
    return Outcome(data=out, info={"marked": True})


def label_job(data: bytes, *, provider: int, content_id: int, label: int, key: bytes,
              content_producer: str, produce_id: str, format: str | None = None,
              quality: int | None = None, explicit: bool = True, text: str = "AI生成",
              position: str = "bottom-right") -> Outcome:
    """:func:`provmark.label_bytes`: visible label, watermark and signed metadata."""
    return _run(_label, data, provider, content_id, label, key, format, quality,
                content_producer, produce_id, explicit, text, position)


def jsonable(value):
    """``value`` with NumPy scalars and arrays as Python values and non-finite floats
    as None (JSON has no NaN or infinity)."""
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _detect(data, key, search):
    import provmark

    det = provmark.detect_bytes(data, key=key, search=search)
    return Outcome(body=jsonable(det.to_dict()), info={"found": det.found})


def detect_job(data: bytes, *, key: bytes, search: bool | str = True) -> Outcome:
    """:func:`provmark.detect_bytes` -> the :class:`~provmark.Detection` as JSON."""
    return _run(_detect, data, key, search)


def _inspect(data, key, search, images, html):
    import provmark

    from .. import _report_html
    from .._io import read_image_bytes

    report = provmark.inspect(data, key=key, search=search)
    info = {"found": report.detection.found}
    if html:
        rgb = read_image_bytes(data, what="uploaded image").rgb
        page = _report_html.render_html(report, rgb, name="uploaded image", data=data)
        return Outcome(data=page.encode("utf-8"), info=info)
    body = jsonable(report.to_dict())
    body["input"] = "uploaded image"
    # The report's own wording and colour class of the verdict (one place for both).
    body["verdict_class"] = _report_html._VERDICT_CLASS.get(report.verdict, "none")
    body["verdict_explanation"] = _report_html._VERDICT_TEXT.get(report.verdict, "")
    if images:
        pics = {"evidence_heatmap": None, "tamper_overlay": None}
        if report.tamper is not None:
            rgb = read_image_bytes(data, what="uploaded image").rgb
            pics = {
                "evidence_heatmap": _report_html._png_data_uri(
                    _report_html.render_evidence_heatmap(rgb, report.tamper)),
                "tamper_overlay": _report_html._png_data_uri(
                    _report_html.render_tamper_overlay(rgb, report.tamper)),
            }
        body["images"] = pics
    return Outcome(body=body, info=info)


def inspect_job(data: bytes, *, key: bytes, search: bool | str = "exhaustive",
                images: bool = False, html: bool = False) -> Outcome:
    """:func:`provmark.inspect` -> its JSON (with the heatmap and tamper map as PNG
    ``data:`` URIs when ``images``), or the self-contained HTML report when ``html``."""
    return _run(_inspect, data, key, search, images, html)


# --------------------------------------------------------------------------- start-up

_state: dict = {"max_pixels": None, "warm_seconds": None}


def _warm_images() -> tuple[bytes, bytes]:
    """A textured 384x320 JPEG and a PNG (seeded noise, blurred): enough texture to
    carry the mark and not a reserved or bundled picture."""
    import io

    import cv2
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(20240516)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (320, 384, 3), dtype=np.uint8), (0, 0), 1.5)
    rgb = cv2.normalize(rgb, None, 20, 235, cv2.NORM_MINMAX)
    files = []
    for fmt in ("JPEG", "PNG"):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format=fmt, quality=95)
        files.append(buf.getvalue())
    return files[0], files[1]


def warm_up() -> float:
    """Run every job once on small images so that the Numba kernels are loaded (or
    compiled) and the code paths imported before the first request; returns seconds."""
    import io

    from PIL import Image

    from .._keys import PUBLIC_KEY

    t0 = time.perf_counter()
    jpeg, png = _warm_images()
    marked = embed_job(jpeg, provider=1, content_id=1, label=1, key=PUBLIC_KEY)
    labelled = label_job(png, provider=1, content_id=2, label=1, key=PUBLIC_KEY,
                         content_producer="warm-up", produce_id="warm-up", format="jpeg")
    if marked.status != 200 or labelled.status != 200:  # pragma: no cover - a broken install
        raise RuntimeError(f"warm-up embedding failed: {marked.message or labelled.message}")
    im = Image.open(io.BytesIO(marked.data))
    small = io.BytesIO()  # a resized copy takes the template search path
    im.convert("RGB").resize((300, 250)).save(small, format="JPEG", quality=80)
    detect_job(marked.data, key=PUBLIC_KEY)
    detect_job(small.getvalue(), key=PUBLIC_KEY)
    detect_job(png, key=PUBLIC_KEY, search=True)
    inspect_job(labelled.data, key=PUBLIC_KEY, search=True, images=True)
    inspect_job(labelled.data, key=PUBLIC_KEY, search=True, html=True)
    return time.perf_counter() - t0


def init_worker(max_pixels: int, threads: int) -> None:
    """Process-pool initializer: the pixel limit, the number of Numba threads of this
    worker (one by default: the pool's processes are the parallelism), then
    :func:`warm_up`."""
    _state["max_pixels"] = int(max_pixels)
    try:
        import numba

        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    except ImportError:  # pragma: no cover - numba is a dependency
        pass
    _state["warm_seconds"] = warm_up()


def ping() -> tuple[int, float | None]:
    """``(pid, warm-up seconds)`` of the worker that runs it."""
    time.sleep(0.02)  # long enough for the pool to hand the next ping to another worker
    return os.getpid(), _state["warm_seconds"]

