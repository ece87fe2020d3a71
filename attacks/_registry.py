"""The attack registry: one :class:`Attack` record per attack, with its family,
default parameters and a severity sweep, looked up by name.

Benchmarks iterate over :data:`ATTACKS` (or :func:`names` of a family) and run
each record's ``grid`` from mild to strong; :func:`apply` runs one attack with its
defaults plus keyword overrides. Records are immutable: ``params`` and each grid
entry are read-only mappings, so no caller can change another's defaults.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Union

import numpy as np
from numpy.typing import NDArray

from . import _chains, _colour, _compression, _filtering, _geometry, _occlusion
from ._common import AttackUnavailableError, RNGLike, check_image, make_rng

__all__ = ["FAMILIES", "Attack", "ATTACKS", "get", "names", "families", "apply"]

#: The attack families, in the order benchmarks report them.
FAMILIES: tuple[str, ...] = ("compression", "geometry", "filtering", "colour", "occlusion", "chain")


def _keyword_parameters(func: Callable[..., Any]) -> tuple[str, ...]:
    sig = inspect.signature(func)
    return tuple(
        p.name
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "rng"
    )


@dataclass(frozen=True, eq=False)
class Attack:
    """A registered attack: the function, its family, defaults and severity sweep.

    Parameters
    ----------
    name : str
        Registry key, equal to the function's name.
    func : callable
        ``func(image, *, <params>, rng=None) -> ndarray``.
    family : str
        One of :data:`FAMILIES`.
    description : str
        The real-world operation the attack stands for, in one line.
    params : mapping
        Default keyword parameters (stored as a read-only mapping).
    grid : tuple of mappings
        Severity sweep from mild to strong; each entry is a set of keyword
        overrides applied on top of ``params`` (read-only mappings).
    severity_key : str
        The parameter the grid varies; every grid entry sets it.
    available : bool
        False if the attack cannot run here (e.g. no AVIF codec).
    unavailable_reason : str
        Why it is unavailable and what to install; empty when available.
    stochastic : bool
        True if the attack with its default parameters draws from ``rng``
        (so repeated runs with different seeds differ).
    """

    name: str
    func: Callable[..., NDArray[np.uint8]]
    family: str
    description: str
    params: Mapping[str, Any]
    grid: tuple[Mapping[str, Any], ...]
    severity_key: str
    available: bool = True
    unavailable_reason: str = ""
    stochastic: bool = False

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(
                f"attack {self.name!r}: family must be one of {FAMILIES}; got {self.family!r}"
            )
        accepted = _keyword_parameters(self.func)
        params = dict(self.params)
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise ValueError(
                f"attack {self.name!r}: default params {unknown} are not keyword parameters "
                f"of {self.func.__name__}"
            )
        if self.severity_key not in params:
            raise ValueError(
                f"attack {self.name!r}: severity_key {self.severity_key!r} must be one of its params"
            )
        grid = tuple(MappingProxyType(dict(entry)) for entry in self.grid)
        if not grid:
            raise ValueError(f"attack {self.name!r}: the severity grid is empty")
        for entry in grid:
            if self.severity_key not in entry or not set(entry) <= set(accepted):
                raise ValueError(
                    f"attack {self.name!r}: grid entry {dict(entry)} must set "
                    f"{self.severity_key!r} and only keyword parameters"
                )
        if not self.available and not self.unavailable_reason:
            raise ValueError(
                f"attack {self.name!r}: an unavailable attack needs an unavailable_reason"
            )
        object.__setattr__(self, "params", MappingProxyType(params))
        object.__setattr__(self, "grid", grid)

    @property
    def parameters(self) -> tuple[str, ...]:
        """Every keyword parameter the attack accepts (besides ``rng``)."""
        return _keyword_parameters(self.func)

    def __call__(
        self, image: NDArray[np.uint8], *, rng: RNGLike = None, **overrides: Any
    ) -> NDArray[np.uint8]:
        """Run the attack with its default ``params`` updated by ``overrides``."""
        if not self.available:
            raise AttackUnavailableError(
                f"attack {self.name!r} is unavailable: {self.unavailable_reason}"
            )
        unknown = sorted(set(overrides) - set(self.parameters))
        if unknown:
            raise ValueError(
                f"attack {self.name!r} has no parameter(s) {unknown}; "
                f"it accepts {list(self.parameters)} and rng"
            )
        return self.func(image, rng=rng, **{**self.params, **overrides})


def _q(*values: Any, key: str) -> tuple[dict[str, Any], ...]:
    return tuple({key: v} for v in values)


_QUALITY_GRID = _q(90, 75, 50, 30, 20, key="quality")

_RECORDS = (
    # -- compression ---------------------------------------------------------------
    Attack("jpeg", _compression.jpeg, "compression",
           "JPEG re-save by OpenCV/libjpeg, 4:2:0 chroma (uploads, editors, screenshots)",
           {"quality": 75}, _QUALITY_GRID, "quality"),
    Attack("jpeg_pillow", _compression.jpeg_pillow, "compression",
           "JPEG re-save by Pillow with a choice of chroma subsampling (4:2:0 or 4:4:4)",
           {"quality": 75, "subsampling": "4:2:0"}, _QUALITY_GRID, "quality"),
    Attack("webp", _compression.webp, "compression",
           "lossy WebP conversion (CDNs, browsers, platforms serving WebP)",
           {"quality": 75}, _QUALITY_GRID, "quality"),
    Attack("avif", _compression.avif, "compression",
           "lossy AVIF (AV1 intra) conversion by modern CDNs and image services",
           {"quality": 75, "speed": 6}, _QUALITY_GRID, "quality",
           available=_compression.AVIF_AVAILABLE,
           unavailable_reason=_compression.AVIF_UNAVAILABLE_REASON),
    Attack("png_quantize", _compression.png_quantize, "compression",
           "reduction to a colour palette, as in PNG-8/GIF exports and PNG optimisers",
           {"colours": 64, "dither": True}, _q(128, 64, 32, 16, 8, key="colours"), "colours"),
    # -- geometry ------------------------------------------------------------------
    Attack("crop", _geometry.crop, "geometry",
           "cropping a window (reframing, cutting out the subject) at a random offset",
           {"area": 0.5, "position": "random"}, _q(0.9, 0.75, 0.5, 0.25, key="area"), "area",
           stochastic=True),
    Attack("resize", _geometry.resize, "geometry",
           "rescaling (thumbnails, size limits, zoom); grid ordered by information loss",
           {"scale": 0.5, "interpolation": "bilinear"}, _q(2.0, 1.5, 0.75, 0.5, key="scale"), "scale"),
    Attack("resize_down_up", _geometry.resize_down_up, "geometry",
           "a trip through a low-resolution copy and back to the original size",
           {"scale": 0.5, "interpolation": "bilinear"},
           _q(0.75, 0.5, 0.35, 0.25, key="scale"), "scale"),
    Attack("rotate", _geometry.rotate, "geometry",
           "straightening or tilting, cropped to the largest valid inner rectangle",
           {"angle": 5.0, "crop": True}, _q(1.0, 2.0, 5.0, 10.0, key="angle"), "angle"),
    Attack("flip", _geometry.flip, "geometry",
           "mirroring (mirrored selfies, flipped re-posts)",
           {"direction": "horizontal"},
           _q("horizontal", "vertical", "both", key="direction"), "direction"),
    Attack("perspective", _geometry.perspective, "geometry",
           "off-axis photo of a screen or print: random corner jitter (keystone)",
           {"jitter": 0.05}, _q(0.02, 0.05, 0.1, key="jitter"), "jitter", stochastic=True),
    # -- filtering -----------------------------------------------------------------
    Attack("gaussian_blur", _filtering.gaussian_blur, "filtering",
           "defocus or soft-focus filter (Gaussian low-pass)",
           {"sigma": 1.0}, _q(0.5, 1.0, 1.5, 2.0, 3.0, key="sigma"), "sigma"),
    Attack("median_blur", _filtering.median_blur, "filtering",
           "median denoising / despeckle filter",
           {"ksize": 3}, _q(3, 5, 7, key="ksize"), "ksize"),
    Attack("box_blur", _filtering.box_blur, "filtering",
           "mean (box) blur",
           {"ksize": 3}, _q(3, 5, 7, key="ksize"), "ksize"),
    Attack("sharpen", _filtering.sharpen, "filtering",
           "unsharp-mask sharpening as applied by phones, editors and platforms",
           {"amount": 1.0, "sigma": 1.0}, _q(0.5, 1.0, 2.0, key="amount"), "amount"),
    Attack("gaussian_noise", _filtering.gaussian_noise, "filtering",
           "additive Gaussian noise (sensor noise, grain filters)",
           {"sigma": 5.0}, _q(2.0, 5.0, 10.0, 20.0, key="sigma"), "sigma", stochastic=True),
    Attack("salt_pepper", _filtering.salt_pepper, "filtering",
           "impulse noise (dead pixels, bit errors, dust on a scan)",
           {"fraction": 0.01}, _q(0.001, 0.01, 0.05, key="fraction"), "fraction", stochastic=True),
    # -- colour --------------------------------------------------------------------
    Attack("brightness", _colour.brightness, "colour",
           "brightness/exposure slider (multiplies RGB)",
           {"factor": 1.2}, _q(0.9, 1.1, 0.8, 1.2, 0.6, 1.4, key="factor"), "factor"),
    Attack("contrast", _colour.contrast, "colour",
           "contrast slider about the mean luma (as Pillow's ImageEnhance.Contrast)",
           {"factor": 0.8}, _q(0.8, 1.2, 0.5, 1.5, key="factor"), "factor"),
    Attack("gamma", _colour.gamma, "colour",
           "gamma / levels adjustment",
           {"gamma": 1.4}, _q(0.9, 1.1, 0.7, 1.4, key="gamma"), "gamma"),
    Attack("hue", _colour.hue, "colour",
           "hue rotation in HSV (hue slider, colour-cast filters)",
           {"shift": 20.0}, _q(10.0, -10.0, 20.0, -20.0, key="shift"), "shift"),
    Attack("saturation", _colour.saturation, "colour",
           "saturation slider about the luma (as Pillow's ImageEnhance.Color)",
           {"factor": 1.5}, _q(1.5, 0.5, 2.0, 0.0, key="factor"), "factor"),
    Attack("grayscale", _colour.grayscale, "colour",
           "black-and-white conversion, returned as three equal channels",
           {"weights": "bt601"}, _q("bt601", "bt709", "average", key="weights"), "weights"),
    Attack("colour_temperature", _colour.colour_temperature, "colour",
           "white-balance change: warmer (more red, less blue) or cooler",
           {"warmth": 0.1}, _q(0.05, -0.05, 0.1, -0.1, 0.2, -0.2, key="warmth"), "warmth"),
    Attack("curves", _colour.curves, "colour",
           "S-curve tone grading (curves tool, 'cinematic' looks)",
           {"strength": 0.5}, _q(0.25, 0.5, 0.75, 1.0, key="strength"), "strength"),
    # -- occlusion -----------------------------------------------------------------
    Attack("occlude", _occlusion.occlude, "occlusion",
           "a sticker, caption box, privacy blur or scribble over a rectangle",
           {"area": 0.25, "position": "random", "fill": "flat"},
           _q(0.1, 0.25, 0.4, key="area"), "area", stochastic=True),
    Attack("inpaint", _occlusion.inpaint, "occlusion",
           "object removal / content-aware fill of a rectangle (OpenCV inpainting)",
           {"area": 0.1, "position": "random", "method": "telea"},
           _q(0.1, 0.25, 0.4, key="area"), "area", stochastic=True),
    Attack("paste_patch", _occlusion.paste_patch, "occlusion",
           "collage or splice: foreign content pasted over a rectangle",
           {"area": 0.25, "position": "random"}, _q(0.1, 0.25, 0.4, key="area"), "area",
           stochastic=True),
    # -- chains --------------------------------------------------------------------
    Attack("screenshot", _chains.screenshot, "chain",
           "screenshot of the image displayed 1280 px wide, edges cut, saved as JPEG 80",
           {"width": 1280, "border": 8, "quality": 80}, _q(90, 80, 70, 60, key="quality"), "quality"),
    Attack("social_media", _chains.social_media, "chain",
           "social-media upload: long side limited to 1080 px, mild sharpening, JPEG 75",
           {"long_side": 1080, "quality": 75, "sharpen_amount": 0.3},
           _q(85, 75, 65, 55, key="quality"), "quality"),
    Attack("combined", _chains.combined, "chain",
           "combined benchmark attack: centre crop to 71% of each side, brightness 0.5, JPEG 60",
           {"quality": 60, "crop_side": 0.71, "brightness_factor": 0.5},
           _q(80, 60, 40, key="quality"), "quality"),
)

_ATTACKS: dict[str, Attack] = {}
for _record in _RECORDS:
    if _record.name in _ATTACKS:  # pragma: no cover - guards edits of the table above
        raise RuntimeError(f"attack {_record.name!r} is registered twice")
    _ATTACKS[_record.name] = _record

#: Read-only mapping from attack name to its :class:`Attack` record.
ATTACKS: Mapping[str, Attack] = MappingProxyType(_ATTACKS)


def get(name: str) -> Attack:
    """Return the :class:`Attack` registered under ``name``.

    Raises
    ------
    KeyError
        If no attack has that name (the message suggests close names).
    """
    try:
        return _ATTACKS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_ATTACKS), n=3)
        if close:
            hint = f"; did you mean {', '.join(map(repr, close))}?"
        else:
            hint = f"; known attacks: {', '.join(_ATTACKS)}"
        raise KeyError(f"no attack named {name!r}{hint}") from None


def families() -> tuple[str, ...]:
    """The attack families, in reporting order."""
    return FAMILIES


def names(family: str | None = None, *, available_only: bool = False) -> tuple[str, ...]:
    """Names of the registered attacks, optionally of one family or only those available here."""
    if family is not None and family not in FAMILIES:
        raise ValueError(
            f"family must be one of {', '.join(map(repr, FAMILIES))} or None; got {family!r}"
        )
    return tuple(
        a.name
        for a in _ATTACKS.values()
        if (family is None or a.family == family) and (a.available or not available_only)
    )


def apply(
    name: str, image: NDArray[np.uint8], rng: RNGLike = None, **overrides: Any
) -> NDArray[np.uint8]:
    """Run the attack ``name`` on ``image`` with its defaults updated by ``overrides``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((32, 48, 3), 200, dtype=np.uint8)
    >>> apply("crop", img, rng=1, area=0.25).shape
    (16, 24, 3)
    """
    return get(name)(image, rng=rng, **overrides)


# -- chains of registered attacks (here, not in _chains: it looks attacks up by name) --

Step = Union[str, Any, tuple[Any, Mapping[str, Any]]]


def chain(
    image: NDArray[np.uint8], steps: Sequence[Step], *, rng: RNGLike = None
) -> NDArray[np.uint8]:
    """Apply registered attacks one after the other.

    Each step is an attack name (its registry defaults are used), an
    :class:`Attack`, or a ``(name_or_attack, overrides)`` pair whose ``overrides``
    dict replaces some default parameters. Each step gets its own generator,
    seeded from ``rng`` in order, so a step's randomness does not depend on how
    much randomness the earlier steps consumed.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), dtype uint8
        RGB image.
    steps : sequence
        The attacks, in order; an empty sequence returns a copy.
    rng : numpy.random.Generator, int or None, optional
        Seed or generator from which every step's generator is derived.

    Returns
    -------
    ndarray, shape (h, w, 3), dtype uint8
        A new array.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((64, 64, 3), 100, dtype=np.uint8)
    >>> out = chain(img, [("crop", {"area": 0.25, "position": "centre"}),
    ...                   ("jpeg", {"quality": 50})], rng=0)
    >>> out.shape
    (32, 32, 3)
    """
    out = check_image(image)
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence):
        raise ValueError(
            f"steps must be a list of attack names or (name, overrides) pairs; got {steps!r}"
        )
    resolved: list[tuple[Attack, dict[str, Any]]] = []
    for i, step in enumerate(steps):
        overrides: Mapping[str, Any] = {}
        target = step
        if isinstance(step, tuple):
            if len(step) != 2 or not isinstance(step[1], Mapping):
                raise ValueError(
                    f"step {i} must be a name, an Attack or a (name, overrides-dict) pair; "
                    f"got {step!r}"
                )
            target, overrides = step
        if isinstance(target, str):
            attack = get(target)
        elif isinstance(target, Attack):
            attack = target
        else:
            raise ValueError(
                f"step {i} must be a name, an Attack or a (name, overrides-dict) pair; got {step!r}"
            )
        resolved.append((attack, dict(overrides)))
    if not resolved:
        return out.copy()
    seeds = make_rng(rng).integers(0, 2**63 - 1, size=len(resolved), dtype=np.int64)
    for (attack, overrides), seed in zip(resolved, seeds):
        out = attack(out, rng=np.random.default_rng(int(seed)), **overrides)
    return out
