"""The benchmark's method adapters: every watermarking method behind one interface.

A :class:`Method` has a ``name``, carries ``payload_bits`` random message bits,
embeds them (``embed(rgb, bits, rng) -> rgb``) and reads them back blind
(``detect(rgb) -> Readout``: the decoded bits, or None when the method says "no
mark"). :meth:`Method.p_value` turns a readout into the evidence used for TPR at a
fixed FPR: a p-value that is valid on unmarked images (``docs/bench.md``).

* :class:`ProvmarkMethod` -- provmark at a strength and a *payload profile*. The mark
  always carries the same 72-bit payload (version, label, 24-bit provider, 40-bit
  content ID, reserved) with CRC-32 and Reed-Solomon parity; a profile says how many
  of its bits are drawn at random per image (64: provider and content ID; 40: content
  ID only, provider fixed; ...). Fewer random bits do not make provmark's mark any
  more robust (the codeword has the same length); the profile is there so that the
  capacity plot compares like with like: the bits column always counts random
  message bits.
* :class:`PeerMethod` -- a peer package from :mod:`provmark.bench.peers`
  (invisible-watermark's dwtDct, dwtDctSvd, rivaGan; blind-watermark) at a payload
  length. Peers are optional: :func:`resolve_methods` skips a missing one with a
  message naming ``make peers``.

Method specs (``--methods``): ``provmark@1.0`` (strength 1.0, 64 random bits),
``provmark@0.5/40b``, ``dwtDct``, ``dwtDct/32b``, ``dwtDctSvd``, ``rivaGan``,
``blind-watermark``, ``blind-watermark/128b``, and the groups ``provmark``,
``peers``, ``peers-capacity``, ``all``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .metrics import binomial_p_value

__all__ = [
    "Readout",
    "Method",
    "ProvmarkMethod",
    "PeerMethod",
    "METHOD_GROUPS",
    "PEER_INSTALL_HINT",
    "parse_method",
    "resolve_methods",
]

#: What to run when a peer package is missing.
PEER_INSTALL_HINT = ("run `make peers` (CPU torch, then invisible-watermark and "
                     "blind-watermark with --no-deps, and onnxruntime for rivaGan)")

#: Fixed provider code of provmark profiles that draw 40 random bits or fewer.
FIXED_PROVIDER = 4242
_PROVMARK_FREE_BITS = 64  # provider (24) + content ID (40); label fixed to 1


@dataclass(frozen=True)
class Readout:
    """What a method read from one image.

    Attributes
    ----------
    bits : ndarray of bool or None
        The decoded message bits (``payload_bits`` of them), or None when the method
        reported "no mark" (provmark) or failed on the image.
    p_value : float or None
        The method's own p-value for "this image is unmarked" when it computes one
        (provmark); None when it depends on the expected message (peers: see
        :meth:`PeerMethod.p_value`).
    found : bool or None
        The method's own decision, where it makes one (provmark's ``found``).
    info : dict
        JSON-ready extras recorded with the case (e.g. provmark's pilot score).
    """

    bits: np.ndarray | None
    p_value: float | None = None
    found: bool | None = None
    info: dict = field(default_factory=dict)


@runtime_checkable
class Method(Protocol):
    """A blind watermarking method in the benchmark."""

    name: str
    payload_bits: int

    @property
    def detector_id(self) -> str:
        """Identity of the detector: methods that share it read unmarked images alike
        (provmark at every strength shares one), so negatives are run once."""
        ...

    @property
    def version(self) -> str:
        """Package version (part of the cache key)."""
        ...

    def embed(self, rgb: np.ndarray, bits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return a marked RGB uint8 copy of ``rgb`` carrying ``bits``."""
        ...

    def detect(self, rgb: np.ndarray) -> Readout:
        """Read the mark blind from an RGB uint8 image."""
        ...

    def p_value(self, readout: Readout, expected: np.ndarray) -> float:
        """Valid p-value of "unmarked" for a readout, given the message looked for."""
        ...


def _peer_p_value(readout: Readout, expected: np.ndarray) -> float:
    if readout.bits is None:
        return 1.0
    matches = int(np.sum(np.asarray(readout.bits, bool) == np.asarray(expected, bool)))
    return binomial_p_value(matches, int(np.size(expected)))


@dataclass(frozen=True)
class ProvmarkMethod:
    """provmark at one strength and payload profile.

    Parameters
    ----------
    strength : float, default 1.0
        ``provmark.embed``'s strength multiplier (the PSNR floor ``min_psnr`` still
        caps the change).
    bits : int, default 64
        Random message bits per image (1..64): the low ``bits`` bits of the content
        ID first, then of the provider code; the rest is fixed (provider
        :data:`FIXED_PROVIDER` when ``bits <= 40``; label 1).
    key : bytes or None
        ``None`` is provmark's public key.
    min_psnr : float, default 40.0
        ``provmark.embed``'s PSNR floor.
    search : {"standard", "exhaustive"}, default "standard"
        ``provmark.detect``'s search mode (``exhaustive`` also sweeps scales and
        rotations: resized or rotated copies of sources under 0.6 MP; seconds per
        unmarked image).
    """

    strength: float = 1.0
    bits: int = 64
    key: bytes | None = None
    min_psnr: float = 40.0
    search: str = "standard"

    def __post_init__(self) -> None:
        if not 0 < self.strength <= 10:
            raise ValueError(f"provmark strength {self.strength} must be in (0, 10]")
        if not 1 <= int(self.bits) <= _PROVMARK_FREE_BITS:
            raise ValueError(f"provmark profiles carry 1..{_PROVMARK_FREE_BITS} random bits, "
                             f"not {self.bits}")
        object.__setattr__(self, "bits", int(self.bits))
        if self.search not in ("standard", "exhaustive"):
            raise ValueError(f"provmark search {self.search!r}: use standard or exhaustive")

    @property
    def name(self) -> str:
        suffix = "" if self.bits == _PROVMARK_FREE_BITS else f"/{self.bits}b"
        mode = "" if self.search == "standard" else f":{self.search}"
        return f"provmark@{float(self.strength)!r}{suffix}{mode}"

    @property
    def payload_bits(self) -> int:
        return self.bits

    @property
    def family(self) -> str:
        return "provmark"

    @property
    def primary(self) -> bool:
        return (self.strength == 1.0 and self.bits == _PROVMARK_FREE_BITS and self.key is None
                and self.search == "standard")

    @property
    def detector_id(self) -> str:
        from provmark._keys import key_fingerprint, normalize_key

        return f"provmark[key {key_fingerprint(normalize_key(self.key))}]"

    @property
    def version(self) -> str:
        import provmark

        return provmark.__version__

    @property
    def description(self) -> str:
        return (f"provmark, strength {float(self.strength)!r} (adaptive on small images), "
                f"PSNR floor {self.min_psnr:g} dB; "
                f"{self.bits} random bits in the 72-bit payload (+CRC-32, RS parity)"
                + ("" if self.search == "standard" else f"; {self.search} search"))

    def payload(self, bits: np.ndarray):
        """The :class:`provmark.Payload` that carries ``bits``."""
        import provmark

        value = 0
        for b in np.asarray(bits, bool)[::-1]:
            value = (value << 1) | int(b)
        content = value & ((1 << 40) - 1)
        provider = (value >> 40) if self.bits > 40 else FIXED_PROVIDER
        return provmark.Payload(provider=provider, content_id=content, label=1)

    def bits_of(self, payload) -> np.ndarray:
        """The message bits a decoded payload stands for (inverse of :meth:`payload`)."""
        value = payload.content_id | (payload.provider << 40 if self.bits > 40 else 0)
        return np.array([(value >> i) & 1 for i in range(self.bits)], dtype=bool)

    def embed(self, rgb: np.ndarray, bits: np.ndarray, rng: np.random.Generator | None = None
              ) -> np.ndarray:
        import provmark

        return provmark.embed(rgb, self.payload(bits), key=self.key, strength=self.strength,
                              min_psnr=self.min_psnr)

    def detect(self, rgb: np.ndarray) -> Readout:
        import provmark

        det = provmark.detect(rgb, key=self.key,
                              search="exhaustive" if self.search == "exhaustive" else True)
        # p-value: the decoder's calibrated bound when a word decoded, else the pilot
        # score's Hoeffding bound over every hypothesis searched; the smaller of two
        # valid p-values is doubled (Bonferroni) to stay valid.
        z = det.sync_score
        pilot = 1.0 if z <= 0 else min(1.0, det.hypotheses * math.exp(-0.5 * z * z))
        p = min(1.0, 2.0 * min(det.false_alarm_probability, pilot))
        info = {"sync_score": round(float(z), 3), "hypotheses": int(det.hypotheses),
                "false_alarm_probability": float(det.false_alarm_probability),
                "reason": det.reason}
        bits = self.bits_of(det.payload) if det.found else None
        if det.found:
            info["payload_exact_fields"] = [det.payload.provider, det.payload.content_id,
                                            det.payload.label]
        return Readout(bits=bits, p_value=p, found=bool(det.found), info=info)

    def exact(self, readout: Readout, expected: np.ndarray) -> bool:
        """The whole payload (every field, not only the random bits) came back."""
        if not readout.found:
            return False
        want = self.payload(expected)
        got = readout.info.get("payload_exact_fields")
        return got == [want.provider, want.content_id, want.label]

    def p_value(self, readout: Readout, expected: np.ndarray) -> float:
        return 1.0 if readout.p_value is None else float(readout.p_value)


_PEER_BASES = {
    "dwtDct": ("invisible-watermark", "dwtDct"),
    "dwtDctSvd": ("invisible-watermark", "dwtDctSvd"),
    "rivaGan": ("invisible-watermark", "rivaGan"),
    "blind-watermark": ("blind-watermark", None),
}
_PEER_MODULES = {"invisible-watermark": "imwatermark", "blind-watermark": "blind_watermark"}
_PEER_DEFAULT_BITS = {"dwtDct": 48, "dwtDctSvd": 48, "rivaGan": 32, "blind-watermark": 64}


@dataclass(frozen=True)
class PeerMethod:
    """A peer package's method at a payload length (blind detection).

    Parameters
    ----------
    base : {"dwtDct", "dwtDctSvd", "rivaGan", "blind-watermark"}
    bits : int, default 0
        Payload length; 0 is the method's standard (48 as SDXL for dwtDct and
        dwtDctSvd, 32 for rivaGan, which supports nothing else, 64 for
        blind-watermark).
    """

    base: str
    bits: int = 0
    _adapter: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base not in _PEER_BASES:
            raise ValueError(f"unknown peer {self.base!r}: use one of {sorted(_PEER_BASES)}")
        bits = int(self.bits) or _PEER_DEFAULT_BITS[self.base]
        object.__setattr__(self, "bits", bits)
        from . import peers

        package, method = _PEER_BASES[self.base]
        if package == "invisible-watermark":
            adapter = peers.InvisibleWatermarkAdapter(method=method, payload_bits=bits)
        else:
            adapter = peers.BlindWatermarkAdapter(payload_bits=bits)
        object.__setattr__(self, "_adapter", adapter)

    @property
    def name(self) -> str:
        default = _PEER_DEFAULT_BITS[self.base]
        return self.base if self.bits == default else f"{self.base}/{self.bits}b"

    @property
    def payload_bits(self) -> int:
        return self.bits

    @property
    def family(self) -> str:
        return self.base

    @property
    def primary(self) -> bool:
        return self.bits == _PEER_DEFAULT_BITS[self.base]

    @property
    def detector_id(self) -> str:
        return self.name

    @property
    def version(self) -> str:
        from importlib import metadata

        package = _PEER_BASES[self.base][0]
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:  # pragma: no cover - imported, so installed
            return "?"

    @property
    def description(self) -> str:
        package, method = _PEER_BASES[self.base]
        what = f"{package} {method}" if method else package
        return f"{what} {self.version}, package defaults, {self.bits} random bits, no ECC"

    def embed(self, rgb: np.ndarray, bits: np.ndarray, rng: np.random.Generator | None = None
              ) -> np.ndarray:
        return self._adapter.embed(rgb, bits)

    def detect(self, rgb: np.ndarray) -> Readout:
        found = self._adapter.detect(rgb)
        return Readout(bits=np.asarray(found.bits, bool))

    def exact(self, readout: Readout, expected: np.ndarray) -> bool:
        return readout.bits is not None and bool(np.array_equal(readout.bits, expected))

    def p_value(self, readout: Readout, expected: np.ndarray) -> float:
        """``P(Binomial(k, 1/2) >= matching bits)``: exact on an unmarked image because
        the benchmark draws the message uniformly and independently of the image."""
        return _peer_p_value(readout, expected)


#: Named groups of method specs.
METHOD_GROUPS: dict[str, tuple[str, ...]] = {
    "provmark": ("provmark@0.5", "provmark@0.75", "provmark@1.0", "provmark@1.5",
                 "provmark@1.0/40b", "provmark@1.0/24b", "provmark@1.0:exhaustive"),
    "peers": ("dwtDct", "dwtDctSvd", "rivaGan", "blind-watermark"),
    "peers-capacity": ("dwtDct/32b", "dwtDct/96b", "dwtDctSvd/96b",
                       "blind-watermark/32b", "blind-watermark/128b"),
}
METHOD_GROUPS["all"] = (METHOD_GROUPS["provmark"] + METHOD_GROUPS["peers"]
                        + METHOD_GROUPS["peers-capacity"])

_SPEC = re.compile(r"^(?P<base>[A-Za-z-]+)(?:@(?P<strength>[0-9.]+))?(?:/(?P<bits>[0-9]+)b?)?"
                   r"(?::(?P<search>standard|exhaustive))?$")


def parse_method(spec: str) -> Method:
    """Build the method named by ``spec`` (e.g. ``provmark@1.5``, ``dwtDct/32b``).

    Raises
    ------
    ValueError
        Unknown spec (the message lists the accepted forms).
    ImportError
        A peer whose package is not installed.
    """
    m = _SPEC.match(spec.strip())
    if not m:
        raise ValueError(f"cannot read method {spec!r}: use e.g. provmark@1.0, provmark@0.5/40b, "
                         f"provmark@1.0:exhaustive, "
                         f"dwtDct, dwtDct/32b, rivaGan, blind-watermark/128b, or a group "
                         f"({', '.join(METHOD_GROUPS)})")
    base, strength, bits = m.group("base"), m.group("strength"), m.group("bits")
    if base == "provmark":
        return ProvmarkMethod(strength=float(strength or 1.0),
                              bits=int(bits or _PROVMARK_FREE_BITS),
                              search=m.group("search") or "standard")
    if m.group("search"):
        raise ValueError(f"{spec!r}: only provmark takes a search mode")
    if base in _PEER_BASES:
        if strength:
            raise ValueError(f"{spec!r}: peers take no strength (their package defaults are used)")
        return PeerMethod(base, int(bits or 0))
    raise ValueError(f"unknown method {base!r} in {spec!r}: known are provmark, "
                     f"{', '.join(_PEER_BASES)} and the groups {', '.join(METHOD_GROUPS)}")


def _expand(specs) -> list[str]:
    out: list[str] = []
    for spec in specs:
        for part in str(spec).split(","):
            part = part.strip()
            if not part:
                continue
            for s in METHOD_GROUPS.get(part, (part,)):
                if s not in out:
                    out.append(s)
    return out


def resolve_methods(specs) -> tuple[list[Method], dict[str, str]]:
    """Build the methods named by ``specs`` (names, groups, comma lists).

    Returns
    -------
    methods : list of Method
        In the order given, duplicates removed.
    skipped : dict
        Spec -> why it was skipped (a peer whose package does not import, or which
        fails to start), naming the install command.

    Raises
    ------
    ValueError
        A spec that names no method.
    """
    methods: list[Method] = []
    skipped: dict[str, str] = {}
    names: set[str] = set()
    for spec in _expand(specs):
        try:
            method = parse_method(spec)
        except ImportError as exc:
            base = spec.split("/")[0].split("@")[0]
            module = _PEER_MODULES.get(_PEER_BASES.get(base, ("",))[0], "?")
            skipped[spec] = f"{module} is not installed ({exc}): {PEER_INSTALL_HINT}"
            continue
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001  (installed but cannot start, e.g. the ONNX model)
            skipped[spec] = f"failed to start ({type(exc).__name__}: {exc}); {PEER_INSTALL_HINT}"
            continue
        if method.name not in names:
            names.add(method.name)
            methods.append(method)
    return methods, skipped
