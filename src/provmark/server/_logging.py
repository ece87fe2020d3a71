"""Structured logs: one JSON object per line, each request's lines tied by its ID.

This module owns the log format. Every record is a JSON object with ``ts`` (UTC,
ISO 8601), ``level``, ``logger``, ``event`` (the message) and, inside a request,
``request_id``; fields passed as ``extra={"fields": {...}}`` are merged in. The
request ID is the client's ``X-Request-ID`` when it is a short token of safe
characters, else a new random one; it is echoed in the response. API keys are never
logged (only the configured key's name), nor are query strings or uploaded bytes.
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import json
import logging
import re
import secrets
import sys

#: The current request's ID (empty outside a request).
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
LOGGER_NAME = "provmark.server"


def new_request_id(client_value: str | None) -> str:
    """The client's ``X-Request-ID`` if it is 1-64 safe characters, else a new ID."""
    if client_value and _SAFE_ID.match(client_value):
        return client_value
    return secrets.token_hex(8)


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": _dt.datetime.fromtimestamp(record.created, _dt.timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str = "info", stream=None) -> logging.Logger:
    """Send the service's and uvicorn's logs to ``stream`` (default stderr) as JSON
    lines at ``level``; uvicorn's access log is off (the service logs each request
    itself, with its ID, endpoint, status and time)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    lvl = getattr(logging, level.upper())
    for name in (LOGGER_NAME, "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(lvl)
        logger.propagate = False
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    access.disabled = True
    return logging.getLogger(LOGGER_NAME)


def log_config(level: str = "info") -> dict:
    """A :func:`logging.config.dictConfig` for uvicorn's ``log_config``: the JSON
    format above for its own loggers, the access log off."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            LOGGER_NAME: {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
        },
    }
