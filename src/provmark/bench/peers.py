"""Adapters that put the public peer watermarking packages behind one interface.

(Moved here from ``benchmarks/peers.py``, which re-exports this module.)

This module owns the baselines that provmark is benchmarked against:
``invisible-watermark`` (imports as ``imwatermark``; methods ``dwtDct``,
``dwtDctSvd`` and ``rivaGan``, the first being what Stable Diffusion XL ships)
and ``blind-watermark`` (imports as ``blind_watermark``). Every adapter takes and
returns RGB ``uint8`` arrays of shape ``(H, W, 3)``, carries a fixed number of
payload bits, and detects *blind*: it is given nothing but the (possibly
attacked) image and the payload length it was built with -- no original image,
no original shape. The peers are optional: :func:`available_peers` returns the
adapters whose packages import here and, for the others, the reason they don't.

Install with ``make peers``, or by hand (the peers are installed ``--no-deps``
so that their ``opencv-python`` requirement does not land beside
``opencv-python-headless``)::

    pip install torch==2.13.0
    pip install --no-deps invisible-watermark==0.2.0 blind-watermark==0.4.4
    pip install onnxruntime

References
----------
.. [1] ShieldMnt, "invisible-watermark" 0.2.0,
       https://github.com/ShieldMnt/invisible-watermark
.. [2] K. A. Zhang, L. Xu, A. Cuesta-Infante, K. Veeramachaneni, "Robust
       Invisible Video Watermarking with Attention", arXiv:1909.01285, 2019
       (RivaGAN).
.. [3] guofei9987, "blind_watermark" 0.4.4,
       https://github.com/guofei9987/blind_watermark
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import warnings
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "BlindWatermarkAdapter",
    "InvisibleWatermarkAdapter",
    "Method",
    "PeerDetection",
    "available_peers",
    "bit_accuracy",
]

#: Payload length that Stable Diffusion XL embeds with ``dwtDct``.
SDXL_BITS = 48
#: The only payload length the bundled RivaGAN ONNX model supports.
RIVAGAN_BITS = 32
_IMWATERMARK_METHODS = ("dwtDct", "dwtDctSvd", "rivaGan")
#: invisible-watermark refuses images with fewer pixels than this.
_IMWATERMARK_MIN_PIXELS = 256 * 256


@dataclasses.dataclass(frozen=True)
class PeerDetection:
    """What a peer read from an image.

    Attributes
    ----------
    bits : ndarray of bool, shape (payload_bits,)
        The payload bits by the peer's own decision rule.
    scores : ndarray of float64, shape (payload_bits,), or None
        Soft evidence in ``[0, 1]`` (above 0.5 leans to 1) where the peer's
        public path exposes it; ``None`` where it only returns hard bits.
    """

    bits: np.ndarray
    scores: np.ndarray | None = None


@runtime_checkable
class Method(Protocol):
    """A blind watermarking method carrying ``payload_bits`` bits."""

    @property
    def name(self) -> str:
        """Peer and method, e.g. ``"invisible-watermark/dwtDct"``."""
        ...

    @property
    def payload_bits(self) -> int:
        """Number of bits :meth:`embed` takes and :meth:`detect` returns."""
        ...

    def embed(self, image: np.ndarray, bits: np.ndarray) -> np.ndarray:
        """Return a watermarked copy of an RGB uint8 ``(H, W, 3)`` image."""
        ...

    def detect(self, image: np.ndarray) -> PeerDetection:
        """Read ``payload_bits`` bits from an RGB uint8 image, blind."""
        ...


def bit_accuracy(found: np.ndarray, expected: np.ndarray) -> float:
    """Fraction of bits of ``found`` equal to ``expected`` (both 1-D)."""
    found = np.asarray(found, dtype=bool)
    expected = np.asarray(expected, dtype=bool)
    if found.shape != expected.shape:
        raise ValueError(f"bit arrays differ in shape: {found.shape} vs {expected.shape}")
    return float(np.mean(found == expected))


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected an RGB uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}: "
            "convert with skimage.util.img_as_ubyte and drop any alpha channel"
        )
    return image


def _check_bits(bits: np.ndarray, payload_bits: int, name: str) -> np.ndarray:
    bits = np.asarray(bits)
    if bits.shape != (payload_bits,):
        raise ValueError(
            f"{name} carries {payload_bits} bits, got an array of shape {bits.shape}: "
            f"pass a 1-D array of {payload_bits} bools"
        )
    if bits.dtype != bool and not np.isin(bits, (0, 1)).all():
        raise ValueError(f"bits must be 0/1 or bool, got values {np.unique(bits)[:5]}")
    return bits.astype(bool)


def _rgb_to_bgr(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[:, :, ::-1])


@dataclasses.dataclass(frozen=True)
class InvisibleWatermarkAdapter:
    """invisible-watermark [1]_ (``imwatermark``) with one of its three methods.

    Parameters
    ----------
    method : {"dwtDct", "dwtDctSvd", "rivaGan"}
        ``dwtDct`` is the package default and what SDXL uses; ``rivaGan`` runs
        the RivaGAN [2]_ ONNX model bundled in the package (needs onnxruntime).
    payload_bits : int, default 0
        0 picks the method's standard length: 48 (as SDXL) for the frequency
        methods, 32 for ``rivaGan``, which supports nothing else.

    Notes
    -----
    The package works on OpenCV BGR arrays; this adapter converts from and to
    RGB. Its package defaults are kept (``scale=36`` on the U channel only,
    4x4 blocks). It refuses images under 256x256 pixels.
    """

    method: str = "dwtDct"
    payload_bits: int = 0

    def __post_init__(self) -> None:
        if self.method not in _IMWATERMARK_METHODS:
            raise ValueError(
                f"unknown invisible-watermark method {self.method!r}: use one of {_IMWATERMARK_METHODS}"
            )
        default = RIVAGAN_BITS if self.method == "rivaGan" else SDXL_BITS
        bits = int(self.payload_bits) or default
        if self.method == "rivaGan" and bits != RIVAGAN_BITS:
            raise ValueError(f"rivaGan's bundled model carries exactly {RIVAGAN_BITS} bits, not {bits}")
        if bits < 1:
            raise ValueError(f"payload_bits must be positive, got {bits}")
        object.__setattr__(self, "payload_bits", bits)
        import imwatermark  # fail at construction, not at first use

        if self.method == "rivaGan":
            # Loads the two .onnx files shipped inside the package; no network.
            imwatermark.WatermarkEncoder.loadModel()

    @property
    def name(self) -> str:
        return f"invisible-watermark/{self.method}"

    def _check_size(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if h * w < _IMWATERMARK_MIN_PIXELS:
            raise ValueError(
                f"image is {w}x{h}; invisible-watermark needs at least 256*256 pixels"
            )

    def embed(self, image: np.ndarray, bits: np.ndarray) -> np.ndarray:
        """Return a watermarked RGB uint8 copy of ``image`` carrying ``bits``."""
        from imwatermark import WatermarkEncoder

        image = _check_image(image)
        bits = _check_bits(bits, self.payload_bits, self.name)
        self._check_size(image)
        encoder = WatermarkEncoder()
        encoder.set_watermark("bits", bits.tolist())
        out_bgr = encoder.encode(_rgb_to_bgr(image), self.method)
        return np.ascontiguousarray(np.asarray(out_bgr, dtype=np.uint8)[:, :, ::-1])

    def detect(self, image: np.ndarray) -> PeerDetection:
        """Read the payload from ``image`` knowing only its bit length."""
        from imwatermark import WatermarkDecoder

        image = _check_image(image)
        self._check_size(image)
        decoder = WatermarkDecoder("bits", self.payload_bits)
        bits = decoder.decode(_rgb_to_bgr(image), self.method)
        return PeerDetection(bits=np.asarray(bits).astype(bool))


@dataclasses.dataclass(frozen=True)
class BlindWatermarkAdapter:
    """blind-watermark [3]_ (DWT-DCT-SVD, block-shuffled by ``password_img``).

    Parameters
    ----------
    payload_bits : int, default 64
        Bits embedded, repeated over the 4x4 blocks of the half-resolution
        approximation band of all three YUV channels.
    password_img, password_wm : int, default 1
        The package's two keys (block shuffling and bit permutation).

    Notes
    -----
    Embedding and extraction use the package's in-memory path
    (``WaterMark.read_img(img=...)``, ``extract(embed_img=...)``), so no
    temporary files are written. Detection is told only ``payload_bits`` (the
    package's ``wm_shape``); the package's crop/resize recovery, which needs the
    original shape or image, is deliberately not used. ``bits`` follow the
    package's ``mode='bit'`` rule (a two-class 1-D k-means on the averaged
    votes), ``scores`` are those averaged votes. The float image the package
    returns is rounded to uint8 the way ``cv2.imwrite`` would.
    Importing the package calls ``multiprocessing.set_start_method('fork')``.
    """

    payload_bits: int = 64
    password_img: int = 1
    password_wm: int = 1

    def __post_init__(self) -> None:
        if int(self.payload_bits) < 2:
            raise ValueError(f"payload_bits must be at least 2, got {self.payload_bits}")
        object.__setattr__(self, "payload_bits", int(self.payload_bits))
        _import_blind_watermark()

    @property
    def name(self) -> str:
        return "blind-watermark"

    def _check_size(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        blocks = ((h + 1) // 2 // 4) * ((w + 1) // 2 // 4)
        if blocks <= self.payload_bits:
            raise ValueError(
                f"image is {w}x{h}: blind-watermark has {blocks} blocks there and needs more "
                f"than payload_bits={self.payload_bits}; use a larger image or fewer bits"
            )

    def _watermark(self):
        bw = _import_blind_watermark()
        return bw.WaterMark(password_wm=self.password_wm, password_img=self.password_img)

    def embed(self, image: np.ndarray, bits: np.ndarray) -> np.ndarray:
        """Return a watermarked RGB uint8 copy of ``image`` carrying ``bits``."""
        image = _check_image(image)
        bits = _check_bits(bits, self.payload_bits, self.name)
        self._check_size(image)
        wm = self._watermark()
        wm.read_img(img=_rgb_to_bgr(image))
        wm.read_wm(bits.copy(), mode="bit")  # the package shuffles its argument in place
        out_bgr = wm.embed()  # float32, clipped to [0, 255], not rounded
        out_bgr = np.clip(np.rint(out_bgr), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(out_bgr[:, :, ::-1])

    def detect(self, image: np.ndarray) -> PeerDetection:
        """Read the payload from ``image`` knowing only its bit length."""
        from blind_watermark.bwm_core import one_dim_kmeans

        image = _check_image(image)
        self._check_size(image)
        wm = self._watermark()
        # Same steps as ``WaterMark.extract(mode='bit')``, keeping the soft votes:
        # average per bit, undo the password_wm permutation, then k-means.
        wm.wm_size = self.payload_bits
        votes = wm.bwm_core.extract(img=_rgb_to_bgr(image), wm_shape=self.payload_bits)
        scores = wm.extract_decrypt(wm_avg=votes)
        with warnings.catch_warnings():
            # A degenerate vote vector (all equal) makes the package's k-means
            # average an empty class; it then returns all zeros, which is fine.
            warnings.simplefilter("ignore", RuntimeWarning)
            bits = one_dim_kmeans(scores)
        return PeerDetection(bits=np.asarray(bits, dtype=bool), scores=np.asarray(scores, dtype=np.float64))


def _import_blind_watermark():
    # blind_watermark/pool.py calls multiprocessing.set_start_method('fork') at
    # import, which raises once anything (Numba's threading layer, for one) has
    # fixed the start method. It only needs fork on Linux, the default: tolerate it.
    import multiprocessing

    original = multiprocessing.set_start_method

    def tolerant(method, force=False):
        try:
            original(method, force=force)
        except RuntimeError:
            pass

    multiprocessing.set_start_method = tolerant
    try:
        bw = importlib.import_module("blind_watermark")
    finally:
        multiprocessing.set_start_method = original
    bw.bw_notes.close()  # the package prints a banner on the first WaterMark()
    return bw


def available_peers() -> dict[str, Method | str]:
    """Instantiate every peer adapter that can run here.

    Returns
    -------
    dict
        Maps each peer's name to its adapter (a :class:`Method`), or to a
        string saying why it is unavailable and how to install it.

    Examples
    --------
    >>> peers = available_peers()
    >>> sorted(peers)  # doctest: +NORMALIZE_WHITESPACE
    ['blind-watermark', 'invisible-watermark/dwtDct',
     'invisible-watermark/dwtDctSvd', 'invisible-watermark/rivaGan']
    """
    hint = {
        "imwatermark": "pip install torch==2.13.0 && pip install --no-deps invisible-watermark==0.2.0",
        "blind_watermark": "pip install --no-deps blind-watermark==0.4.4",
    }
    makers: list[tuple[str, str, Callable[[], Method]]] = [
        (f"invisible-watermark/{m}", "imwatermark", functools.partial(InvisibleWatermarkAdapter, method=m))
        for m in _IMWATERMARK_METHODS
    ]
    makers.append(("blind-watermark", "blind_watermark", BlindWatermarkAdapter))
    peers: dict[str, Method | str] = {}
    for name, module, make in makers:
        try:
            peers[name] = make()
        except ImportError as exc:
            extra = " and pip install onnxruntime" if "onnxruntime" in str(exc) else ""
            peers[name] = (f"{module} does not import ({exc}): run `make peers`, or "
                           f"{hint[module]}{extra}")
        except Exception as exc:  # noqa: BLE001  (imports but cannot start, e.g. a model won't load)
            peers[name] = f"{name} failed to start: {type(exc).__name__}: {exc}"
    return peers
