"""Parallel, resumable batch marking and scanning over local paths and fsspec URLs.

This module owns the batch engine that ``provmark embed``, ``provmark label``,
``provmark detect`` and ``provmark inspect`` run over many images, and the pieces
another engine (:mod:`provmark.integrations.ray`) reuses so that both write the
same bytes and the same manifest rows:

- **locations** (:func:`list_sources`, :func:`read_input`, :func:`write_output`):
  local paths and ``file://`` URLs need nothing extra; any other URL (``s3://``,
  ``gs://``, ``memory://`` ...) goes through fsspec (the optional extra
  ``provmark[scale]``). A local output is written to a temporary file beside it and
  moved into place (:func:`provmark._io.atomic_output`); an object-store output is
  one ``pipe`` call, which stores make visible whole or not at all.
- **planning** (:func:`plan`): inputs -> :class:`Task` records with their output
  location and :class:`~provmark.Payload` (content IDs consecutive, from a CSV
  mapping or from a hash of the name), minus what the manifest records as done.
- **the per-item work** (:func:`mark_item`, :func:`process`): bytes in, one
  :class:`Row` out, through :func:`provmark._bytes.encode_embedded` /
  :func:`~provmark._bytes.encode_labelled_bytes`. It never raises for an item's
  problem: a corrupt file, a 16-bit PNG or an existing output is a row with
  ``status="failed"`` and the error.
- **the manifest** (:class:`Manifest`): one JSON line per finished item, appended
  by the driver (flushed and fsynced) only after the item's output exists. A re-run
  with the same manifest skips what is done. An output that exists but is not in
  the manifest (the run was killed between the two steps) is compared with what
  the item would write: equal bytes are adopted (marking is deterministic), so no
  input is ever marked twice and nothing is lost.
- **the local engine** (:func:`run_batch`): a pool of worker processes
  (``spawn``), each with ``cores // workers`` Numba threads, ignoring Ctrl-C (the
  driver finishes the items in flight and stops) and dying with the driver.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ._image import ImageError
from ._payload import CONTENT_ID_BITS, Payload

#: File name extensions listed from a directory or URL prefix (any case).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
#: Output extension for each ``--format`` / ``Options.format`` value.
FORMAT_EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg", "webp": ".webp"}
#: Fields a ``--produce-id`` template may use.
PRODUCE_ID_FIELDS = ("{stem}", "{name}", "{content_id}", "{index}")
#: Items handed to the pool ahead of the results, per worker (bounds memory).
_IN_FLIGHT_PER_WORKER = 4
#: Default of ``workers=None`` for small batches: at least this many items per
#: worker process, since starting one (imports, kernel cache) costs 1-2 s.
MIN_ITEMS_PER_WORKER = 8
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GLOB = re.compile(r"[*?\[]")


class BatchError(ValueError):
    """The batch cannot start as asked (inputs, outputs, content IDs, manifest); the
    message says what to change. Per-image problems are rows, never this."""


# --------------------------------------------------------------------------- #
# Locations: local paths, file:// URLs and fsspec URLs


def is_url(location: str) -> bool:
    """True for ``scheme://...`` (``file://`` included)."""
    return bool(_URL.match(str(location)))


def local_path(location: str | os.PathLike) -> Path | None:
    """The local path of a plain path or a ``file://`` URL; None for other URLs."""
    text = os.fspath(location)
    if not is_url(text):
        return Path(text)
    parts = urlsplit(text)
    if parts.scheme.lower() == "file" and parts.netloc in ("", "localhost"):
        return Path(unquote(parts.path))
    return None


def _fsspec(location: str):
    """``(filesystem, path)`` for a non-local URL, or a :class:`BatchError` saying
    how to install fsspec."""
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise BatchError(f"{location}: URLs other than file:// need fsspec: pip install "
                         "'provmark[scale]' (plus the file system's package, e.g. s3fs "
                         "for s3://, gcsfs for gs://)") from None
    try:
        return url_to_fs(location)
    except (ImportError, ValueError) as exc:
        raise BatchError(f"{location}: cannot open this URL ({exc})") from None


def join(base: str, name: str) -> str:
    """``name`` (a relative name with ``/``) inside the directory or prefix ``base``."""
    path = local_path(base)
    if path is not None and not is_url(base):
        return str(path.joinpath(*name.split("/")))
    return base.rstrip("/") + "/" + name


@dataclass(frozen=True)
class Source:
    """One input image: its ``location`` (path or URL) and ``name``, the relative
    name (``/``-separated) that its output takes inside the output directory."""

    location: str
    name: str


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _hidden(parts: Iterable[str]) -> bool:
    return any(p.startswith(".") for p in parts)


def list_sources(inputs: Iterable[str | os.PathLike]) -> tuple[list[Source], bool]:
    """The images named by ``inputs`` and whether any input was a directory, a URL
    prefix or a pattern (a "corpus").

    A file (local or URL) is itself, named by its file name. A directory or URL
    prefix gives every PNG, JPEG and WebP file under it (recursively, sorted, hidden
    files and directories skipped), named by their path relative to it. A URL with
    ``*``, ``?`` or ``[`` is a glob pattern. A local path that does not exist is
    kept (its row will say "no such file").

    Raises
    ------
    BatchError
        A directory or prefix without images, a pattern that matches none, a URL
        fsspec cannot open.
    """
    out: list[Source] = []
    corpus = False
    for raw in inputs:
        text = os.fspath(raw)
        path = local_path(text)
        if path is not None:
            if path.is_dir():
                corpus = True
                found = sorted(
                    (p.relative_to(path).as_posix(), p) for p in path.rglob("*")
                    if p.is_file() and _is_image_name(p.name)
                    and not _hidden(p.relative_to(path).parts))
                if not found:
                    raise BatchError(f"{text}: no PNG, JPEG or WebP files in this directory")
                out += [Source(str(p), rel) for rel, p in found]
            else:
                out.append(Source(text, path.name))
            continue
        try:
            found_here, listed = _list_url(text)
        except BatchError:
            raise
        except Exception as exc:  # noqa: BLE001 - credentials, network: say which input
            raise BatchError(f"{text}: cannot list ({type(exc).__name__}: {exc})") from None
        corpus = corpus or listed
        out += found_here
    return out, corpus


def _list_url(text: str) -> tuple[list[Source], bool]:
    """:func:`list_sources` for one fsspec URL: ``(sources, is a prefix or pattern)``."""
    fs, root = _fsspec(text)
    protocol = text.split("://", 1)[0]

    def url(p: str) -> str:
        return fs.unstrip_protocol(p) if hasattr(fs, "unstrip_protocol") else f"{protocol}://{p}"

    if _GLOB.search(root):
        matches = sorted(p for p in fs.glob(root) if _is_image_name(p))
        if not matches:
            raise BatchError(f"{text}: no PNG, JPEG or WebP files match this pattern")
        return [Source(url(p), p.rsplit("/", 1)[-1]) for p in matches], True
    if fs.isdir(root):
        prefix = root.rstrip("/") + "/"
        found = sorted(p[len(prefix):] for p in fs.find(root)
                       if p.startswith(prefix) and _is_image_name(p))
        found = [rel for rel in found if not _hidden(rel.split("/"))]
        if not found:
            raise BatchError(f"{text}: no PNG, JPEG or WebP files under this prefix")
        return [Source(url(prefix + rel), rel) for rel in found], True
    return [Source(text, root.rstrip("/").rsplit("/", 1)[-1])], False


def check_output_outside_inputs(inputs: Iterable[str | os.PathLike], output: str) -> None:
    """Refuse an output directory or prefix that is an input directory or prefix, or
    inside one: a later run over that input would read the marked images as inputs
    and mark them again.

    Raises
    ------
    BatchError
    """
    out_path = local_path(output)
    for raw in inputs:
        text = os.fspath(raw)
        path = local_path(text)
        if path is not None and out_path is not None:
            if not path.is_dir():
                continue
            inside = out_path.resolve() == path.resolve() or path.resolve() in out_path.resolve().parents
        elif path is None and out_path is None:
            inside = output.rstrip("/").startswith(text.rstrip("/") + "/") or \
                output.rstrip("/") == text.rstrip("/")
        else:
            continue
        if inside:
            raise BatchError(f"the output {output} is inside the input {text}: a later run over "
                             "that input would read the marked images as inputs and mark them "
                             "again; write to a directory outside it")


def max_file_bytes(pixels: int) -> int:
    """The largest file read for an image of at most ``pixels`` pixels: an
    uncompressed 8-bit RGB PNG is 3 bytes a pixel; 4 plus 16 MB of metadata is
    beyond any real file, and stops a huge non-image from filling the memory."""
    return 4 * int(pixels) + (16 << 20)


def read_input(location: str) -> bytes:
    """The bytes of an input file (path or URL).

    Raises
    ------
    ImageError
        Missing, a directory, unreadable, or larger than an image within the pixel
        limit can be (:func:`max_file_bytes`).
    """
    from ._image import max_pixels

    limit = max_file_bytes(max_pixels())
    path = local_path(location)

    def too_big(size: int) -> ImageError:
        return ImageError(f"{location}: {size / 1e6:,.0f} MB, larger than an image of at most "
                          f"{max_pixels():,} pixels can be; raise --max-pixels if it is one")

    if path is not None:
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size > limit:
                    raise too_big(size)
                return fh.read(limit + 1)
        except FileNotFoundError:
            raise ImageError(f"{location}: no such file") from None
        except IsADirectoryError:
            raise ImageError(f"{location}: is a directory, not an image file") from None
        except OSError as exc:
            raise ImageError(f"{location}: cannot read ({exc.strerror or exc})") from None
    fs, p = _fsspec(location)
    try:
        size = fs.size(p)
        if size is not None and size > limit:
            raise too_big(size)
        return fs.cat_file(p)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{location}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - any store error (network, credentials)
        raise ImageError(f"{location}: cannot read ({type(exc).__name__}: {exc})") from None


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def write_output(location: str, data: bytes, *, overwrite: bool = False,
                 source: str | None = None) -> bool:
    """Write an output file atomically; True when it already held exactly ``data``
    (left as it is: adopted).

    Local: a temporary file beside it, synced, then linked into place (without
    ``overwrite``: fails if the file exists, even if another process just made it)
    or renamed over it (with ``overwrite``). Other URLs: one fsspec ``pipe`` call
    (an object store shows the object whole or not at all); without ``overwrite``
    an existing object is checked first (not atomic on stores without conditional
    writes: of two concurrent writers the last wins, and both wrote the same bytes
    when they marked the same input with the same settings).

    Raises
    ------
    ImageError
        The output exists with other bytes and not ``overwrite``; it is the input,
        a directory, or has an unknown extension.
    OSError
        The file system refused (read-only, full, permissions).
    """
    from ._io import _already_exists, atomic_output, check_output

    path = local_path(location)
    if path is not None:
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
        src = local_path(source) if source is not None else None
        check_output(path, source=src, overwrite=True)  # extension, input, directory
        if not overwrite and path.exists():
            if _same_bytes(path, data):
                return True
            raise _already_exists(path)
        try:
            with atomic_output(path, overwrite=overwrite) as fh:
                fh.write(data)
        except ImageError:
            if _same_bytes(path, data):  # another writer made the same file meanwhile
                return True
            raise
        return False
    if source is not None and source == location:
        raise ImageError(f"{location}: refusing to overwrite the input image; choose another "
                         "output location")
    fs, p = _fsspec(location)
    try:
        if not overwrite and fs.exists(p):
            if fs.cat_file(p) == data:
                return True
            raise ImageError(f"{location}: already exists; pass --force (overwrite=True) to "
                             "replace it")
        parent = p.rsplit("/", 1)[0] if "/" in p else ""
        if parent:
            with contextlib.suppress(OSError, NotImplementedError):
                fs.makedirs(parent, exist_ok=True)
        fs.pipe_file(p, data)
    except (ImageError, OSError):
        raise
    except Exception as exc:  # noqa: BLE001 - any store error (network, credentials)
        raise OSError(f"{location}: cannot write ({type(exc).__name__}: {exc})") from None
    return False


def remove_stale_temporaries(locations: Iterable[str]) -> int:
    """Remove the temporary files a killed run left beside the local outputs
    ``locations`` (``.<name>.<random>.tmp``, as :func:`provmark._io.atomic_output`
    names them); returns how many. Each output directory is listed once, so this
    stays linear in the number of outputs. Object-store outputs have none.
    """
    by_dir: dict[Path, set[str]] = {}
    for loc in locations:
        path = local_path(loc)
        if path is not None:
            by_dir.setdefault(path.parent, set()).add(path.name)
    removed = 0
    for directory, names in by_dir.items():
        try:
            entries = list(os.scandir(directory))
        except OSError:  # not created yet, or unreadable: nothing of ours there
            continue
        for entry in entries:
            n = entry.name
            if (n.startswith(".") and n.endswith(".tmp")
                    and n[1:-4].rsplit(".", 1)[0] in names and entry.is_file()):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
    return removed


# --------------------------------------------------------------------------- #
# Options, tasks and rows


@dataclass(frozen=True)
class Options:
    """Settings shared by every item of a run (picklable; shipped to workers once).

    ``mode`` is ``"embed"`` or ``"label"``; ``key`` the watermark key (None: the
    public key); ``format``/``quality`` as in :func:`provmark.embed_bytes`;
    ``strength``/``min_psnr``/``adapt`` as in :func:`provmark.embed`; ``overwrite``
    replaces existing outputs; ``content_producer``, ``explicit``, ``text``,
    ``position`` are the label mode's (see :func:`provmark.label`); ``max_pixels``
    the pixel limit in the workers (None: the default or the environment's);
    ``measure`` adds the PSNR to each row (costs ~10 ms at 1080p).
    """

    mode: str = "embed"
    key: bytes | None = field(default=None, repr=False)
    format: str | None = None
    quality: int | None = None
    strength: float = 1.0
    min_psnr: float = 40.0
    adapt: bool = True
    overwrite: bool = False
    content_producer: str | None = None
    explicit: bool = True
    text: str = "AI生成"
    position: str = "bottom-right"
    max_pixels: int | None = None
    measure: bool = False
    #: C2PA signing credentials (label mode): a provmark.c2pa.C2paSigner, or None.
    c2pa: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in ("embed", "label"):
            raise ValueError(f"mode={self.mode!r}: use 'embed' or 'label'")
        if self.mode == "label" and not self.content_producer:
            raise ValueError("the label mode needs content_producer")

    def settings_id(self) -> str:
        """A short hash of everything that decides an output's bytes (the key by
        its public fingerprint). Rows carry it; a resumed run with other settings
        is refused instead of mixing outputs."""
        from ._keys import key_fingerprint

        fields = {k: v for k, v in asdict(self).items()
                  if k not in ("key", "overwrite", "max_pixels", "measure", "c2pa")}
        # The C2PA signer by its certificate chain and algorithm, never its key. (A C2PA
        # signature is not deterministic: manifest UUID, ECDSA nonce; outputs signed
        # twice differ in their bytes.)
        fields["c2pa"] = None if self.c2pa is None else [
            hashlib.sha256(self.c2pa.certificate_chain).hexdigest()[:16], self.c2pa.algorithm]
        if self.mode == "embed":
            for k in ("content_producer", "explicit", "text", "position"):
                fields.pop(k)
        fields["key"] = key_fingerprint(self.key)
        blob = json.dumps(fields, sort_keys=True, ensure_ascii=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


@dataclass(frozen=True)
class Task:
    """One image to mark: where it is, where its output goes, what it carries.

    ``index`` is its position in the run's input order (results are reported in
    that order); ``name`` its relative name; ``produce_id`` the GB 45438 ProduceID
    in the label mode.
    """

    index: int
    input: str
    output: str
    name: str
    payload: Payload
    produce_id: str | None = None


#: Row statuses.
DONE, FAILED = "done", "failed"


@dataclass(frozen=True)
class Row:
    """The manifest line of one finished item (:meth:`to_dict`).

    ``status`` is ``"done"`` or ``"failed"`` (then ``error`` says why). Sizes are
    in bytes, hashes SHA-256 hex of the input and output files; ``reused`` is True
    when the output already held exactly these bytes (an interrupted earlier run
    wrote it) and was kept; ``seconds`` is the item's whole time, ``mark_ms`` the
    time in the watermarking call; ``settings`` is :meth:`Options.settings_id`.
    """

    input: str
    output: str
    status: str
    index: int = 0
    name: str = ""
    payload: dict | None = None
    content_id: int | None = None
    produce_id: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    input_bytes: int | None = None
    output_bytes: int | None = None
    input_sha256: str | None = None
    output_sha256: str | None = None
    reused: bool = False
    seconds: float = 0.0
    mark_ms: float | None = None
    psnr_db: float | None = None
    settings: str = ""
    finished: str = ""
    error: str | None = None
    warnings: tuple[str, ...] = ()
    metadata: dict | None = None
    explicit_box: tuple[int, int, int, int] | None = None
    explicit_text_height: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == DONE

    def to_dict(self) -> dict:
        """JSON-ready; ``error``, ``produce_id``, ``psnr_db``, ``warnings``,
        ``metadata`` and ``explicit_box`` only when they have a value."""
        d = asdict(self)
        for k in ("error", "produce_id", "psnr_db", "metadata", "explicit_box",
                  "explicit_text_height", "mark_ms"):
            if d[k] is None:
                del d[k]
        if d["warnings"]:
            d["warnings"] = list(d["warnings"])
        else:
            del d["warnings"]
        if d.get("explicit_box") is not None:
            d["explicit_box"] = list(d["explicit_box"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Row:
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        if "warnings" in kw:
            kw["warnings"] = tuple(kw["warnings"])
        if kw.get("explicit_box") is not None:
            kw["explicit_box"] = tuple(kw["explicit_box"])
        return cls(**kw)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _payload_dict(p: Payload) -> dict:
    return {"provider": p.provider, "content_id": p.content_id, "label": p.label}


def _error_text(exc: BaseException, name: str) -> str:
    """One line naming the file once; unexpected exception types say so."""
    from ._io import describe_os_error

    if isinstance(exc, OSError) and not isinstance(exc, ImageError):
        msg = describe_os_error(exc)
    elif isinstance(exc, (ValueError, MemoryError)) or type(exc).__name__ == "FontNotFoundError":
        msg = str(exc) or type(exc).__name__
        if isinstance(exc, MemoryError):
            msg = "out of memory; lower --max-pixels or use fewer workers"
    else:
        msg = f"internal error ({type(exc).__name__}: {exc}); please report it"
    return msg if name in msg else f"{name}: {msg}"


def mark_item(task: Task, data: bytes, options: Options) -> Row:
    """Mark one input held in memory and write its output: the per-item work of
    every engine (the local pool, Ray). Never raises for the item's own problems:
    they come back as a row with ``status="failed"``.

    Steps: :func:`provmark._bytes.encode_embedded` (or
    :func:`~provmark._bytes.encode_labelled_bytes`) on ``data``, then
    :func:`write_output` (atomic; an existing output with identical bytes is
    adopted, ``reused=True``), then the row. The row is returned only after the
    output exists, so a manifest written from rows never names a missing output.
    """
    from ._bytes import encode_embedded, encode_labelled_bytes

    t0 = time.perf_counter()
    base = dict(input=task.input, output=task.output, index=task.index, name=task.name,
                payload=_payload_dict(task.payload), content_id=task.payload.content_id,
                produce_id=task.produce_id, settings=options.settings_id(),
                input_bytes=len(data))
    try:
        if options.mode == "embed":
            enc = encode_embedded(data, task.payload, key=options.key, format=options.format,
                                  quality=options.quality, strength=options.strength,
                                  min_psnr=options.min_psnr, adapt=options.adapt,
                                  what=task.input, measure=options.measure)
        else:
            enc = encode_labelled_bytes(
                data, task.payload, content_producer=options.content_producer,
                produce_id=task.produce_id, key=options.key, format=options.format,
                quality=options.quality, explicit=options.explicit, text=options.text,
                position=options.position, strength=options.strength,
                min_psnr=options.min_psnr, adapt=options.adapt, what=task.input,
                measure=options.measure, c2pa=options.c2pa)
        reused = write_output(task.output, enc.data, overwrite=options.overwrite,
                              source=task.input)
    except Exception as exc:  # noqa: BLE001 - one bad item never stops the run
        return Row(status=FAILED, error=_error_text(exc, task.input),
                   input_sha256=hashlib.sha256(data).hexdigest(),
                   seconds=round(time.perf_counter() - t0, 4), finished=_now(), **base)
    return Row(
        status=DONE, format=enc.format.lower(), width=enc.width, height=enc.height,
        output_bytes=len(enc.data), input_sha256=hashlib.sha256(data).hexdigest(),
        output_sha256=hashlib.sha256(enc.data).hexdigest(), reused=reused,
        seconds=round(time.perf_counter() - t0, 4), mark_ms=round(enc.mark_seconds * 1e3, 1),
        psnr_db=None if enc.psnr_db is None else round(enc.psnr_db, 2), finished=_now(),
        warnings=enc.notes, metadata=None if enc.label is None else enc.label.to_dict(),
        explicit_box=enc.explicit_box,
        explicit_text_height=None if enc.label is None else enc.explicit_text_height, **base)


def process(task: Task, options: Options) -> Row:
    """Read the input (path or URL), then :func:`mark_item`. Never raises for the
    item's own problems (an unreadable input is a failed row)."""
    t0 = time.perf_counter()
    try:
        data = read_input(task.input)
    except Exception as exc:  # noqa: BLE001
        return Row(input=task.input, output=task.output, status=FAILED, index=task.index,
                   name=task.name, payload=_payload_dict(task.payload),
                   content_id=task.payload.content_id, produce_id=task.produce_id,
                   settings=options.settings_id(), error=_error_text(exc, task.input),
                   seconds=round(time.perf_counter() - t0, 4), finished=_now())
    return mark_item(task, data, options)


# --------------------------------------------------------------------------- #
# Content IDs and planning


@dataclass(frozen=True)
class IdPolicy:
    """How content IDs are assigned: ``first`` (consecutive from it, in input
    order), ``csv`` (a file with columns ``input,content_id[,produce_id]``, matched
    on the input's location or its relative name) or ``from_name`` (the first 40
    bits of SHA-256 of the relative name). Exactly one is set."""

    first: int | None = None
    csv: str | None = None
    from_name: bool = False

    def __post_init__(self) -> None:
        if sum((self.first is not None, self.csv is not None, bool(self.from_name))) != 1:
            raise ValueError("give exactly one of first, csv, from_name")


def name_content_id(name: str) -> int:
    """The content ID of ``name`` under :attr:`IdPolicy.from_name`."""
    digest = hashlib.sha256(b"provmark/content-id/" + name.encode("utf-8")).digest()
    return int.from_bytes(digest[:5], "big")


def _parse_int(text: str) -> int:
    return int(text.strip().replace("_", ""), 0)


def read_id_csv(path: str) -> dict[str, tuple[int, str | None]]:
    """``{input or name: (content_id, produce_id or None)}`` from a CSV with a header
    row holding ``input`` and ``content_id`` (and optionally ``produce_id``).

    Raises
    ------
    BatchError
        A missing file or column, a bad or out-of-range content ID, a duplicate input.
    """
    p = local_path(path)
    try:
        text = (p.read_text(encoding="utf-8-sig") if p is not None
                else read_input(path).decode("utf-8-sig"))
    except (OSError, ImageError, UnicodeDecodeError) as exc:
        raise BatchError(f"--content-ids {path}: cannot read ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    cols = [c.strip() for c in (reader.fieldnames or [])]
    if "input" not in cols or "content_id" not in cols:
        raise BatchError(f"--content-ids {path}: the first line must name the columns "
                         f"input,content_id[,produce_id]; found {','.join(cols) or 'nothing'}")
    out: dict[str, tuple[int, str | None]] = {}
    for n, rec in enumerate(reader, start=2):
        rec = {k.strip(): (v or "").strip() for k, v in rec.items() if k}
        key = rec["input"]
        try:
            cid = _parse_int(rec["content_id"])
        except ValueError:
            raise BatchError(f"--content-ids {path} line {n}: content_id "
                             f"{rec['content_id']!r} is not an integer") from None
        if not 0 <= cid < 1 << CONTENT_ID_BITS:
            raise BatchError(f"--content-ids {path} line {n}: content_id {cid} is out of "
                             f"range 0 .. 2**{CONTENT_ID_BITS}-1")
        if key in out:
            raise BatchError(f"--content-ids {path} line {n}: {key!r} appears twice")
        out[key] = (cid, rec.get("produce_id") or None)
    return out


def output_name(name: str, fmt: str | None) -> str:
    """The relative output name: ``name`` with its extension changed to the
    format's (``fmt`` "png"/"jpeg"/"jpg"/"webp", any case, optional dot) or kept."""
    if fmt is None:
        stem, dot, ext = name.rpartition(".")
        return f"{stem}.{ext.lower()}" if dot else name
    ext = FORMAT_EXTENSIONS.get(fmt.lower().lstrip("."))
    if ext is None:
        raise BatchError(f"format {fmt!r}: use png, jpeg (jpg) or webp")
    stem = name.rsplit(".", 1)[0] if "." in name.rsplit("/", 1)[-1] else name
    return stem + ext


def _produce_id(template: str, src: Source, index: int, content_id: int) -> str:
    base = src.name.rsplit("/", 1)[-1]
    values = {"{stem}": base.rsplit(".", 1)[0], "{name}": base,
              "{content_id}": str(content_id), "{index}": str(index)}
    out = template
    for k, v in values.items():
        out = out.replace(k, v)
    return out


@dataclass(frozen=True)
class Done:
    """What a manifest keeps of a finished item to resume a run: enough to check
    that this run would write the same output (a million of these are ~200 MB,
    full rows would be five times that)."""

    input: str
    output: str
    content_id: int | None
    produce_id: str | None
    settings: str


@dataclass(frozen=True)
class Plan:
    """What a run will do: ``tasks`` still to do, ``done`` the manifest's entries
    for these inputs that are finished (skipped), ``total`` the input count,
    ``stale_temporaries`` removed."""

    tasks: list[Task]
    done: list[Done]
    total: int
    stale_temporaries: int = 0


def plan(sources: list[Source], output: str, options: Options, *, ids: IdPolicy,
         provider: int, label: int = 1, produce_id: str | None = None,
         manifest: Manifest | None = None, single_output: bool = False) -> Plan:
    """Turn the listed inputs into tasks, after every check that needs no pixels.

    Parameters
    ----------
    sources : list of Source
        From :func:`list_sources`, in run order.
    output : str
        The output directory or URL prefix; with ``single_output`` the output file.
    options : Options
    ids : IdPolicy
        How content IDs are assigned.
    provider, label : int
        The payload's provider code and generation label.
    produce_id : str, optional
        Label mode: the ProduceID, a template with ``{stem}``, ``{name}``,
        ``{content_id}`` or ``{index}`` (several inputs need one of them unless the
        CSV gives each its own).
    manifest : Manifest, optional
        Rows recorded as done are skipped; they must agree with this plan (same
        output, content ID and settings) or the run is refused.

    Raises
    ------
    BatchError
        Two inputs writing one output, an output that is an input, content IDs out
        of range or colliding, a CSV without some input, invalid ProduceIDs, a
        manifest that disagrees.
    """
    from . import metadata as _metadata

    if not sources:
        raise BatchError("no input images")
    mapping = read_id_csv(ids.csv) if ids.csv is not None else None
    if ids.first is not None:
        last = ids.first + len(sources) - 1
        if last >= 1 << CONTENT_ID_BITS:
            raise BatchError(f"content_id {ids.first} + {len(sources)} inputs runs past "
                             f"2**{CONTENT_ID_BITS}-1: start lower")
    tasks: list[Task] = []
    outputs: dict[str, str] = {}
    by_id: dict[int, str] = {}
    missing: list[str] = []
    for index, src in enumerate(sources):
        pid = None
        if mapping is not None:
            entry = mapping.get(src.location) or mapping.get(src.name)
            if entry is None:
                missing.append(src.name)
                continue
            cid, pid = entry
        elif ids.from_name:
            cid = name_content_id(src.name)
        else:
            cid = ids.first + index
        if ids.from_name and cid in by_id:
            raise BatchError(f"content IDs from names collide: {by_id[cid]} and {src.name} "
                             f"both give {cid}; use consecutive IDs or a CSV mapping")
        by_id.setdefault(cid, src.name)
        target = output if single_output else join(output, output_name(src.name, options.format))
        if target in outputs:
            raise BatchError(f"{outputs[target]} and {src.location} would both write {target} "
                             "(two inputs with the same name); rename one or mark them "
                             "in separate runs")
        outputs[target] = src.location
        tl, sl = local_path(target), local_path(src.location)
        if (target == src.location or (tl is not None and sl is not None and tl.exists()
                                       and sl.exists() and tl.resolve() == sl.resolve())):
            raise BatchError(f"{target}: is the input {src.location}; refusing to overwrite an "
                             "input: choose another output directory or --format")
        if options.mode == "label":
            if pid is None:
                if produce_id is None:
                    raise BatchError("the label mode needs a ProduceID per image: --produce-id "
                                     "TEMPLATE (e.g. 'img-{content_id}') or a produce_id column "
                                     "in --content-ids")
                pid = _produce_id(produce_id, src, index, cid)
            try:
                _metadata.AIGCLabel(str(label), options.content_producer, pid)
            except ValueError as exc:
                raise BatchError(f"{src.name}: ProduceID {pid!r} is invalid: {exc}") from None
        tasks.append(Task(index, src.location, target, src.name,
                          Payload(provider=provider, content_id=cid, label=label), pid))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise BatchError(f"--content-ids {ids.csv} has no row for {shown}: add them (column "
                         "input: the file's path or its name relative to the input directory)")
    if options.mode == "label" and len(tasks) > 1:
        pids = [t.produce_id for t in tasks]
        if len(set(pids)) < len(pids):
            raise BatchError("several images would get the same ProduceID: put {stem}, "
                             "{name}, {content_id} or {index} into --produce-id, or give each "
                             "a produce_id in --content-ids")
    done: list[Done] = []
    if manifest is not None:
        tasks, done = _resume(tasks, options, manifest)
    return Plan(tasks, done, len(sources), remove_stale_temporaries(t.output for t in tasks))


def _resume(tasks: list[Task], options: Options, manifest: Manifest
            ) -> tuple[list[Task], list[Done]]:
    settings = options.settings_id()
    todo, done = [], []
    for t in tasks:
        row = manifest.done.get(t.input)
        if row is None:
            todo.append(t)
            continue
        why = None
        if row.settings != settings:
            why = "other settings (provider, label, key, format, quality, strength or label fields)"
        elif row.content_id != t.payload.content_id:
            why = (f"content ID {row.content_id}, and this run would give it "
                   f"{t.payload.content_id} (were inputs added or removed in between?)")
        elif row.output != t.output:
            why = f"the output {row.output}, and this run writes {t.output}"
        elif options.mode == "label" and row.produce_id != t.produce_id:
            why = f"ProduceID {row.produce_id}, and this run gives {t.produce_id}"
        if why:
            raise BatchError(
                f"the manifest {manifest.path} records {t.input} as marked with {why}: re-run "
                "with the options of that run, or start a new --manifest (and output "
                "directory)")
        done.append(row)
    return todo, done


# --------------------------------------------------------------------------- #
# The manifest


class Manifest:
    """A JSON-lines manifest, one :class:`Row` per line, appended as items finish.

    Open it with :meth:`open` (a local file; created if missing). The file is
    locked for the run (a second run on the same manifest is refused). A line is
    written with one ``write`` and then flushed and fsynced, so a crash loses at
    most the line being written; a torn last line is ignored when the manifest is
    read again. ``done`` maps each input to the :class:`Done` entry of its latest
    row, when that row's status is done.
    """

    def __init__(self, path: Path, fd: int, done: dict[str, Done], rows: int):
        self.path = path
        self._fd = fd
        self.done = done
        self.rows = rows

    @classmethod
    def open(cls, location: str | os.PathLike) -> Manifest:
        path = local_path(location)
        if path is None:
            raise BatchError(f"--manifest {location}: must be a local file (it is appended "
                             "and synced after every image); the outputs may be remote")
        if path.is_dir():
            raise BatchError(f"--manifest {path}: is a directory; give a file name "
                             "(e.g. manifest.jsonl)")
        if not (path.parent if str(path.parent) else Path(".")).is_dir():
            raise BatchError(f"--manifest {path}: the directory {path.parent} does not exist")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise BatchError(f"--manifest {path}: cannot open ({exc.strerror or exc})") from None
        try:
            _lock(fd, path)
            done, rows = cls._read(fd, path)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, done, rows)

    @staticmethod
    def _read(fd: int, path: Path) -> tuple[dict[str, Done], int]:
        done: dict[str, Done] = {}
        rows = 0
        last = b""
        with os.fdopen(os.dup(fd), "rb") as fh:  # line by line: a manifest may be GBs
            fh.seek(0)
            pending = None  # the previous line, parsed once the next one is seen
            for n, line in enumerate(fh, start=1):
                if pending is not None:
                    rows += _fold_line(done, *pending)
                pending = (n, line, path, False)
                last = line
            if pending is not None:
                # the last line may be torn by a crash: then it is ignored (redone)
                rows += _fold_line(done, pending[0], pending[1], path, True)
        if last and not last.endswith(b"\n"):
            os.write(fd, b"\n")  # the next row starts on its own line
        return done, rows

    def append(self, row: Row) -> None:
        """Append ``row`` as one line, flushed and fsynced before returning."""
        line = (json.dumps(row.to_dict(), ensure_ascii=False, sort_keys=False) + "\n").encode()
        os.write(self._fd, line)
        os.fsync(self._fd)
        self.rows += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the lock
            self._fd = -1

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fold_line(done: dict[str, Done], n: int, line: bytes, path: Path, last: bool) -> int:
    """Fold manifest line ``n`` into ``done``; returns 1 for a row, 0 for a blank
    or torn last line."""
    if not line.strip():
        return 0
    try:
        d = json.loads(line)
        inp, status = d["input"], d["status"]
    except (ValueError, TypeError, KeyError) as exc:
        if last and not line.endswith(b"\n"):
            return 0
        raise BatchError(f"--manifest {path} line {n} is not a manifest row ({exc}); "
                         "is it the right file?") from None
    if status == DONE:
        done[inp] = Done(inp, d.get("output", ""), d.get("content_id"), d.get("produce_id"),
                         d.get("settings", ""))
    else:
        done.pop(inp, None)
    return 1


def _lock(fd: int, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory lock
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise BatchError(f"--manifest {path}: another provmark run is using it; wait for it "
                         "to finish (or stop it), then run again to resume") from None


# --------------------------------------------------------------------------- #
# Summary


@dataclass(frozen=True)
class Summary:
    """What a run did: ``images`` finished in this run (``done`` + ``failed``),
    ``skipped`` already done per the manifest, ``reused`` outputs adopted, bytes
    read and written, wall ``seconds``, and the rates; ``interrupted`` when it
    stopped early (``remaining`` items not started)."""

    images: int
    done: int
    failed: int
    skipped: int
    reused: int
    input_bytes: int
    output_bytes: int
    seconds: float
    interrupted: bool = False
    remaining: int = 0

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_second(self) -> float:
        """Input megabytes (10^6 bytes) read per second."""
        return self.input_bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["images_per_second"] = round(self.images_per_second, 3)
        d["mb_per_second"] = round(self.mb_per_second, 3)
        return d

    def text(self, verb: str = "marked") -> str:
        parts = [f"{self.done} {verb}", f"{self.failed} failed"]
        if self.skipped:
            parts.append(f"{self.skipped} already done")
        if self.reused:
            parts.append(f"{self.reused} outputs found complete and kept")
        head = "interrupted" if self.interrupted else "summary"
        tail = f"; {self.remaining} not started: run it again to finish" if self.remaining else ""
        return (f"{head}: {', '.join(parts)} in {self.seconds:.1f} s: "
                f"{self.images_per_second:.2f} images/s, {self.mb_per_second:.2f} MB/s read, "
                f"{self.output_bytes / 1e6 / max(self.seconds, 1e-9):.2f} MB/s written{tail}")


class Tally:
    """Counts rows as they come, for a :class:`Summary` without keeping the rows
    (a million of them would take gigabytes)."""

    def __init__(self) -> None:
        self.images = self.done = self.reused = self.input_bytes = self.output_bytes = 0

    def add(self, row: Row) -> None:
        self.images += 1
        self.input_bytes += row.input_bytes or 0
        if row.ok:
            self.done += 1
            self.reused += bool(row.reused)
            self.output_bytes += row.output_bytes or 0

    def summary(self, seconds: float, *, skipped: int = 0, interrupted: bool = False,
                remaining: int = 0) -> Summary:
        return Summary(images=self.images, done=self.done, failed=self.images - self.done,
                       skipped=skipped, reused=self.reused, input_bytes=self.input_bytes,
                       output_bytes=self.output_bytes, seconds=float(seconds),
                       interrupted=interrupted, remaining=remaining)

    def interrupted(self, seconds: float, total: int) -> Interrupted:
        """What a run of ``total`` items raises when Ctrl-C or SIGTERM stops it after
        ``seconds``: its summary so far, with the items not reached."""
        return Interrupted(self.summary(seconds, interrupted=True,
                                        remaining=total - self.images))


def record_rows(rows: Iterable[Row], tally: Tally, *, manifest: Manifest | None = None,
                progress: Callable[[Row], None] | None = None) -> None:
    """Take each finished row as an engine yields it: append it to ``manifest`` (its
    output exists by then, so a re-run may skip it), count it in ``tally``, then
    pass it to ``progress``. Every engine records its rows here, so that their
    manifests and progress agree."""
    for row in rows:
        if manifest is not None:
            manifest.append(row)
        tally.add(row)
        if progress is not None:
            progress(row)


def summarise(rows: Iterable[Row], seconds: float, *, skipped: int = 0,
              interrupted: bool = False, remaining: int = 0) -> Summary:
    """The :class:`Summary` of the rows a run produced in ``seconds``."""
    tally = Tally()
    for row in rows:
        tally.add(row)
    return tally.summary(seconds, skipped=skipped, interrupted=interrupted, remaining=remaining)


# --------------------------------------------------------------------------- #
# The local engine


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_workers(items: int, requested: int | None = None) -> int:
    """``requested``, or the cores but no more than one worker per
    :data:`MIN_ITEMS_PER_WORKER` items (starting a worker costs more than marking a
    few images)."""
    if requested is not None:
        if requested < 1:
            raise BatchError(f"--workers {requested}: use 1 or more")
        return int(requested)
    return max(1, min(available_cores(), items // MIN_ITEMS_PER_WORKER))


def _die_with_parent(parent: int) -> None:
    """Linux: this worker gets SIGKILL when the driver dies (even by SIGKILL), so
    no orphan keeps writing after a crash."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the driver died before prctl took effect
        os._exit(1)


def _init_worker(parent: int, threads: int, max_pixels: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        _die_with_parent(parent)
    from ._image import MAX_PIXELS_ENV

    os.environ[MAX_PIXELS_ENV] = str(max_pixels)
    try:
        import numba

        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    except ImportError:  # pragma: no cover - numba is a dependency
        pass
    _warm_up()


def _warm_up() -> None:
    """Mark, encode and detect a small image once, so that loading the compiled
    kernels (the detector's too: embedding reads back images with clipped areas)
    and the codecs is paid when the worker starts, not by its first images."""
    import numpy as np

    from ._detect import detect
    from ._embed import embed
    from ._io import encode_image

    rgb = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    with contextlib.suppress(Exception):
        marked = embed(rgb, Payload(0, 0))
        encode_image(marked, "JPEG", quality=90)
        detect(marked)


def _check_in(flag_dir: str, workers: int, timeout: float) -> int:
    """A task that waits until ``workers`` tasks like it have started: each then
    holds its own worker, so all workers exist (and are warmed up)."""
    Path(flag_dir, str(os.getpid())).touch()
    deadline = time.monotonic() + timeout
    while len(os.listdir(flag_dir)) < workers and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


class WorkerPool:
    """The local engine's workers: this process (``workers == 1``) or a ``spawn``
    process pool whose workers each get ``cores // workers`` Numba threads and this
    process's pixel limit, ignore Ctrl-C and SIGTERM (the driver stops the run) and
    die with the driver (Linux: even when it is killed by SIGKILL). All workers are
    started and warmed up (:func:`_warm_up`) when the pool is made.

    Use it as a context manager; :meth:`map` may be called several times (the
    workers stay up, so a benchmark can warm them before timing).
    """

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))
        self._pool = None
        if self.workers > 1:
            import concurrent.futures as cf
            import multiprocessing

            from ._image import max_pixels

            threads = max(1, available_cores() // self.workers)
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(os.getpid(), threads, max_pixels()))
            self._start_all()

    def _start_all(self) -> None:
        """Start every worker now (the executor starts them one by one on demand),
        each warmed up by its initializer, so that the first images do not wait
        for imports and kernel loading."""
        import concurrent.futures as cf

        with tempfile.TemporaryDirectory(prefix="provmark-pool-") as flags:
            started = [self._pool.submit(_check_in, flags, self.workers, 300.0)
                       for _ in range(self.workers)]
            cf.wait(started)

    def map(self, fn: Callable, items: Iterable, *args) -> Iterator:
        """``fn(item, *args)`` for every item, results in completion order.

        At most ``4 * workers`` items are in flight. When the consumer stops
        (Ctrl-C in the driver), items not started are cancelled and the ones
        running are awaited and yielded before the KeyboardInterrupt is re-raised.
        """
        if self._pool is None:
            for item in items:
                yield fn(item, *args)
            return
        import concurrent.futures as cf

        pending: set = set()
        try:
            for item in items:
                pending.add(self._pool.submit(fn, item, *args))
                if len(pending) >= self.workers * _IN_FLIGHT_PER_WORKER:
                    finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    for f in finished:
                        yield f.result()
            while pending:
                finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for f in finished:
                    yield f.result()
        except KeyboardInterrupt:
            for f in pending:
                f.cancel()
            running = [f for f in pending if not f.cancelled()]
            cf.wait(running)
            for f in running:
                with contextlib.suppress(Exception):
                    yield f.result()
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def pool_map(fn: Callable, items: list, *args, workers: int = 1) -> Iterator:
    """``fn(item, *args)`` for every item in a :class:`WorkerPool` of ``workers``
    (this process for one item), results in completion order."""
    with WorkerPool(workers if len(items) > 1 else 1) as pool:
        yield from pool.map(fn, items, *args)


class Interrupted(KeyboardInterrupt):
    """Raised by :func:`run_batch` after Ctrl-C (or SIGTERM) once the items in
    flight are finished and recorded; ``summary`` says what was done."""

    def __init__(self, summary: Summary):
        super().__init__("interrupted")
        self.summary = summary


def run_batch(tasks: list[Task], options: Options, *, manifest: Manifest | None = None,
              workers: int | None = None, progress: Callable[[Row], None] | None = None,
              pool: WorkerPool | None = None) -> Summary:
    """Mark ``tasks`` with the local engine and return the :class:`Summary`.

    Each finished row is appended to ``manifest`` (after its output exists), then
    passed to ``progress`` (in completion order). ``workers`` as in
    :func:`default_workers`; ``memory://`` locations (one file system per process)
    run in this process. ``pool``: an open :class:`WorkerPool` to use instead
    (``workers`` is then ignored).

    Raises
    ------
    Interrupted
        On Ctrl-C or SIGTERM, after the items in flight are finished and recorded
        (a re-run with the same manifest finishes the rest).
    """
    from concurrent.futures.process import BrokenProcessPool

    n = default_workers(len(tasks), workers)
    if any(in_process_only(loc) for t in tasks for loc in (t.input, t.output)):
        n = 1
    tally = Tally()
    t0 = time.perf_counter()
    try:
        with _sigterm_as_interrupt(), contextlib.ExitStack() as stack:
            if pool is None:
                pool = stack.enter_context(WorkerPool(n if len(tasks) > 1 else 1))
            record_rows(pool.map(process, tasks, options), tally, manifest=manifest,
                        progress=progress)
    except KeyboardInterrupt:
        raise tally.interrupted(time.perf_counter() - t0, len(tasks)) from None
    except BrokenProcessPool:
        raise BatchError(
            f"a worker process died (killed, most likely for lack of memory) after {tally.images} "
            f"of {len(tasks)} images were finished{' and recorded' if manifest else ''}: "
            "run again with fewer --workers (or a lower --max-pixels)"
            f"{' to resume' if manifest else ''}") from None
    return tally.summary(time.perf_counter() - t0)


def in_process_only(location: str) -> bool:
    """True for ``memory://`` locations: each process has its own such file system,
    so worker processes would not see them."""
    return str(location).lower().startswith("memory://")


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Within the block SIGTERM stops the run like Ctrl-C (main thread only)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------- #
# Scanning: detect and inspect over many images


@dataclass(frozen=True)
class ScanResult:
    """One scanned image: ``result`` (a :class:`~provmark.Detection` or an
    :class:`~provmark.InspectionReport`) or ``error``; ``index`` its position;
    ``ms`` the detection time; ``html_report``/``html_error`` for inspect's HTML."""

    index: int
    input: str
    result: object = None
    error: str | None = None
    ms: float = 0.0
    html_report: str | None = None
    html_error: str | None = None


@dataclass(frozen=True)
class ScanJob:
    """One image to scan and how: ``kind`` "detect" or "inspect"; ``search`` passed
    to detect/inspect; ``tamper`` (inspect); ``html`` the report's path or None."""

    index: int
    input: str
    kind: str = "detect"
    key: bytes | None = field(default=None, repr=False)
    search: bool | str = True
    tamper: bool = True
    html: str | None = None
    overwrite: bool = False
    #: PEM trust anchors for the C2PA signer (inspect), or None.
    c2pa_trust: str | None = field(default=None, repr=False)


def scan_item(job: ScanJob) -> ScanResult:
    """Detect (or inspect) one image given by path or URL; never raises for the
    image's own problems (a corrupt file is a result with ``error``)."""
    import provmark  # the public functions (what the command line promises to run)

    from ._io import read_image_bytes

    t0 = time.perf_counter()
    rgb = None
    try:
        data = read_input(job.input)
        if job.kind == "detect":
            rgb = read_image_bytes(data, what=job.input).rgb
            t0 = time.perf_counter()
            result = provmark.detect(rgb, key=job.key, search=job.search)
        else:
            try:
                result = provmark.inspect(data, key=job.key, search=job.search,
                                          tamper=job.tamper, c2pa_trust=job.c2pa_trust)
            except ImageError as exc:  # name the file, not "<bytes>"
                raise ImageError(str(exc).replace("<bytes>", job.input)) from None
            result = dataclasses.replace(result, source=job.input)
        ms = (time.perf_counter() - t0) * 1e3
    except Exception as exc:  # noqa: BLE001 - one bad file never stops a scan
        return ScanResult(job.index, job.input, error=_error_text(exc, job.input))
    html_report = html_error = None
    if job.html is not None:
        from ._report_html import write_html_report

        try:
            if rgb is None:
                rgb = read_image_bytes(data, what=job.input).rgb
            write_html_report(result, rgb, Path(job.html), overwrite=job.overwrite)
            html_report = job.html
        except Exception as exc:  # noqa: BLE001
            html_error = _error_text(exc, job.html)
    return ScanResult(job.index, job.input, result, None, round(ms, 1), html_report, html_error)
