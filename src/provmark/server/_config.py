"""The service's configuration file: limits, providers with their watermark keys, API keys.

This module owns reading and checking ``provmark.toml`` (``docs/server.md`` documents
every field). Two kinds of key are kept apart here. *API keys* authenticate clients:
the file holds only their SHA-256 (:func:`hash_api_key`; ``provmark serve --hash-key``
prints it), each bound to the provider codes it may embed for. *Watermark keys* stay
on the server: each provider's key is read from a file or an environment variable
that the configuration names (never from the command line, where other users of the
machine could read it), or is the documented public key when neither is given.
Every problem is reported with the file, the field and what to write instead.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

try:  # Python 3.11+
    import tomllib as _toml
except ImportError:  # pragma: no cover - Python 3.10
    try:
        import tomli as _toml
    except ImportError:
        _toml = None

from .._keyfile import KeyFileError
from .._keyfile import read_key_file as _read_key_file
from .._keys import PUBLIC_KEY, key_fingerprint
from .._payload import PROVIDER_BITS

#: Shortest API key :func:`hash_api_key` accepts: API keys are stored as a plain
#: SHA-256, which is safe only for keys with enough entropy to make guessing hopeless.
MIN_API_KEY_LENGTH = 20
#: How a stored API key hash is written in the configuration file.
HASH_PREFIX = "sha256:"
_HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Values of ``[server] detect``: who may call /v1/detect and /v1/inspect with the
#: public key ("open": anyone; "api-key": any valid API key).
DETECT_MODES = ("open", "api-key")


class ConfigError(ValueError):
    """The configuration file is missing, malformed or inconsistent; the message says
    which file and field, and what to write."""


def hash_api_key(api_key: str) -> str:
    """The value to store in the configuration for ``api_key``: ``"sha256:<hex>"``.

    Raises
    ------
    ConfigError
        The key is shorter than :data:`MIN_API_KEY_LENGTH` characters or contains
        whitespace or control characters (an HTTP header could not carry it intact).
    """
    key = api_key.strip("\r\n")
    if len(key) < MIN_API_KEY_LENGTH:
        raise ConfigError(
            f"API key is {len(key)} characters; use at least {MIN_API_KEY_LENGTH} random "
            "characters, e.g. python3 -c \"import secrets; print(secrets.token_urlsafe(32))\"")
    if any(ch.isspace() or ord(ch) < 0x21 or ord(ch) > 0x7E for ch in key):
        raise ConfigError("API key contains spaces, control or non-ASCII characters: "
                          "an HTTP header cannot carry it intact; use printable ASCII only")
    return HASH_PREFIX + hashlib.sha256(key.encode("ascii")).hexdigest()


def api_key_digest(api_key: str) -> bytes:
    """The SHA-256 of a presented API key (what :func:`hash_api_key` stores, as bytes)."""
    return hashlib.sha256(api_key.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True)
class Provider:
    """A provider the service embeds for: its code, the watermark key (kept here, never
    sent to clients) and an optional registered GB 45438 ``ContentProducer``."""

    code: int
    name: str
    key: bytes = field(repr=False)
    key_source: str = "public key"
    content_producer: str | None = None

    @property
    def key_fingerprint(self) -> str:
        """The key's public fingerprint (as in detection results)."""
        return key_fingerprint(self.key)


@dataclass(frozen=True)
class ApiKey:
    """A client's credential: a name (for logs; never the key), the SHA-256 of the key,
    the providers it may embed and label for (and detect with their keys), and further
    providers whose keys it may only detect with."""

    name: str
    digest: bytes = field(repr=False)
    providers: frozenset[int] = frozenset()
    detect_providers: frozenset[int] = frozenset()

    def may_detect_with(self, provider: int) -> bool:
        return provider in self.providers or provider in self.detect_providers


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``provmark serve`` needs; see ``docs/server.md`` for each field."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    threads_per_worker: int = 1
    queue: int = 16
    max_body_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 50_000_000
    timeout_seconds: float = 60.0
    graceful_shutdown_seconds: float = 30.0
    detect: str = "open"
    log_level: str = "info"
    providers: dict[int, Provider] = field(default_factory=dict)
    api_keys: tuple[ApiKey, ...] = ()
    source: str = "<defaults>"

    @property
    def capacity(self) -> int:
        """Requests admitted at once: one per worker plus the waiting queue."""
        return self.workers + self.queue


_SERVER_FIELDS = {
    "host": str, "port": int, "workers": int, "threads_per_worker": int, "queue": int,
    "max_body_bytes": int, "max_pixels": int, "timeout_seconds": (int, float),
    "graceful_shutdown_seconds": (int, float), "detect": str, "log_level": str,
}
_BOUNDS = {
    "port": (1, 65535), "workers": (1, 256), "threads_per_worker": (1, 256), "queue": (0, 100_000),
    "max_body_bytes": (1024, 1 << 34), "max_pixels": (65_536, 1 << 40),
    "timeout_seconds": (0.001, 86_400), "graceful_shutdown_seconds": (0, 86_400),
}
_LOG_LEVELS = ("debug", "info", "warning", "error")


def _type_name(t) -> str:
    if isinstance(t, tuple):
        return "a number"
    return {int: "an integer", str: "a string"}.get(t, t.__name__)


def _check_type(where: str, name: str, value, expected):
    if isinstance(value, bool) or not isinstance(value, expected):
        raise ConfigError(f"{where}: {name} must be {_type_name(expected)}, "
                          f"not {type(value).__name__} {value!r}")
    return value


def _unknown(where: str, table: dict, known) -> None:
    extra = sorted(set(table) - set(known))
    if extra:
        raise ConfigError(f"{where}: unknown field{'s' if len(extra) > 1 else ''} "
                          f"{', '.join(extra)}; known: {', '.join(sorted(known))}")


def read_key_file(path: Path, *, what: str) -> bytes:
    """A watermark key from ``path`` by the rules of the command line's ``--key-file``
    (:func:`provmark._keyfile.read_key_file`); ``what`` (the configuration entry)
    opens any error message."""
    try:
        return _read_key_file(path)
    except KeyFileError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def _provider(where: str, table: dict, base: Path, environ) -> Provider:
    _unknown(where, table, ("code", "name", "key_file", "key_env", "content_producer"))
    if "code" not in table:
        raise ConfigError(f"{where}: code is required (the provider code the mark carries, "
                          f"0 .. {2 ** PROVIDER_BITS - 1})")
    code = _check_type(where, "code", table["code"], int)
    if not 0 <= code < 2 ** PROVIDER_BITS:
        raise ConfigError(f"{where}: code {code} is out of range 0 .. {2 ** PROVIDER_BITS - 1}")
    name = _check_type(where, "name", table.get("name", str(code)), str)
    if "key_file" in table and "key_env" in table:
        raise ConfigError(f"{where}: give key_file or key_env, not both")
    if "key_file" in table:
        path = Path(_check_type(where, "key_file", table["key_file"], str)).expanduser()
        path = path if path.is_absolute() else base / path
        key, source = read_key_file(path, what=where), f"file {path}"
    elif "key_env" in table:
        var = _check_type(where, "key_env", table["key_env"], str)
        value = environ.get(var)
        if not value:
            raise ConfigError(f"{where}: the environment variable {var} named by key_env is "
                              "not set or empty; export the provider's watermark key in it")
        key, source = value.encode("utf-8"), f"environment variable {var}"
    else:
        key, source = PUBLIC_KEY, "public key"
    producer = table.get("content_producer")
    if producer is not None:
        from ..metadata import AIGCLabel

        _check_type(where, "content_producer", producer, str)
        try:
            AIGCLabel("1", producer, "x")
        except ValueError as exc:
            raise ConfigError(f"{where}: content_producer: {exc}") from None
    return Provider(code=code, name=name, key=key, key_source=source, content_producer=producer)


def _codes(where: str, name: str, value, providers: dict[int, Provider]) -> frozenset[int]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: {name} must be a list of provider codes, e.g. [4242]")
    for code in value:
        _check_type(where, f"{name} entry", code, int)
        if code not in providers:
            raise ConfigError(f"{where}: {name} names provider {code}, which no [[provider]] "
                              "table defines")
    return frozenset(value)


def _api_key(where: str, table: dict, providers: dict[int, Provider]) -> ApiKey:
    _unknown(where, table, ("name", "hash", "providers", "detect_providers"))
    name = _check_type(where, "name", table.get("name", ""), str)
    if not _NAME_RE.match(name):
        raise ConfigError(f"{where}: name {name!r}: give a name for the logs, 1-64 letters, "
                          "digits, '.', '_' or '-'")
    digest = _check_type(where, "hash", table.get("hash", ""), str)
    if not _HASH_RE.match(digest):
        raise ConfigError(f"{where}: hash must be 'sha256:' and 64 lower-case hex digits, as "
                          "printed by `provmark serve --hash-key` (the key itself never goes "
                          "into the file)")
    return ApiKey(name=name, digest=bytes.fromhex(digest[len(HASH_PREFIX):]),
                  providers=_codes(where, "providers", table.get("providers", []), providers),
                  detect_providers=_codes(where, "detect_providers",
                                          table.get("detect_providers", []), providers))


def parse_config(data: dict, *, source: str = "<dict>", base: Path | None = None,
                 environ=None) -> ServerConfig:
    """A :class:`ServerConfig` from the parsed TOML document ``data``.

    ``base`` is the directory relative key file paths are read from (the
    configuration file's); ``environ`` the environment ``key_env`` is looked up in
    (default :data:`os.environ`).
    """
    environ = os.environ if environ is None else environ
    base = Path(".") if base is None else base
    _unknown(source, data, ("server", "provider", "api_key"))
    server = data.get("server", {})
    if not isinstance(server, dict):
        raise ConfigError(f"{source}: [server] must be a table")
    where = f"{source} [server]"
    _unknown(where, server, _SERVER_FIELDS)
    values = {}
    for name, expected in _SERVER_FIELDS.items():
        if name not in server:
            continue
        value = _check_type(where, name, server[name], expected)
        if name in _BOUNDS:
            lo, hi = _BOUNDS[name]
            if not lo <= value <= hi:
                raise ConfigError(f"{where}: {name} = {value} is out of range {lo} .. {hi}")
        values[name] = value
    if values.get("detect", "open") not in DETECT_MODES:
        raise ConfigError(f"{where}: detect = {values['detect']!r}; use \"open\" (anyone may "
                          "detect with the public key) or \"api-key\"")
    if values.get("log_level", "info") not in _LOG_LEVELS:
        raise ConfigError(f"{where}: log_level must be one of {', '.join(_LOG_LEVELS)}")

    providers: dict[int, Provider] = {}
    tables = data.get("provider", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{source}: providers are written as [[provider]] tables")
    for i, table in enumerate(tables):
        p = _provider(f"{source} [[provider]] #{i + 1}", table, base, environ)
        if p.code in providers:
            raise ConfigError(f"{source} [[provider]] #{i + 1}: code {p.code} is defined twice")
        providers[p.code] = p
    keys: list[ApiKey] = []
    tables = data.get("api_key", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{source}: API keys are written as [[api_key]] tables")
    for i, table in enumerate(tables):
        k = _api_key(f"{source} [[api_key]] #{i + 1}", table, providers)
        if any(k.name == other.name for other in keys):
            raise ConfigError(f"{source} [[api_key]] #{i + 1}: name {k.name!r} is used twice; "
                              "names tell keys apart in the logs")
        if any(k.digest == other.digest for other in keys):
            raise ConfigError(f"{source} [[api_key]] #{i + 1}: the same key hash appears twice")
        keys.append(k)
    return ServerConfig(**values, providers=providers, api_keys=tuple(keys), source=source)


def load_config(path: str | os.PathLike, *, environ=None) -> ServerConfig:
    """Read and check a ``provmark.toml`` configuration file.

    Raises
    ------
    ConfigError
        The file cannot be read, is not TOML, or a field is wrong; the message names
        the file, the table and the field.
    """
    p = Path(path)
    if _toml is None:  # pragma: no cover - Python 3.10 without tomli
        raise ConfigError("reading the configuration needs tomli on Python 3.10: "
                          "pip install tomli (or provmark[server])")
    try:
        with open(p, "rb") as fh:
            data = _toml.load(fh)
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the configuration: {exc.strerror or exc}") from None
    except _toml.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_config(data, source=str(p), base=p.resolve().parent, environ=environ)
