"""C2PA Content Credentials beside the GB 45438 labels: sign a manifest, read one back.

This module owns provmark's use of C2PA (the Coalition for Content Provenance and
Authenticity's signed manifests, read by Adobe, OpenAI, Google, Meta and camera
makers' tools) through the official bindings, ``c2pa-python`` (the optional extra
``provmark[c2pa]``; nothing here needs it until a manifest is signed or read):

- :class:`C2paSigner`: the signing credentials (certificate chain and private key,
  PEM; ES256 by default), checked against the C2PA certificate profile before any
  work so that a wrong file gives a specific message. The key is never printed,
  logged or put in a message.
- :func:`sign_manifest`: signs a manifest into an encoded PNG, JPEG or WebP file with
  a ``c2pa.created`` action (digital source type ``trainedAlgorithmicMedia``), a
  ``c2pa.watermarked`` action and a ``c2pa.soft-binding`` assertion whose value is
  the watermark's payload (algorithm :data:`SOFT_BINDING_ALG`), plus a copy of the
  GB 45438 label (:data:`GB45438_ASSERTION`). :func:`provmark.label` with
  ``c2pa=`` calls it after the XMP label is written, so the manifest's hard binding
  (a hash of every byte but the manifest) covers the pixels and the XMP alike.
- :func:`read_manifest`: validates and summarises any manifest in a file
  (:class:`C2paReading`): validation state, trust, signer, claim generator,
  actions, source type, soft bindings. It never raises on file data, works
  offline (no remote manifest, OCSP or trust-list fetch), and without
  ``c2pa-python`` says "not checked" (and whether a manifest is there at all).

References: C2PA Technical Specification 2.1, sections 9.3 (soft bindings), 14
(trust model, certificate profile 14.5.1), 15 (validation), 18.9 (soft binding
assertion), 18.12 (actions); the C2PA soft-binding algorithm list
(github.com/c2pa-org/softbinding-algorithm-list), where ``io.provmark.v1`` is not
registered yet; IPTC NewsCodes digital source types.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import ProvmarkError
from ._payload import DATA_BYTES, Payload

#: Soft-binding algorithm name written into ``c2pa.soft-binding`` assertions. It is
#: provmark's own name, NOT (yet) in the C2PA soft-binding algorithm list; it will be
#: replaced by the registered name once there is one (see docs/c2pa.md).
SOFT_BINDING_ALG = "io.provmark.v1"
#: Label of the assertion that carries a copy of the GB 45438 ``AIGC`` label fields, so
#: that a manifest recovered through the soft binding brings them back.
GB45438_ASSERTION = "io.provmark.gb45438"
#: IPTC NewsCodes vocabulary of digital source types.
IPTC_DST = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_ALGORITHMIC_MEDIA = IPTC_DST + "trainedAlgorithmicMedia"
#: Source types that say "made by (or with) a generative model".
AI_SOURCE_TYPES = frozenset(IPTC_DST + n for n in (
    "trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "compositeSynthetic"))
#: Source types that say "captured from the real world" (or made by hand): they
#: contradict a GB 45438 label 1 (AI-generated).
NON_AI_SOURCE_TYPES = frozenset(IPTC_DST + n for n in (
    "digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm", "print",
    "compositeCapture", "screenCapture", "virtualRecording", "digitalCreation",
    "minorHumanEdits", "humanEdits"))
#: Extended key usages that C2PA accepts for a claim signer (C2PA 2.1, 14.5.1):
#: id-kp-emailProtection, id-kp-documentSigning, c2pa-kp-claimSigning and the
#: Microsoft C2PA signing OID that c2pa-rs also accepts.
SIGNER_EKUS = {
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.36": "documentSigning",
    "1.3.6.1.4.1.62558.2.1": "c2pa-kp-claimSigning",
    "1.3.6.1.4.1.311.76.59.1.9": "Microsoft C2PA signing",
}
#: Signing algorithm -> the key it needs (C2PA 2.1, 13.2).
ALGORITHMS = {
    "es256": "an EC P-256 key", "es384": "an EC P-384 key", "es512": "an EC P-521 key",
    "ps256": "an RSA key (2048 bits or more)", "ps384": "an RSA key (2048 bits or more)",
    "ps512": "an RSA key (2048 bits or more)", "ed25519": "an Ed25519 key",
}
#: Largest PEM file read (a certificate chain or key is a few KB).
MAX_PEM_BYTES = 1 << 20
#: Most items of each list kept in a reading (actions, soft bindings, statuses).
MAX_ITEMS = 64
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_INSTALL_HINT = "install the extra: pip install 'provmark[c2pa]'"
_UNTRUSTED = "signingCredential.untrusted"
_TRUSTED = "signingCredential.trusted"


class C2paError(ProvmarkError, ValueError):
    """Signing credentials that cannot sign, or a manifest that could not be signed;
    the message says what is wrong and what to do."""


class C2paUnavailableError(ProvmarkError, ImportError):
    """``c2pa-python`` is not installed (the extra ``provmark[c2pa]``)."""


#: Oldest c2pa-python with the Context/Settings API used here (and trust checks on).
MIN_C2PA_PYTHON = "0.29"


def _import_c2pa():
    """The ``c2pa`` module of c2pa-python, or :class:`C2paUnavailableError` (missing,
    or older than :data:`MIN_C2PA_PYTHON`)."""
    try:
        import c2pa
    except ImportError as exc:
        raise C2paUnavailableError(
            f"C2PA needs c2pa-python, which is not installed ({exc}): {_INSTALL_HINT}") from None
    if not hasattr(c2pa, "Context"):
        version = getattr(c2pa, "__version__", "?")
        raise C2paUnavailableError(
            f"c2pa-python {version} is too old (provmark needs {MIN_C2PA_PYTHON} or later): "
            f"pip install -U 'c2pa-python>={MIN_C2PA_PYTHON}'")
    return c2pa


def available() -> bool:
    """True when c2pa-python can be imported (the extra ``provmark[c2pa]``)."""
    try:
        _import_c2pa()
    except C2paUnavailableError:
        return False
    return True


# --------------------------------------------------------------------- payload


def soft_binding_value(payload: Payload) -> str:
    """The soft-binding value of ``payload`` under :data:`SOFT_BINDING_ALG`: its 9 data
    bytes (format version, label, provider, content ID) as 18 lower-case hex digits.

    Examples
    --------
    >>> soft_binding_value(Payload(provider=4242, content_id=77, label=1))
    '280084900000000268'
    """
    return payload.to_bytes().hex()


def payload_from_soft_binding(value: str) -> Payload | None:
    """The :class:`~provmark.Payload` a :data:`SOFT_BINDING_ALG` value names, or None
    when the value is not one (wrong length, not hex, unknown version)."""
    if not isinstance(value, str) or len(value) != 2 * DATA_BYTES:
        return None
    try:
        return Payload.from_bytes(bytes.fromhex(value))
    except ValueError:
        return None


def source_type_is_ai(source_type: str | None) -> bool | None:
    """True for a generative-AI digital source type, False for a captured or hand-made
    one, None when it says neither (absent, ``algorithmicMedia``, unknown)."""
    if not source_type:
        return None
    if source_type in AI_SOURCE_TYPES:
        return True
    if source_type in NON_AI_SOURCE_TYPES:
        return False
    return None


# --------------------------------------------------------------------- signer


def _read_pem(path: str | os.PathLike, what: str) -> bytes:
    p = Path(path)
    try:
        if p.is_dir():
            raise C2paError(f"{p}: is a directory, not a {what} PEM file")
        size = p.stat().st_size
        if size > MAX_PEM_BYTES:
            raise C2paError(f"{p}: {size:,} bytes is not a {what} PEM file (at most "
                            f"{MAX_PEM_BYTES:,} bytes)")
        return p.read_bytes()
    except FileNotFoundError:
        raise C2paError(f"{p}: no such file (the {what})") from None
    except OSError as exc:
        raise C2paError(f"{p}: cannot read the {what} ({exc.strerror})") from None


def _as_pem(value, what: str) -> bytes:
    if isinstance(value, str):
        value = value.encode("ascii", "replace")
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    if not isinstance(value, bytes):
        raise TypeError(f"{what} must be PEM bytes or str, not {type(value).__name__}")
    if b"-----BEGIN " not in value:
        raise C2paError(f"the {what} is not PEM (no '-----BEGIN' line); convert a DER file "
                        "with: openssl x509 -inform der -in cert.der -out cert.pem")
    return value


def _load_chain(pem: bytes):
    from cryptography import x509

    try:
        chain = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise C2paError(f"the certificate chain could not be parsed ({exc}): give the PEM "
                        "certificates, the signing (leaf) certificate first") from None
    return chain


def _load_key(pem: bytes, password: bytes | None):
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(pem, password=password)
    except TypeError:
        # The message of cryptography says whether a password is missing or unexpected.
        raise C2paError("the private key is encrypted: pass its password (key_password=) "
                        "or decrypt it (openssl pkcs8 -topk8 -nocrypt)") if password is None \
            else C2paError("the private key is not encrypted: do not pass a password") from None
    except ValueError:
        # Never echo the key's bytes or the parser's view of them.
        raise C2paError("the private key could not be read: give an unencrypted PKCS#8 "
                        "or traditional PEM private key (or its password)") from None


def _key_fits(key, algorithm: str) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if algorithm.startswith("es"):
        curves = {"es256": ec.SECP256R1, "es384": ec.SECP384R1, "es512": ec.SECP521R1}
        return isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(
            key.curve, curves[algorithm])
    if algorithm.startswith("ps"):
        return isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048
    return isinstance(key, ed25519.Ed25519PrivateKey)


def _public_bytes(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def _name_text(name) -> str:
    return name.rfc4514_string() or "(empty name)"


def _check_profile(leaf, now: _dt.datetime) -> None:
    """The leaf certificate against the C2PA certificate profile (C2PA 2.1, 14.5.1):
    each failure is a specific message, before c2pa-rs's generic "the certificate is
    invalid"."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    subject = _name_text(leaf.subject)
    if leaf.not_valid_after_utc < now:
        raise C2paError(f"the signing certificate ({subject}) expired on "
                        f"{leaf.not_valid_after_utc:%Y-%m-%d}: renew it")
    if leaf.not_valid_before_utc > now:
        raise C2paError(f"the signing certificate ({subject}) is valid only from "
                        f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: check the clock")
    ext = leaf.extensions
    try:
        if ext.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise C2paError(f"the first certificate ({subject}) is a CA certificate; the "
                            "chain must start with the signing (end-entity) certificate")
    except x509.ExtensionNotFound:
        pass
    if leaf.issuer == leaf.subject:
        raise C2paError(f"the signing certificate ({subject}) is self-signed; C2PA needs a "
                        "certificate issued by a CA (docs/c2pa.md says how to get one)")
    try:
        usage = ext.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            raise x509.ExtensionNotFound("", x509.KeyUsage.oid)
    except x509.ExtensionNotFound:
        raise C2paError(f"the signing certificate ({subject}) lacks the digitalSignature "
                        "key usage that C2PA requires") from None
    try:
        ekus = {oid.dotted_string for oid in
                ext.get_extension_for_class(x509.ExtendedKeyUsage).value}
    except x509.ExtensionNotFound:
        ekus = set()
    if ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string in ekus or not (
            ekus & SIGNER_EKUS.keys()):
        wanted = ", ".join(f"{v} ({k})" for k, v in SIGNER_EKUS.items())
        raise C2paError(f"the signing certificate ({subject}) has no extended key usage "
                        f"that C2PA accepts for signing claims: it needs one of {wanted}, "
                        "and not anyExtendedKeyUsage")


@dataclass(frozen=True)
class C2paSigner:
    """Credentials that sign C2PA manifests: a certificate chain and its private key.

    Parameters
    ----------
    certificate_chain : bytes or str
        PEM certificates, the signing (end-entity) certificate first, then its
        intermediates; the root may be left out (validators hold it as a trust anchor).
    private_key : bytes or str
        The signing certificate's private key, unencrypted PEM (use
        :meth:`from_files` with ``key_password`` for an encrypted file). Never shown in
        ``repr``, logs or messages.
    algorithm : str, default "es256"
        ``es256``, ``es384``, ``es512``, ``ps256``, ``ps384``, ``ps512`` or ``ed25519``;
        must fit the key (ES256: an EC P-256 key).
    timestamp_url : str or None, default None
        An RFC 3161 time-stamp authority contacted at signing, so that the signature
        stays valid after the certificate expires. None (the default) signs offline,
        without a time-stamp.

    Raises
    ------
    C2paError
        The chain or key cannot be parsed, the key is not the certificate's, the
        algorithm does not fit the key, or the certificate breaks the C2PA profile
        (expired, self-signed, a CA, no digitalSignature usage, no accepted EKU).
    C2paUnavailableError
        ``cryptography`` is missing (it comes with ``provmark[c2pa]``).

    Examples
    --------
    >>> from provmark.c2pa import C2paSigner
    >>> signer = C2paSigner.from_files("chain.pem", "signer.key")  # doctest: +SKIP
    >>> signer  # doctest: +SKIP
    C2paSigner(signer='CN=ACME image service,O=ACME', algorithm='es256', certificates=2)
    """

    certificate_chain: bytes
    private_key: bytes = field(repr=False)
    algorithm: str = "es256"
    timestamp_url: str | None = None
    _subject: str = field(default="", init=False, repr=False, compare=False)
    _issuer: str = field(default="", init=False, repr=False, compare=False)
    _count: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            import cryptography  # noqa: F401
        except ImportError:
            raise C2paUnavailableError(f"checking C2PA credentials needs cryptography: "
                                       f"{_INSTALL_HINT}") from None
        chain_pem = _as_pem(self.certificate_chain, "certificate chain")
        key_pem = _as_pem(self.private_key, "private key")
        alg = str(self.algorithm).lower()
        if alg not in ALGORITHMS:
            raise C2paError(f"unknown C2PA signing algorithm {self.algorithm!r}: use one of "
                            f"{', '.join(ALGORITHMS)}")
        if self.timestamp_url is not None and not str(self.timestamp_url).startswith(
                ("http://", "https://")):
            raise C2paError(f"timestamp_url {self.timestamp_url!r} is not an http(s) URL")
        chain = _load_chain(chain_pem)
        key = _load_key(key_pem, None)
        leaf = chain[0]
        if _public_bytes(key.public_key()) != _public_bytes(leaf.public_key()):
            raise C2paError(f"the private key does not belong to the signing certificate "
                            f"({_name_text(leaf.subject)}): give the key of the chain's "
                            "first certificate")
        if not _key_fits(key, alg):
            raise C2paError(f"algorithm {alg} needs {ALGORITHMS[alg]}, and this key is not "
                            "one: pick the algorithm that fits the key")
        _check_profile(leaf, _dt.datetime.now(_dt.timezone.utc))
        object.__setattr__(self, "certificate_chain", chain_pem)
        object.__setattr__(self, "private_key", key_pem)
        object.__setattr__(self, "algorithm", alg)
        object.__setattr__(self, "_subject", _name_text(leaf.subject))
        object.__setattr__(self, "_issuer", _name_text(leaf.issuer))
        object.__setattr__(self, "_count", len(chain))

    @classmethod
    def from_files(cls, certificate_chain: str | os.PathLike, private_key: str | os.PathLike,
                   *, algorithm: str = "es256", timestamp_url: str | None = None,
                   key_password: bytes | str | None = None) -> C2paSigner:
        """Credentials from a PEM certificate-chain file and a PEM private-key file.

        ``key_password`` decrypts an encrypted key in memory (the decrypted key is
        never written anywhere). Raises :class:`C2paError` naming the file when one
        is missing, unreadable or not what it should be.
        """
        chain = _read_pem(certificate_chain, "certificate chain")
        key = _read_pem(private_key, "private key")
        if key_password is not None:
            from cryptography.hazmat.primitives import serialization

            pw = key_password.encode() if isinstance(key_password, str) else bytes(key_password)
            key = _load_key(_as_pem(key, "private key"), pw).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption())
        try:
            return cls(chain, key, algorithm=algorithm, timestamp_url=timestamp_url)
        except C2paError as exc:
            raise C2paError(f"{certificate_chain} / {private_key}: {exc}") from None

    @property
    def subject(self) -> str:
        """The signing certificate's subject (RFC 4514)."""
        return self._subject

    @property
    def issuer(self) -> str:
        """The signing certificate's issuer (RFC 4514)."""
        return self._issuer

    def __repr__(self) -> str:
        return (f"C2paSigner(signer={self._subject!r}, algorithm={self.algorithm!r}, "
                f"certificates={self._count})")

    __str__ = __repr__


# --------------------------------------------------------------------- signing


def build_manifest(*, payload: Payload | None = None, label=None,
                   title: str | None = None) -> dict:
    """The manifest definition :func:`sign_manifest` signs (c2pa-python's JSON form).

    ``c2pa.actions.v2`` holds ``c2pa.created`` (digital source type
    ``trainedAlgorithmicMedia``) and, with a payload, ``c2pa.watermarked``; with a
    payload there is also a ``c2pa.soft-binding`` assertion (alg
    :data:`SOFT_BINDING_ALG`, one block over the whole image, value
    :func:`soft_binding_value`); with a GB 45438 ``label`` (an
    :class:`~provmark.metadata.AIGCLabel`) a :data:`GB45438_ASSERTION` assertion
    holds its fields.
    """
    from . import __version__

    created = {"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
               "description": "AI-generated image (GB 45438 label 1)"}
    actions = [created]
    assertions = []
    if payload is not None:
        value = soft_binding_value(payload)
        actions.append({
            "action": "c2pa.watermarked",
            "description": "provmark invisible watermark (GB 45438 implicit label): "
                           f"soft binding {SOFT_BINDING_ALG} {value}",
            "softwareAgent": {"name": "provmark", "version": __version__}})
        assertions.append({"label": "c2pa.soft-binding", "data": {
            "alg": SOFT_BINDING_ALG, "blocks": [{"scope": {}, "value": value}],
            "name": "provmark watermark payload (format version, label, provider, "
                    "content ID)"}})
    assertions.insert(0, {"label": "c2pa.actions.v2", "data": {"actions": actions}})
    if label is not None:
        assertions.append({"label": GB45438_ASSERTION, "data": {"AIGC": label.to_dict()}})
    manifest = {"claim_generator_info": [{"name": "provmark", "version": __version__}],
                "assertions": assertions}
    if title:
        manifest["title"] = str(title)
    return manifest


def _signing_settings() -> dict:
    # Offline: no remote manifest or OCSP fetch; the signed result is verified at once
    # (hashes and signature) but not against a trust list, which is the reader's job.
    return {"verify": {"verify_after_sign": True, "verify_trust": False,
                       "remote_manifest_fetch": False, "ocsp_fetch": False},
            "builder": {"thumbnail": {"enabled": False}}}


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def sign_manifest(data: bytes, signer: C2paSigner, *, payload: Payload | None = None,
                  label=None, title: str | None = None) -> bytes:
    """Sign a C2PA manifest into an encoded image and return the new file's bytes.

    Parameters
    ----------
    data : bytes
        A PNG, JPEG or WebP file, with everything it should carry already written
        (the GB 45438 XMP label, EXIF, ICC): the manifest's hard binding hashes every
        byte except the manifest itself, so a change after signing invalidates it.
    signer : C2paSigner
        The credentials.
    payload : Payload, optional
        The watermark's payload: adds the ``c2pa.watermarked`` action and the
        ``c2pa.soft-binding`` assertion. Its label must be 1 (AI-generated): the
        manifest records the creation of AI-generated content.
    label : AIGCLabel, optional
        The GB 45438 metadata label, copied into the :data:`GB45438_ASSERTION` assertion.
    title : str, optional
        The manifest's title (e.g. the file name).

    Returns
    -------
    bytes
        The signed file. ``data`` is not modified.

    Raises
    ------
    C2paUnavailableError
        c2pa-python is not installed.
    C2paError
        The format is not PNG, JPEG or WebP, the payload's label is not 1, or
        c2pa-python refused to sign (its message is included).

    Examples
    --------
    >>> signed = sign_manifest(png_bytes, signer, payload=Payload(4242, 7))  # doctest: +SKIP
    >>> read_manifest(signed).state  # doctest: +SKIP
    'valid'
    """
    if not isinstance(signer, C2paSigner):
        raise TypeError(f"signer must be a provmark.c2pa.C2paSigner, not {type(signer).__name__}")
    check_payload(payload)
    fmt = _sniff(bytes(data[:16]))
    if fmt is None:
        raise C2paError("a C2PA manifest can be signed into PNG, JPEG or WebP only")
    c2pa = _import_c2pa()
    manifest = build_manifest(payload=payload, label=label, title=title)
    out = io.BytesIO()
    try:
        ctx = c2pa.Context.from_dict(_signing_settings())
        info = c2pa.C2paSignerInfo(signer.algorithm, signer.certificate_chain,
                                   signer.private_key, signer.timestamp_url)
        native = c2pa.Signer.from_info(info)
        try:
            builder = c2pa.Builder(manifest, context=ctx)
            builder.sign(native, _MIME[fmt], io.BytesIO(bytes(data)), out)
        finally:
            native.close()
    except c2pa.C2paError as exc:
        raise C2paError(f"c2pa-python could not sign the manifest ({_clean(exc)}); the "
                        "certificate must follow the C2PA profile (docs/c2pa.md)") from None
    return out.getvalue()


def check_signing(payload: Payload | None) -> None:
    """Refuse early what :func:`sign_manifest` would refuse after the work:
    c2pa-python missing (:class:`C2paUnavailableError`), a payload label a creation
    manifest cannot state (:class:`C2paError`)."""
    _import_c2pa()
    check_payload(payload)


def check_payload(payload: Payload | None) -> None:
    """Refuse a payload a C2PA creation manifest cannot describe (label 2 or 3)."""
    if payload is None:
        return
    if not isinstance(payload, Payload):
        raise TypeError(f"payload must be a provmark.Payload, not {type(payload).__name__}")
    if payload.label != 1:
        raise C2paError(
            f"payload label {payload.label} ({payload.label_meaning}) is a propagation "
            "platform's judgement, but the C2PA manifest records the creation of "
            "AI-generated content (c2pa.created, trainedAlgorithmicMedia): sign only "
            "label 1, or leave c2pa out")


def _clean(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__


# --------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ValidationStatus:
    """One validation status of c2pa-rs: ``code`` (C2PA 2.1, 15.2.2), ``explanation``
    and the ``url`` of the part it is about."""

    code: str
    explanation: str = ""
    url: str = ""

    def to_dict(self) -> dict:
        return {"code": self.code, "explanation": self.explanation, "url": self.url}


@dataclass(frozen=True)
class ManifestAction:
    """One action of the active manifest's actions assertion."""

    action: str
    digital_source_type: str | None = None
    description: str | None = None
    software_agent: str | None = None

    def to_dict(self) -> dict:
        return {"action": self.action, "digital_source_type": self.digital_source_type,
                "description": self.description, "software_agent": self.software_agent}


@dataclass(frozen=True)
class SoftBinding:
    """One soft-binding block: the algorithm and its value (for
    :data:`SOFT_BINDING_ALG`, :attr:`payload` is the watermark payload it names)."""

    alg: str
    value: str

    @property
    def payload(self) -> Payload | None:
        return payload_from_soft_binding(self.value) if self.alg == SOFT_BINDING_ALG else None

    def to_dict(self) -> dict:
        p = self.payload
        return {"alg": self.alg, "value": self.value, "payload": None if p is None else {
            "provider": p.provider, "content_id": p.content_id, "label": p.label}}


#: States of :attr:`C2paReading.state`.
STATES = ("trusted", "valid", "invalid", "absent", "not checked")


@dataclass(frozen=True)
class C2paReading:
    """What :func:`read_manifest` found.

    Attributes
    ----------
    state : str
        ``"trusted"`` (valid, and the signer chains to a given trust anchor),
        ``"valid"`` (signature, hashes and bindings hold; the signer is not trusted or
        no trust anchors were given), ``"invalid"`` (a validation failure: the file
        changed after signing, a broken signature or assertion, or C2PA data that
        cannot be read), ``"absent"`` (no manifest) or ``"not checked"``
        (c2pa-python is not installed; :attr:`present` says whether a manifest is there).
    present : bool or None
        A C2PA manifest store is embedded (None: could not tell).
    validation_state : str or None
        c2pa-rs's own word: ``"Trusted"``, ``"Valid"`` or ``"Invalid"``.
    trust : str
        ``"trusted"``, ``"untrusted"`` (not on the given anchors), ``"no anchors"``
        (none were given, so the signer could not be trusted) or ``"not checked"``.
    signer, signer_issuer, signature_algorithm, signed_at, certificate_serial : str or None
        From the signature: the certificate's common name and issuer organisation,
        the algorithm, the time-stamp (None without a time-stamp authority) and the
        serial number.
    claim_generator : str or None
        The software that made the claim, "name version".
    title, manifest_label : str or None
    manifest_count, ingredient_count : int
    actions : tuple of ManifestAction
    digital_source_type : str or None
        Of the first action that states one (the ``c2pa.created`` one).
    soft_bindings : tuple of SoftBinding
    gb45438_label : dict or None
        The GB 45438 label fields copied into the manifest (:data:`GB45438_ASSERTION`).
    failures, informational : tuple of ValidationStatus
        The active manifest's failure and informational statuses.
    notes : tuple of str
        Why it was not checked, what could not be read, remote references.
    """

    state: str
    present: bool | None = None
    validation_state: str | None = None
    trust: str = "not checked"
    signer: str | None = None
    signer_issuer: str | None = None
    signature_algorithm: str | None = None
    signed_at: str | None = None
    certificate_serial: str | None = None
    claim_generator: str | None = None
    title: str | None = None
    manifest_label: str | None = None
    manifest_count: int = 0
    ingredient_count: int = 0
    actions: tuple[ManifestAction, ...] = ()
    digital_source_type: str | None = None
    soft_bindings: tuple[SoftBinding, ...] = ()
    gb45438_label: dict | None = None
    failures: tuple[ValidationStatus, ...] = ()
    informational: tuple[ValidationStatus, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def checked(self) -> bool:
        return self.state != "not checked"

    @property
    def found(self) -> bool:
        """A manifest was read (valid or not)."""
        return self.state in ("trusted", "valid", "invalid") and bool(self.present)

    @property
    def provmark_payload(self) -> Payload | None:
        """The payload named by the first :data:`SOFT_BINDING_ALG` soft binding."""
        for sb in self.soft_bindings:
            if sb.payload is not None:
                return sb.payload
        return None

    @property
    def failure_codes(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.failures)

    @property
    def integrity_failures(self) -> tuple[ValidationStatus, ...]:
        """Failures other than an untrusted signer: what makes the manifest invalid."""
        return tuple(f for f in self.failures if f.code != _UNTRUSTED)

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "state": self.state, "present": self.present,
            "validation_state": self.validation_state, "trust": self.trust,
            "signer": self.signer, "signer_issuer": self.signer_issuer,
            "signature_algorithm": self.signature_algorithm, "signed_at": self.signed_at,
            "certificate_serial": self.certificate_serial,
            "claim_generator": self.claim_generator, "title": self.title,
            "manifest_label": self.manifest_label, "manifest_count": self.manifest_count,
            "ingredient_count": self.ingredient_count,
            "actions": [a.to_dict() for a in self.actions],
            "digital_source_type": self.digital_source_type,
            "soft_bindings": [s.to_dict() for s in self.soft_bindings],
            "gb45438_label": self.gb45438_label,
            "failures": [f.to_dict() for f in self.failures],
            "informational": [f.to_dict() for f in self.informational],
            "notes": list(self.notes),
        }


def sniff_manifest(data: bytes) -> bool | None:
    """Whether an encoded PNG, JPEG or WebP embeds a C2PA manifest store, from its
    container structure alone (a PNG ``caBX`` chunk, a JPEG APP11 JUMBF segment
    labelled ``c2pa``, a WebP ``C2PA`` chunk); None for other data. Bounded: stops at
    the pixel data."""
    fmt = _sniff(bytes(data[:16]))
    if fmt == "PNG":
        at = 8
        while at + 8 <= len(data):
            size = int.from_bytes(data[at:at + 4], "big")
            kind = bytes(data[at + 4:at + 8])
            if kind == b"caBX":
                return True
            if kind == b"IEND":
                break
            at += 12 + size
        return False
    if fmt == "JPEG":
        at = 2
        while at + 4 <= len(data) and data[at] == 0xFF:
            marker = data[at + 1]
            if marker == 0xFF:  # fill byte
                at += 1
                continue
            if marker in (0xD9, 0xDA):  # EOI, SOS: the headers are over
                break
            size = int.from_bytes(data[at + 2:at + 4], "big")
            if marker == 0xEB and bytes(data[at + 4:at + 6]) == b"JP" and \
                    b"c2pa" in bytes(data[at + 4:at + 4 + min(size, 64)]):
                return True
            at += 2 + size
        return False
    if fmt == "WEBP":
        at = 12
        while at + 8 <= len(data):
            kind = bytes(data[at:at + 4])
            if kind == b"C2PA":
                return True
            at += 8 + int.from_bytes(data[at + 4:at + 8], "little")
            at += at & 1
        return False
    return None


def load_trust_anchors(anchors) -> str | None:
    """Trust anchors as the PEM text c2pa-rs takes: ``anchors`` is PEM bytes or text,
    a path to a PEM file, or None. Raises :class:`C2paError` when the file is
    missing or holds no PEM certificate."""
    if anchors is None:
        return None
    if isinstance(anchors, os.PathLike) or (isinstance(anchors, str)
                                           and "-----BEGIN" not in anchors):
        pem = _read_pem(anchors, "trust anchors")
        where = f"{anchors}: "
    else:
        pem = anchors.encode("ascii", "replace") if isinstance(anchors, str) else bytes(anchors)
        where = ""
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise C2paError(f"{where}the trust anchors hold no PEM certificate "
                        "('-----BEGIN CERTIFICATE-----')")
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return pem.decode("ascii", "replace")
    _load_chain(pem)  # a clear message for a damaged file
    return pem.decode("ascii", "replace")


def _reading_settings(anchors_pem: str | None) -> dict:
    settings = {"verify": {"verify_after_reading": True, "verify_trust": True,
                           "remote_manifest_fetch": False, "ocsp_fetch": False}}
    if anchors_pem:
        settings["trust"] = {"trust_anchors": anchors_pem}
    return settings


def read_manifest(data: bytes, *, trust_anchors=None) -> C2paReading:
    """Validate and summarise the C2PA manifest embedded in an encoded image.

    Parameters
    ----------
    data : bytes
        A PNG, JPEG or WebP file.
    trust_anchors : bytes, str, path or None
        PEM root certificates whose signers count as trusted (e.g. the C2PA trust
        list, or a provider's own CA). None: the signer can be valid, never trusted.

    Returns
    -------
    C2paReading
        Never raises on the file's content: unreadable C2PA data is an ``"invalid"``
        reading with a note. Offline: remote manifests, OCSP responses and trust
        lists are never fetched.

    Raises
    ------
    C2paError
        ``trust_anchors`` names a missing file or holds no certificate (checked first).
    """
    anchors_pem = load_trust_anchors(trust_anchors)
    data = bytes(data)
    present = sniff_manifest(data)
    try:
        c2pa = _import_c2pa()
    except C2paUnavailableError as exc:
        note = ("C2PA not checked (c2pa-python not installed: "
                f"{_INSTALL_HINT.removeprefix('install the extra: ')})"
                if "not installed" in str(exc) else f"C2PA not checked ({exc})")
        if present:
            note += "; the file embeds a C2PA manifest that was not validated"
        return C2paReading("not checked", present=present, notes=(note,))
    fmt = _sniff(data[:16])
    if fmt is None:
        return C2paReading("absent", present=None,
                           notes=("not a PNG, JPEG or WebP file: C2PA not read",))
    try:
        ctx = c2pa.Context.from_dict(_reading_settings(anchors_pem))
        reader = c2pa.Reader.try_create(_MIME[fmt], io.BytesIO(data), context=ctx)
        if reader is None:
            return C2paReading("absent", present=False)
        try:
            store = json.loads(reader.json())
            remote = None if reader.is_embedded() else reader.get_remote_url()
        finally:
            reader.close()
    except Exception as exc:  # noqa: BLE001 - a forensic reading never raises on file data
        name = type(exc).__name__.lstrip("_")
        if "RemoteManifest" in name:
            return C2paReading("absent", present=False, notes=(
                f"the file refers to a remote C2PA manifest, not fetched (offline): "
                f"{_clean(exc)}",))
        return C2paReading("invalid", present=True if present is None else present,
                           validation_state="Invalid",
                           notes=(f"the C2PA data could not be read ({name}: {_clean(exc)})",))
    reading = _summarise(store, anchors_given=anchors_pem is not None)
    if remote:
        reading = _replace(reading, notes=reading.notes + (
            f"manifest read from a remote URL {remote}",))
    return reading


def _replace(reading: C2paReading, **changes) -> C2paReading:
    import dataclasses

    return dataclasses.replace(reading, **changes)


def _text(value, limit: int = 512) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "\u2026"


def _generator(manifest: dict) -> str | None:
    info = manifest.get("claim_generator_info")
    if isinstance(info, dict):
        info = [info]
    if isinstance(info, list) and info and isinstance(info[0], dict):
        parts = [str(info[0].get("name", "")), str(info[0].get("version", ""))]
        return _text(" ".join(p for p in parts if p)) or None
    return _text(manifest.get("claim_generator"))


def _statuses(items) -> tuple[ValidationStatus, ...]:
    out = []
    for item in (items or [])[:MAX_ITEMS]:
        if isinstance(item, dict) and item.get("code"):
            out.append(ValidationStatus(str(item["code"]), _text(item.get("explanation")) or "",
                                        _text(item.get("url")) or ""))
    return tuple(out)


def _agent(value) -> str | None:
    if isinstance(value, dict):
        return _text(" ".join(str(value.get(k, "")) for k in ("name", "version")).strip()) or None
    return _text(value)


def _assertion_entries(assertions: list, label_prefix: str, list_key: str):
    """``(data, entry)`` for each dict in the ``list_key`` list of the data of every
    assertion whose label starts with ``label_prefix``: at most :data:`MAX_ITEMS`
    in all, however many a manifest lists."""
    count = 0
    for a in assertions:
        if not str(a.get("label", "")).startswith(label_prefix):
            continue
        data = a.get("data") or {}
        for entry in data.get(list_key) or []:
            if not isinstance(entry, dict):
                continue
            if count >= MAX_ITEMS:
                return
            count += 1
            yield data, entry


def _actions(assertions: list) -> tuple[ManifestAction, ...]:
    out = []
    for _, act in _assertion_entries(assertions, "c2pa.actions", "actions"):
        params = act.get("parameters") if isinstance(act.get("parameters"), dict) else {}
        out.append(ManifestAction(
            action=_text(act.get("action")) or "?",
            digital_source_type=_text(act.get("digitalSourceType")),
            description=_text(act.get("description") or params.get("description")),
            software_agent=_agent(act.get("softwareAgent"))))
    return tuple(out)


def _soft_bindings(assertions: list) -> tuple[SoftBinding, ...]:
    return tuple(SoftBinding(_text(data.get("alg")) or "?", _text(block.get("value")) or "")
                 for data, block in _assertion_entries(assertions, "c2pa.soft-binding",
                                                       "blocks"))


def _summarise(store: dict, *, anchors_given: bool) -> C2paReading:
    manifests = store.get("manifests") or {}
    active_label = store.get("active_manifest")
    manifest = manifests.get(active_label) or {}
    assertions = [a for a in (manifest.get("assertions") or []) if isinstance(a, dict)]
    results = store.get("validation_results") or {}
    active = results.get("activeManifest") or {}
    failures = _statuses(active.get("failure"))
    if not active and store.get("validation_status"):  # older form: failures only
        failures = _statuses(store.get("validation_status"))
    vstate = store.get("validation_state")
    codes = {f.code for f in failures}
    passed = {f.code for f in _statuses(active.get("success"))}
    if vstate == "Trusted":
        state = "trusted"
    elif vstate == "Valid" or (vstate is None and not (codes - {_UNTRUSTED})):
        state = "valid"
    else:
        state = "invalid"
    # Trust is its own finding: an invalid manifest may still have a trusted signer;
    # c2pa-rs does not always get as far as the trust check (then "not checked").
    if vstate == "Trusted" or _TRUSTED in passed:
        trust = "trusted"
    elif _UNTRUSTED in codes:
        trust = "untrusted" if anchors_given else "no anchors"
    else:
        trust = "not checked"
    sig = manifest.get("signature_info") or {}
    actions = _actions(assertions)
    dst = next((a.digital_source_type for a in actions if a.digital_source_type), None)
    gb = next((a.get("data") for a in assertions if a.get("label") == GB45438_ASSERTION), None)
    if isinstance(gb, dict) and isinstance(gb.get("AIGC"), dict):
        gb = gb["AIGC"]
    notes = []
    for delta in (results.get("ingredientDeltas") or [])[:MAX_ITEMS]:
        for f in ((delta or {}).get("validationDeltas") or {}).get("failure") or []:
            if isinstance(f, dict) and f.get("code"):
                notes.append(f"ingredient {delta.get('ingredientAssertionURI', '?')}: "
                             f"{f['code']}")
    return C2paReading(
        state=state, present=True, validation_state=_text(vstate), trust=trust,
        signer=_text(sig.get("common_name")), signer_issuer=_text(sig.get("issuer")),
        signature_algorithm=_text(sig.get("alg")), signed_at=_text(sig.get("time")),
        certificate_serial=_text(sig.get("cert_serial_number")),
        claim_generator=_generator(manifest), title=_text(manifest.get("title")),
        manifest_label=_text(active_label), manifest_count=len(manifests),
        ingredient_count=len(manifest.get("ingredients") or []), actions=actions,
        digital_source_type=dst, soft_bindings=_soft_bindings(assertions),
        gb45438_label={str(k): _text(v) for k, v in list(gb.items())[:16]}
        if isinstance(gb, dict) else None,
        failures=failures, informational=_statuses(active.get("informational")),
        notes=tuple(notes[:MAX_ITEMS]))


def describe_failures(reading: C2paReading) -> str:
    """One line naming the failures that make a manifest invalid, with what each
    means for an analyst (the data-hash mismatch: the bytes changed after signing)."""
    fails = reading.integrity_failures
    if not fails:
        return "; ".join(reading.notes) or "the manifest is invalid"
    parts = []
    for f in fails[:6]:
        what = {
            "assertion.dataHash.mismatch": "the file's bytes (pixels or metadata) changed "
                                           "after signing",
            "assertion.boxesHash.mismatch": "the file's boxes changed after signing",
            "claimSignature.mismatch": "the claim signature does not verify",
            "assertion.hashedURI.mismatch": "an assertion was altered after signing",
            "signingCredential.expired": "the certificate had expired when signing",
            "signingCredential.invalid": "the signing certificate is not valid for C2PA",
        }.get(f.code)
        parts.append(f"{f.code}" + (f" ({what})" if what else
                                    (f" ({f.explanation})" if f.explanation else "")))
    more = len(fails) - 6
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


# --------------------------------------------------------------------- command line


def add_signing_arguments(parser) -> None:
    """Add ``--c2pa-cert``, ``--c2pa-key`` and ``--c2pa-alg`` to an argparse parser
    (the ``label`` subcommand); :func:`signer_from_args` turns them into a signer."""
    group = parser.add_argument_group(
        "C2PA Content Credentials (needs provmark[c2pa])",
        "sign a C2PA manifest into the output beside the GB 45438 labels: c2pa.created "
        "(trainedAlgorithmicMedia), c2pa.watermarked and a soft binding "
        f"({SOFT_BINDING_ALG}) to the watermark payload. Offline: no time-stamp")
    group.add_argument("--c2pa-cert", metavar="CHAIN.pem",
                       help="PEM certificate chain, the signing certificate first")
    group.add_argument("--c2pa-key", metavar="KEY.pem",
                       help="PEM private key of the signing certificate (unencrypted; keep "
                            "the file readable by you only)")
    group.add_argument("--c2pa-alg", default="es256", choices=sorted(ALGORITHMS),
                       help="signing algorithm (default es256)")


def signer_from_args(args) -> C2paSigner | None:
    """The :class:`C2paSigner` of ``--c2pa-cert``/``--c2pa-key``, or None when neither
    is given. Raises :class:`C2paError` when only one is given or the files are bad,
    and :class:`C2paUnavailableError` when the extra is missing."""
    cert, key = getattr(args, "c2pa_cert", None), getattr(args, "c2pa_key", None)
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise C2paError("--c2pa-cert and --c2pa-key go together: give both")
    if not available():
        _import_c2pa()
    return C2paSigner.from_files(cert, key, algorithm=getattr(args, "c2pa_alg", "es256"))


def add_trust_arguments(parser) -> None:
    """Add ``--c2pa-trust`` to an argparse parser (the ``inspect`` subcommand)."""
    parser.add_argument("--c2pa-trust", metavar="ANCHORS.pem",
                        help="PEM root certificates whose C2PA signers count as trusted "
                             "(e.g. the C2PA trust list or a provider's CA); without it a "
                             "valid manifest is reported valid but not trusted")


def trust_from_args(args) -> str | None:
    """The trust anchors of ``--c2pa-trust`` as PEM text (None when not given); raises
    :class:`C2paError` for a missing or empty file."""
    path = getattr(args, "c2pa_trust", None)
    return None if path is None else load_trust_anchors(Path(path))


def report_lines(report) -> list[str]:
    """The C2PA lines of ``provmark inspect``'s text output for an
    :class:`~provmark.InspectionReport`."""
    r = getattr(report, "c2pa", None)
    if r is None:
        return []
    if r.state == "not checked":
        return [f"  c2pa:      {r.notes[0] if r.notes else 'not checked'}"]
    if r.state == "absent":
        line = "  c2pa:      absent" + (f" ({r.notes[0]})" if r.notes else "")
        sb = getattr(report, "soft_binding", None)
        if sb is not None:
            line += (f"; the watermark names soft binding {sb.alg} = {sb.value} (the key to "
                     "look the signed manifest up in a manifest repository)")
        return [line]
    head = (f"  c2pa:      {r.state} (c2pa-rs: {r.validation_state}; trust: {r.trust}) "
            f"signer={r.signer or '?'}"
            + (f" ({r.signer_issuer})" if r.signer_issuer else "")
            + f"; generator={r.claim_generator or '?'}")
    lines = [head]
    if r.actions:
        lines.append("             actions: " + ", ".join(
            a.action + (f" [{a.digital_source_type.removeprefix(IPTC_DST)}]"
                        if a.digital_source_type else "") for a in r.actions))
    for sb in r.soft_bindings:
        lines.append(f"             soft binding: {sb.alg} = {sb.value}")
    if r.state == "invalid":
        lines.append(f"             invalid: {describe_failures(r)}")
    return lines
