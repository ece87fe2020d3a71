"""provmark: a robust, keyed provenance watermark for AI-generated images.

The implicit (watermark) label of GB 45438-2025: :func:`embed` hides a
:class:`Payload` (generation label, provider code, content ID) in an image's pixels;
:func:`detect` reads it back after compression, colour grading, blur and occlusion
and returns a :class:`Detection` with a calibrated false-alarm probability.
:func:`check_embeddable` says beforehand whether an image can carry the mark.
:func:`label` writes all three GB 45438 layers at once (visible label, watermark,
signed metadata) and :func:`inspect` reads them back into a forensic verdict; the
metadata and visible-label formats live in :mod:`provmark.metadata` and
:mod:`provmark.explicit`. :func:`embed_bytes`, :func:`label_bytes` and
:func:`detect_bytes` do the same on encoded files (PNG, JPEG, WebP bytes in, bytes
out, keeping EXIF, ICC profile and XMP); :func:`inspect` takes bytes too.
:mod:`provmark.c2pa` signs and reads C2PA Content Credentials bound to the watermark
(extra ``provmark[c2pa]``); :mod:`provmark.integrations` holds the diffusers
watermarker and the Ray engine; :mod:`provmark.server` the HTTP service. Every
refusal provmark raises on purpose derives from :class:`ProvmarkError`.
"""

from ._bytes import detect_bytes, embed_bytes, label_bytes
from ._check import Embeddability, check_embeddable
from ._detect import Detection, detect
from ._embed import EmbedError, embed
from ._errors import ProvmarkError
from ._image import ImageError
from ._inspect import InspectionReport, inspect
from ._keys import PUBLIC_KEY
from ._label import Labelled, label, write_labelled
from ._payload import Payload

__version__ = "0.1.0"

__all__ = [
    "embed",
    "detect",
    "label",
    "Labelled",
    "write_labelled",
    "embed_bytes",
    "label_bytes",
    "detect_bytes",
    "inspect",
    "InspectionReport",
    "Payload",
    "Detection",
    "check_embeddable",
    "Embeddability",
    "ProvmarkError",
    "ImageError",
    "EmbedError",
    "PUBLIC_KEY",
    "__version__",
]
