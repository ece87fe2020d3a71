"""provmark as a service: an HTTP API and the analyst's page (``provmark serve``).

:func:`create_app` builds the ASGI application (FastAPI) from a
:class:`ServerConfig` (:func:`load_config` reads ``provmark.toml``; ``docs/server.md``
documents it); :func:`serve` runs it on uvicorn. Needs the ``server`` extra
(``pip install provmark[server]``): fastapi, uvicorn and python-multipart. The pixel
work runs in a warmed process pool through the library's bytes API, so a file
marked by the service is byte for byte the one :func:`provmark.embed_bytes` makes.
"""

from __future__ import annotations

from ._config import ConfigError, ServerConfig, hash_api_key, load_config, parse_config

__all__ = ["create_app", "serve", "load_config", "parse_config", "ServerConfig",
           "ConfigError", "hash_api_key"]


def create_app(config, *, pool=None):
    """The service as an ASGI application; see :func:`provmark.server.app.create_app`."""
    from .app import create_app as _create

    return _create(config, pool=pool)


def serve(config: ServerConfig) -> None:
    """Run the service on uvicorn until SIGINT or SIGTERM; requests in flight are
    finished (up to ``graceful_shutdown_seconds``) before the workers stop."""
    import uvicorn

    from ._logging import configure, log_config

    configure(config.log_level)
    uvicorn.run(create_app(config), host=config.host, port=config.port,
                log_config=log_config(config.log_level), access_log=False,
                timeout_graceful_shutdown=config.graceful_shutdown_seconds,
                server_header=False)
