"""The GB 45438 label itself: its fields, their validation, its JSON and its integrity code.

This module owns :class:`AIGCLabel` (the seven fields, checked against the rules
tabled in :mod:`provmark.metadata`), the lenient parser of label JSON that the
readers use (both the wrapped ``{"AIGC":{..}}`` and the bare ``{"Label":..}``
shape), and the HMAC code provmark stores in ``ReservedCode1`` to tie the
producer's fields to the watermark payload (:func:`integrity_code`,
:func:`sign_label`, :func:`verify_integrity`).  It knows nothing of XMP or of image
containers, and uses only the Python standard library.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from .._errors import ProvmarkError


class MetadataError(ProvmarkError, ValueError):
    """A label that cannot be written, or a file that cannot carry one as asked (a
    malformed container, an XMP packet it cannot update safely); the message says
    which and what to do. A ``ValueError``, as these refusals always were."""


#: Meaning of each value of ``Label``.
LABEL_MEANINGS = {
    "1": "AI-generated",
    "2": "possibly AI-generated",
    "3": "suspected AI-generated",
}
#: Longest value accepted for any field other than ``Label`` (characters).
MAX_FIELD_LENGTH = 256
#: Longest label JSON parsed (characters).  A label of 7 fields at the maximum
#: length is under 2 000 characters; anything longer is not a label.
MAX_JSON_LENGTH = 8192

_INTEGRITY_PREFIX = "pm1:"
_MAC_DOMAIN = b"provmark/TC260-ReservedCode1/v1\x00"
_MAC_BYTES = 16  # 128-bit tag -> 26 base32 characters

# (attribute name, JSON key, required)
_FIELDS = (
    ("label", "Label", True),
    ("content_producer", "ContentProducer", True),
    ("produce_id", "ProduceID", True),
    ("reserved_code1", "ReservedCode1", False),
    ("content_propagator", "ContentPropagator", False),
    ("propagate_id", "PropagateID", False),
    ("reserved_code2", "ReservedCode2", False),
)
_JSON_KEYS = tuple(k for _, k, _ in _FIELDS)
_PRODUCER_KEYS = ("Label", "ContentProducer", "ProduceID")


# --------------------------------------------------------------------------- #
# Field validation
# --------------------------------------------------------------------------- #
def _describe_char(ch: str) -> str:
    if ch == " ":
        return "a space"
    if ch == '"':
        return 'a double quote (")'
    if ch == "\\":
        return "a backslash (\\)"
    code = ord(ch)
    if code < 0x20 or code == 0x7F:
        return f"the control character U+{code:04X}"
    return f"the non-ASCII character {ch!r} (U+{code:04X})"


def _value_problem(key: str, value: object, *, required: bool) -> str | None:
    """Return why ``value`` is not acceptable for the field ``key``, or None."""
    if not isinstance(value, str):
        return f"{key} must be a string, got {type(value).__name__} {value!r:.40}"
    if key == "Label":
        if value not in LABEL_MEANINGS:
            return (
                f'Label must be "1" (AI-generated), "2" (possibly) or "3" (suspected), '
                f"got {value!r:.40}"
            )
        return None
    if required and not value:
        return f"{key} is empty; GB 45438 requires it"
    if len(value) > MAX_FIELD_LENGTH:
        return f"{key} is {len(value)} characters long; the maximum is {MAX_FIELD_LENGTH}"
    for i, ch in enumerate(value):
        if not ("!" <= ch <= "~") or ch in '"\\':
            return (
                f"{key} contains {_describe_char(ch)} at position {i}; only printable "
                'ASCII without space, " and \\ is allowed'
            )
    return None


# --------------------------------------------------------------------------- #
# The label
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class AIGCLabel:
    """The seven fields of the GB 45438 metadata label.

    Parameters
    ----------
    label : str
        ``"1"`` AI-generated, ``"2"`` possibly AI-generated, ``"3"`` suspected.
    content_producer : str
        Name or code of the service that generated the content (required).
    produce_id : str
        The producer's unique ID of this piece of content (required).
    reserved_code1 : str, optional
        Producer's protection code; :func:`sign_label` stores an integrity code here.
    content_propagator, propagate_id, reserved_code2 : str, optional
        Filled by a platform that spreads the content (:meth:`with_propagator`).

    Raises
    ------
    ValueError
        If a field breaks the rules in the module docstring; the message names the
        JSON key of each bad field and what is wrong with it.

    Examples
    --------
    >>> lab = AIGCLabel("1", "001191440300MA5DXXXX00000", "img-20250901-0001")
    >>> lab.to_json()[:46]
    '{"AIGC":{"Label":"1","ContentProducer":"001191'
    >>> AIGCLabel.from_json(lab.to_json()) == lab
    True
    """

    label: str
    content_producer: str
    produce_id: str
    reserved_code1: str = ""
    content_propagator: str = ""
    propagate_id: str = ""
    reserved_code2: str = ""

    def __post_init__(self) -> None:
        problems = [
            p
            for attr, key, required in _FIELDS
            if (p := _value_problem(key, getattr(self, attr), required=required))
        ]
        if problems:
            raise MetadataError("invalid AIGC label: " + "; ".join(problems))

    @property
    def meaning(self) -> str:
        """Plain-English meaning of :attr:`label`."""
        return LABEL_MEANINGS[self.label]

    def to_dict(self) -> dict[str, str]:
        """The inner ``AIGC`` object, keys in the standard's order."""
        return {key: getattr(self, attr) for attr, key, _ in _FIELDS}

    def to_json(self, *, wrapped: bool = True) -> str:
        """Compact JSON with all seven keys in the standard's order.

        ``wrapped=True`` gives ``{"AIGC":{"Label":..}}`` (GB 45438 Annex E);
        ``wrapped=False`` gives the bare ``{"Label":..}`` that goes into the XMP
        property ``TC260:AIGC``.
        """
        obj = {"AIGC": self.to_dict()} if wrapped else self.to_dict()
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> AIGCLabel:
        """Parse and strictly validate ``{"AIGC":{...}}`` or the bare ``{"Label":..}``.

        Strict means: valid JSON, ``Label``, ``ContentProducer`` and ``ProduceID``
        present, every value a valid string, no unknown or duplicate key.  Missing
        optional keys read as ``""``.

        Raises
        ------
        ValueError
            Naming each problem (field and what is wrong).
        """
        label, problems, _ = _parse_label_json(text)
        if problems or label is None:
            raise MetadataError("invalid AIGC label JSON: " + "; ".join(problems))
        return label

    def with_propagator(
        self, content_propagator: str, propagate_id: str, reserved_code2: str = ""
    ) -> AIGCLabel:
        """Return a copy with the propagator's fields set; producer fields are unchanged.

        Raises
        ------
        ValueError
            If ``content_propagator`` or ``propagate_id`` is empty or invalid.
        """
        problems = [
            p
            for key, value in (
                ("ContentPropagator", content_propagator),
                ("PropagateID", propagate_id),
            )
            if (p := _value_problem(key, value, required=True))
        ]
        if problems:
            raise MetadataError("invalid propagator fields: " + "; ".join(problems))
        return dataclasses.replace(
            self,
            content_propagator=content_propagator,
            propagate_id=propagate_id,
            reserved_code2=reserved_code2,
        )


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKeyError(key)
        seen[key] = value
    return seen


def _parse_label_json(text: str | bytes) -> tuple[AIGCLabel | None, list[str], str | None]:
    """Lenient parse: (label or None, problems, declared Label value or None).

    ``label`` is None when the fields cannot make a valid :class:`AIGCLabel`;
    problems that do not prevent that (unknown keys, a numeric Label) are
    reported but the label is still returned.  Both the wrapped ``{"AIGC":{..}}``
    and the bare ``{"Label":..}`` shapes are accepted without a problem.
    """
    problems: list[str] = []
    if isinstance(text, (bytes, bytearray)):
        if len(text) > 4 * MAX_JSON_LENGTH + 3:  # longer than any UTF-8 of that length
            return (
                None,
                [f"AIGC JSON is {len(text)} bytes long, more than any valid label needs; "
                 "not parsed"],
                None,
            )
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return None, [f"AIGC JSON is not UTF-8 ({exc})"], None
    if len(text) > MAX_JSON_LENGTH:
        return (
            None,
            [
                f"AIGC JSON is {len(text)} characters long, more than the {MAX_JSON_LENGTH} "
                "any valid label needs; not parsed"
            ],
            None,
        )
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKeyError as exc:
        return None, [f"AIGC JSON has the key {exc.args[0]!r} more than once"], None
    except (ValueError, RecursionError) as exc:
        return None, [f"AIGC JSON is not valid JSON ({exc})"], None
    if not isinstance(obj, dict):
        return (
            None,
            [
                'AIGC JSON must be an object, {"AIGC":{..}} or {"Label":..}, got a '
                f"{type(obj).__name__}"
            ],
            None,
        )
    if "AIGC" in obj:
        extra = sorted(k for k in obj if k != "AIGC")
        if extra:
            problems.append(f"unexpected top-level key(s) {extra} next to AIGC; ignored")
        inner = obj["AIGC"]
        if not isinstance(inner, dict):
            return (
                None,
                [*problems, f"the value of AIGC must be an object, got a {type(inner).__name__}"],
                None,
            )
    elif "Label" in obj:
        inner = obj  # the bare form used inside XMP (TC260 practice guide)
    else:
        keys = sorted(obj)[:10]
        return (
            None,
            [f"AIGC JSON has neither an AIGC nor a Label key (top-level keys: {keys})"],
            None,
        )

    unknown = sorted(k for k in inner if k not in _JSON_KEYS)
    if unknown:
        problems.append(f"unknown key(s) {unknown} in AIGC; ignored")

    values: dict[str, str] = {}
    fatal = False
    declared: str | None = None
    for attr, key, required in _FIELDS:
        if key not in inner:
            if required:
                problems.append(f"{key} is missing; GB 45438 requires it")
                fatal = True
            values[attr] = ""
            continue
        value = inner[key]
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if key == "Label" and is_int and str(value) in LABEL_MEANINGS:
            problems.append(f'Label is the number {value}; it must be the string "{value}"')
            value = str(value)
        problem = _value_problem(key, value, required=required)
        if problem:
            problems.append(problem)
            fatal = True
        elif key == "Label":
            declared = value
        values[attr] = value if isinstance(value, str) else ""
    if fatal:
        return None, problems, declared
    return AIGCLabel(**values), problems, declared


# --------------------------------------------------------------------------- #
# Integrity code (ReservedCode1)
# --------------------------------------------------------------------------- #
def _producer_values(label_fields: AIGCLabel | Mapping[str, str]) -> list[tuple[str, str]]:
    if isinstance(label_fields, AIGCLabel):
        d = label_fields.to_dict()
    elif isinstance(label_fields, Mapping):
        d = dict(label_fields.get("AIGC", label_fields))  # accept the wrapper too
    else:
        raise TypeError(
            "label_fields must be an AIGCLabel or a mapping of JSON keys "
            f"(Label, ContentProducer, ProduceID), got {type(label_fields).__name__}"
        )
    out = []
    for key in _PRODUCER_KEYS:
        if key not in d:
            raise MetadataError(f"label_fields has no {key}; it is part of the integrity code")
        problem = _value_problem(key, d[key], required=True)
        if problem:
            raise MetadataError(problem)
        out.append((key, d[key]))
    return out


def _as_bytes(name: str, value: object, *, allow_empty: bool) -> bytes:
    if isinstance(value, str) or not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be bytes, got {type(value).__name__}")
    b = bytes(value)
    if not allow_empty and not b:
        raise MetadataError(f"{name} must not be empty")
    return b


def _mac_message(label_fields: AIGCLabel | Mapping[str, str], payload: bytes) -> bytes:
    parts = [_MAC_DOMAIN]
    for key, value in _producer_values(label_fields):
        raw = value.encode("ascii")
        parts += [key.encode("ascii"), b"=", struct.pack(">I", len(raw)), raw]
    parts += [b"payload=", struct.pack(">I", len(payload)), payload]
    return b"".join(parts)


def integrity_code(
    label_fields: AIGCLabel | Mapping[str, str], payload_bytes: bytes, key: bytes
) -> str:
    """Integrity code for ``ReservedCode1``: ``"pm1:"`` + 26 base32 characters.

    HMAC-SHA256 (truncated to 128 bits) over a length-prefixed serialisation of
    the producer fields ``Label``, ``ContentProducer``, ``ProduceID`` and of the
    watermark payload bytes.  ``ReservedCode1`` itself and the propagator fields
    are not covered, so a platform may add its fields without breaking the code.

    Parameters
    ----------
    label_fields : AIGCLabel or mapping
        The label, or a mapping with the JSON keys (``{"AIGC": {...}}`` accepted).
    payload_bytes : bytes
        The watermark payload the image carries (may be empty).
    key : bytes
        Secret HMAC key (non-empty).

    Examples
    --------
    >>> lab = AIGCLabel("1", "ACME", "id-1")
    >>> code = integrity_code(lab, b"\\x01\\x02", b"secret")
    >>> code.startswith("pm1:"), len(code)
    (True, 30)
    """
    payload = _as_bytes("payload_bytes", payload_bytes, allow_empty=True)
    k = _as_bytes("key", key, allow_empty=False)
    tag = hmac.new(k, _mac_message(label_fields, payload), hashlib.sha256).digest()
    return _INTEGRITY_PREFIX + base64.b32encode(tag[:_MAC_BYTES]).decode("ascii").rstrip("=")


def sign_label(label: AIGCLabel, payload_bytes: bytes, key: bytes) -> AIGCLabel:
    """Return ``label`` with ``ReservedCode1`` set to :func:`integrity_code`."""
    return dataclasses.replace(label, reserved_code1=integrity_code(label, payload_bytes, key))


def verify_integrity(label: AIGCLabel, payload_bytes: bytes, key: bytes) -> bool | None:
    """Check the provmark integrity code in ``label.reserved_code1``.

    Returns
    -------
    bool or None
        None when ``ReservedCode1`` holds no provmark code (empty, another
        producer's content, or a future ``pmN:`` version this release cannot
        check); True when it matches; False when it is a ``pm1:`` code that does
        not match (wrong key, changed producer fields or a different payload).
    """
    code = label.reserved_code1
    if not code.startswith(_INTEGRITY_PREFIX):
        return None
    return hmac.compare_digest(code, integrity_code(label, payload_bytes, key))

