"""Reading a watermark key from a file: the one rule the command line's ``--key-file``
and the service's ``key_file`` setting share.

A key file holds the key's bytes, with one trailing newline (``\\n`` or ``\\r\\n``)
removed because editors add one. It is read with a size limit, so that ``/dev/zero``
or a large file named by mistake is an error, not a hang.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._errors import ProvmarkError

#: Largest key file read (bytes); a key is a secret of a few dozen bytes.
KEY_FILE_MAX_BYTES = 4096


class KeyFileError(ProvmarkError, ValueError):
    """A key file cannot be read, is empty or is too large; the message names the file."""


def read_key_file(path: str | os.PathLike) -> bytes:
    """The key in ``path``: its bytes, one trailing newline removed.

    Raises
    ------
    KeyFileError
        The file cannot be read, is larger than :data:`KEY_FILE_MAX_BYTES` or holds
        nothing but a newline.
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            data = fh.read(KEY_FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {p}: {exc.strerror or exc}") from None
    if len(data) > KEY_FILE_MAX_BYTES:
        raise KeyFileError(f"key file {p} is larger than {KEY_FILE_MAX_BYTES} bytes: is it the "
                           "right file? A key is a secret of a few dozen bytes")
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise KeyFileError(f"key file {p} is empty")
    return data
