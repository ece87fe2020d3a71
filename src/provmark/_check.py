"""``provmark.check_embeddable``: can this image carry the default payload, and how well?

Answers before embedding, with reasons a user can act on: too small (no whole tile),
too few repetitions, mostly flat (the mark then rests on the flat-area floor signal,
which strong JPEG erases), and optionally a self-test that embeds a probe payload,
JPEG-compresses it at quality 50 and checks that it still decodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._image import MIN_SIDE, as_rgb_array
from ._layout import BLOCK_PX, TILE_BLOCKS
from ._payload import Payload

#: Below this LL-band pair radius a block counts as flat.
FLAT_RADIUS = 8.0


@dataclass(frozen=True)
class Embeddability:
    """Result of :func:`check_embeddable`.

    ok : the image can carry the payload: it reads back without any attack (it may
        still be weak against attacks: see ``warnings``).
    reasons : why not, when ``ok`` is False.
    warnings : conditions that weaken the mark.
    tiles : how many whole-tile equivalents the image holds (repetitions per bit).
    flat_fraction : share of blocks with almost no texture at the carrier frequencies.
    jpeg50_survives : result of the self-test (None when not run).
    coarse_layer : the mark would include the coarse layer (a second mark at half
        resolution for smooth images of 512 px and more, docs/format.md 5.6), which
        survives WebP 50 and JPEG 30 where the flat-area floor does not.
    """

    ok: bool
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    tiles: float
    flat_fraction: float
    jpeg50_survives: bool | None = None
    coarse_layer: bool = False


#: Share of black or white pixels above which ``check`` warns that the mark is weak:
#: on a 1300x940 help page 97% black or white (gimp-slider-help in the corpus) the mark
#: reads back, but only 41 of its 68 bar15 copies read with the clipping compensation
#: (18 without): none after a resize, a rotation or the screenshot chain.
SATURATED_WARNING = 0.5


def check_embeddable(image, *, self_test: bool = False, key=None) -> Embeddability:
    """Say whether ``image`` can carry the default payload and how robustly.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray or PIL.Image.Image
    self_test : bool, default False
        Also embed a probe payload, compress with JPEG quality 50 (OpenCV) and check
        that it decodes (costs one embed, one encode and one detect).
    key : bytes or str or None
        Key for the self-test.

    Returns
    -------
    Embeddability
    """
    from ._detect import detect, grid_pairs, read_coarse, read_luma

    rgb, _ = as_rgb_array(image)
    h, w = rgb.shape[:2]
    reasons: list[str] = []
    warnings: list[str] = []
    if h < MIN_SIDE or w < MIN_SIDE:
        reasons.append(f"image is {w}x{h}; at least {MIN_SIDE}x{MIN_SIDE} is needed to hold one tile")
        return Embeddability(False, tuple(reasons), (), 0.0, 0.0, None)
    nby, nbx = h // BLOCK_PX, w // BLOCK_PX
    tiles = nby * nbx / TILE_BLOCKS**2
    coef = grid_pairs(read_luma(rgb))
    flat = float((np.hypot(coef[..., 0], coef[..., 1]) < FLAT_RADIUS).mean())
    from ._embed import saturated_share

    saturated = saturated_share(rgb)
    if saturated > SATURATED_WARNING:
        warnings.append(f"{saturated:.0%} of the pixels are black or white, where a change "
                        "can only go one way: the mark lives in the rest (a document or line "
                        "art) and may not survive resizing, rotation or strong compression (the "
                        "JPEG self-test, check --self-test, tells); a version with a little tone "
                        "in its background carries a stronger mark")
    if tiles < 2:
        warnings.append(f"only {tiles:.1f} tile repetitions: crops and strong compression "
                        "will leave little redundancy (use images of 512x512 or more)")
    from ._embed import mark_array, refusal_detail
    from ._keys import normalize_key

    probe = Payload(provider=0xABCDE, content_id=0x123456789, label=1)
    result = mark_array(rgb, probe, normalize_key(key))
    marked, scale = result.image, result.scale
    coarse = marked is not None and read_coarse(marked, normalize_key(key)) == probe
    if flat > 0.7 and not coarse:
        warnings.append(f"{flat:.0%} of the image is flat at the carrier frequencies: the mark "
                        "is carried by a weak floor signal that strong JPEG (quality < 50) and "
                        "WebP may erase" + ("" if min(h, w) >= 512 else
                                            " (from 512 px a side, a coarse layer can be added)"))
    if marked is None:
        reasons.append("the mark would not read back reliably even without an attack "
                       f"({refusal_detail(result)}): the image is too flat or saturated, or too busy for the "
                       "40 dB PSNR floor (embed would raise EmbedError)")
        return Embeddability(False, tuple(reasons), tuple(warnings), tiles, flat, None)
    if scale < 0.999:
        warnings.append(f"the PSNR floor leaves the mark {scale:.0%} of the change it asks for "
                        "(in amplitude; the costliest changes are cut first): the image is "
                        "busy for its size")
    survives = None
    if self_test:
        import cv2
        ok, buf = cv2.imencode(".jpg", marked[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 50])
        back = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
        survives = detect(np.ascontiguousarray(back), key=key).payload == probe
        if not survives:
            warnings.append("self-test: the mark did not survive JPEG quality 50 on this image")
    return Embeddability(True, (), tuple(warnings), tiles, flat, survives, coarse)
