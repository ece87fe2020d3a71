"""provmark in diffusers pipelines: a drop-in SDXL watermarker, and marking for any pipeline.

diffusers' SDXL pipelines (text-to-image, img2img, inpainting, ControlNet, PAG, ...) call
``self.watermark.apply_watermark(images)`` on the VAE's output, an NCHW float tensor in
[-1, 1], just before ``VaeImageProcessor.postprocess`` turns it into uint8 PIL images or
arrays. :class:`ProvmarkWatermarker` honours that contract, so

>>> pipe.watermark = ProvmarkWatermarker(Payload(provider=4242, content_id=1))  # doctest: +SKIP

replaces the built-in invisible-watermark ``dwtDct`` mark (48 bits, no error correction)
with a provmark payload per image. For pipelines without that hook (Stable Diffusion
1.x/2.x, Flux, ...) :func:`mark_images` marks the PIL images a pipeline returns.

Why the mark survives the pipeline's conversion: the watermarker first converts the
tensor to uint8 exactly as the pipeline would (``denormalize`` in the tensor's dtype,
``float()``, ``* 255``, ``round()``), marks those pixels with :func:`provmark.embed`,
and returns for each marked grey level ``u`` the value ``2 u / 255 - 1`` in the input's
dtype, which that conversion maps back to exactly ``u`` (checked for each dtype, on
all 256 levels, when it is first used; float16 and bfloat16 included). So the
pipeline's PIL output *is* the library's marked image, byte for byte, and decodes like
any image marked by :func:`provmark.embed`.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Union

import numpy as np

try:
    import torch
    from diffusers.image_processor import VaeImageProcessor
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "provmark.integrations.diffusers needs torch and diffusers: install torch (the CPU "
        "or CUDA build you use) and then `pip install 'provmark[diffusers]'`") from exc

from .._embed import embed
from .._image import ImageError
from .._payload import Payload

__all__ = ["ProvmarkWatermarker", "mark_images", "tensor_to_uint8", "uint8_to_tensor"]

#: Where the payload of each image comes from: a first :class:`~provmark.Payload`
#: whose content ID counts up by one per image, or a callable given the image's
#: running index (0, 1, 2, ... over the watermarker's lifetime) returning its payload.
PayloadSource = Union[Payload, Callable[[int], Payload]]

_ON_ERROR = ("raise", "warn")

_levels_lock = threading.Lock()
_levels: dict[torch.dtype, torch.Tensor] = {}


def tensor_to_uint8(images: torch.Tensor) -> np.ndarray:
    """The uint8 pixels an SDXL pipeline makes of a [-1, 1] NCHW tensor, as NHWC.

    The arithmetic of ``VaeImageProcessor.postprocess(images, "pil")``: its own
    ``denormalize`` in the tensor's dtype and on its device, then ``float()``,
    ``* 255`` and round half to even (``numpy_to_pil``'s ``(x * 255).round()``), so
    what this returns is what the pipeline's PIL images would hold. The last steps
    run in torch on the tensor's device (the same IEEE float32 operations as
    NumPy's), so only uint8 pixels are copied to the host.
    """
    unit = VaeImageProcessor.denormalize(images.detach()).float()
    pixels = (unit * 255).round_().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def _level_values(dtype: torch.dtype) -> torch.Tensor:
    """The 256 values of ``dtype`` that the pipeline's conversion maps to grey levels 0..255."""
    with _levels_lock:
        values = _levels.get(dtype)
        if values is None:
            levels = np.arange(256)
            values = torch.from_numpy(2.0 * levels / 255.0 - 1.0).to(dtype)
            round_trip = tensor_to_uint8(values.reshape(1, 1, 1, 256)).ravel()
            if not np.array_equal(round_trip, levels):
                raise TypeError(
                    f"tensors of dtype {dtype} cannot hold the 256 grey levels exactly, so a "
                    "mark would not survive the pipeline's conversion to uint8: run the VAE "
                    "decode in float16, bfloat16 or float32")
            _levels[dtype] = values
        return values


#: Integer types as wide as each float dtype: the lookup copies bit patterns.
_SAME_WIDTH = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def uint8_to_tensor(pixels: np.ndarray, *, dtype: torch.dtype,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """NHWC uint8 pixels as an NCHW tensor in [-1, 1] that :func:`tensor_to_uint8`
    (the pipeline's conversion) maps back to exactly ``pixels``."""
    # A NumPy lookup of the values' bit patterns: exact for every float dtype
    # (bfloat16 has no NumPy type), no conversion pass, and 3x faster than indexing
    # a tensor (which needs int64 indices). The uint8 pixels are put in NCHW order
    # first: moving 1-byte values is cheaper than moving the looked-up ones.
    values = _level_values(dtype)
    bits = values.view(_SAME_WIDTH[values.element_size()]).numpy()
    nchw = torch.from_numpy(np.asarray(pixels, dtype=np.uint8)).permute(0, 3, 1, 2)
    looked_up = torch.from_numpy(bits[nchw.contiguous().numpy()]).view(dtype)
    return looked_up.to(device)


def _payload_function(payloads: PayloadSource) -> Callable[[int], Payload]:
    if isinstance(payloads, Payload):
        first = payloads
        return lambda index: Payload(first.provider, first.content_id + index, first.label)
    if callable(payloads):
        return payloads
    raise TypeError(
        "payloads must be a provmark.Payload (the first image's; the content ID counts up "
        f"by one per image) or a callable index -> Payload, not {type(payloads).__name__}")


class ProvmarkWatermarker:
    """A provmark watermarker for diffusers pipelines, one payload per image.

    Set it as an SDXL pipeline's ``watermark`` attribute (``pipe.watermark =
    ProvmarkWatermarker(...)``) and every image the pipeline returns carries its own
    payload; or call :meth:`mark_images` on the images of any pipeline.

    Parameters
    ----------
    payloads : Payload or callable
        A :class:`~provmark.Payload`: the first image gets it, each next image the
        same provider and label with the content ID one higher (a counter that runs
        on across calls). Or a callable taking the image's running index (0, 1, 2,
        ... over this watermarker's lifetime, across calls and threads) and
        returning its :class:`~provmark.Payload`.
    key : bytes or str or None, optional
        The provider's key; ``None`` is the public key (anyone can read the label).
    strength, min_psnr, adapt
        As in :func:`provmark.embed`.
    on_error : {"raise", "warn"}, default "raise"
        What to do with an image that cannot carry the mark (smaller than 256x256,
        flat or saturated): raise :class:`provmark.ImageError` naming its index in
        the batch (nothing is returned unmarked silently), or warn
        (``RuntimeWarning``), return that image unchanged, and record ``None`` as its
        payload in :attr:`last_payloads`. Its index (its content ID) is used up
        either way.

    Attributes
    ----------
    last_payloads : tuple of (Payload or None)
        The payload written into each image of the last call, in batch order: log
        it next to the images.

    Notes
    -----
    ``apply_watermark`` returns a tensor of the input's shape, dtype and device whose
    values lie in [-1, 1]; after the pipeline's postprocessing its pixels equal
    ``provmark.embed`` of the pixels the pipeline would have returned unmarked. The
    marking runs on the CPU, on the tensor copied from the device: 32-39 ms of
    one core for a 1024x1024 image on this project's shared test machine, 13-19 ms of
    it the mark itself (``docs/scale.md``), beside seconds of denoising.
    Images at least 256x256 only: diffusers' own watermarker leaves smaller images
    unmarked silently, this one says so (``on_error``).

    Examples
    --------
    >>> from provmark import Payload
    >>> from provmark.integrations.diffusers import ProvmarkWatermarker
    >>> pipe.watermark = ProvmarkWatermarker(Payload(provider=4242, content_id=1),
    ...                                      key=secret)            # doctest: +SKIP
    >>> images = pipe(prompt, num_images_per_prompt=4).images      # doctest: +SKIP
    >>> pipe.watermark.last_payloads                                # doctest: +SKIP
    """

    def __init__(self, payloads: PayloadSource, *, key: bytes | str | None = None,
                 strength: float = 1.0, min_psnr: float = 40.0, adapt: bool = True,
                 on_error: str = "raise") -> None:
        if on_error not in _ON_ERROR:
            raise ValueError(f"on_error={on_error!r}: use 'raise' or 'warn'")
        self._payload_of = _payload_function(payloads)
        self._embed_options = {"key": key, "strength": strength, "min_psnr": min_psnr,
                               "adapt": adapt}
        self.on_error = on_error
        self.last_payloads: tuple[Payload | None, ...] = ()
        self._next_index = 0
        self._lock = threading.Lock()

    @property
    def next_index(self) -> int:
        """The running index the next image will get (how many images were issued)."""
        return self._next_index

    def _reserve(self, count: int) -> range:
        with self._lock:
            start = self._next_index
            self._next_index += count
        return range(start, start + count)

    def _payload(self, index: int) -> Payload:
        payload = self._payload_of(index)
        if not isinstance(payload, Payload):
            raise TypeError(f"the payload callable returned {type(payload).__name__} for "
                            f"image index {index}; it must return a provmark.Payload")
        return payload

    def _mark_batch(self, images: Sequence) -> list:
        """Mark each image (HxWx3 uint8 array or PIL image); returns the same types."""
        marked, payloads = [], []
        for position, index in enumerate(self._reserve(len(images))):
            image = images[position]
            payload = self._payload(index)
            try:
                marked.append(embed(image, payload, **self._embed_options))
                payloads.append(payload)
            except ImageError as exc:
                message = f"image {position} of the batch cannot be marked: {exc}"
                if self.on_error == "raise":
                    raise type(exc)(message) from exc
                warnings.warn(message + "; it is returned unmarked", RuntimeWarning,
                              stacklevel=3)
                marked.append(image)
                payloads.append(None)
        self.last_payloads = tuple(payloads)
        return marked

    def apply_watermark(self, images: torch.Tensor) -> torch.Tensor:
        """Mark a batch the way SDXL pipelines call it, before their postprocessing.

        Parameters
        ----------
        images : torch.Tensor
            ``(N, 3, H, W)`` floating tensor in [-1, 1] (values outside are clipped
            as the pipeline clips them), on any device, any float dtype that holds
            256 grey levels (float16, bfloat16, float32, float64).

        Returns
        -------
        torch.Tensor
            Same shape, dtype and device, values in [-1, 1]. The pipeline's
            conversion to uint8 gives exactly ``provmark.embed`` of the pixels it
            would have given for ``images``; image ``i`` carries ``last_payloads[i]``.
        """
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a torch.Tensor, not {type(images).__name__}")
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"images has shape {tuple(images.shape)}; expected (N, 3, H, W), an RGB "
                "batch in [-1, 1] as SDXL pipelines pass it")
        if not images.is_floating_point():
            raise TypeError(f"images has dtype {images.dtype}; expected a float tensor in [-1, 1]")
        _level_values(images.dtype)  # refuse a dtype that cannot hold the marked levels first
        pixels = tensor_to_uint8(images)
        marked = np.stack(self._mark_batch(list(pixels)))
        return uint8_to_tensor(marked, dtype=images.dtype, device=images.device)

    def mark_images(self, images: Sequence) -> list:
        """Mark the images a pipeline returned (``pipe(...).images``).

        Parameters
        ----------
        images : list of PIL.Image.Image or of (H, W, 3) uint8 ndarray
            RGB images, at least 256x256. Not modified.

        Returns
        -------
        list
            New marked images of the same types; image ``i`` carries
            ``last_payloads[i]``.
        """
        if not isinstance(images, Sequence) or isinstance(images, (str, bytes)):
            raise TypeError(
                f"images must be a list of PIL images or uint8 arrays (pipe(...).images), "
                f"not {type(images).__name__}; wrap a single image in a list")
        return self._mark_batch(images)


def mark_images(images: Sequence, payloads: PayloadSource, *,
                key: bytes | str | None = None, strength: float = 1.0,
                min_psnr: float = 40.0, adapt: bool = True, on_error: str = "raise") -> list:
    """Mark the PIL images (or uint8 arrays) any diffusers pipeline returns.

    ``mark_images(pipe(prompt).images, Payload(4242, next_id), key=secret)`` is
    ``ProvmarkWatermarker(payloads, ...).mark_images(images)``: the ``i``-th image gets
    the content ID ``next_id + i`` (or ``payloads(i)`` for a callable). Keep a
    :class:`ProvmarkWatermarker` instead to count on across calls and to read
    ``last_payloads``.
    """
    watermarker = ProvmarkWatermarker(payloads, key=key, strength=strength,
                                      min_psnr=min_psnr, adapt=adapt, on_error=on_error)
    return watermarker.mark_images(images)
