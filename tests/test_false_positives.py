"""False positives: detection on unmarked images and on marked images read with the
wrong key must never return a payload, and the sync score must behave like the
N(0, 1) statistic the Detection docstring describes.

The issue's bar (>= 10,000 detections) is measured by the robustness benchmark; this
is the version that runs with ``make test`` (marked ``slow``, so ``make test-fast``
skips it): 3000 detections of 256-512 px images. Two in every seven of the unmarked
ones and one in seven of the marked ones read with a wrong key (687, spread evenly
over every group and variant) run the full blind search, about 100 ms of CPU each on
one Numba thread (a wrong key's fine search costs more); the rest read the aligned
grid only (``search=False``, about 4 ms). The aligned-grid claims (the sync score is
N(0, 1)) use all 3000: the aligned score of a searched detection is the same number,
its first attempt. The claims about the search (the max bound, no payload after a
search) use the searched ones, whose decoding attempts on null words come on top of
the aligned ones (at least 5000 in all is asserted). The detector does not decode a
grid whose pilot z is under ``DECODE_MIN_Z`` (nearly every null aligned grid), nor
more than the blind search's best candidate, so the test decodes null words itself,
through the detector's own reading and codec: each detection's aligned grid where the
detector did not, and a grid half a block off it; any word they yield fails it too. Why
this is enough: the bound test compares the count above ``sqrt(2 ln(n m))`` with
its expectation (at most 1) for the ``n`` it is given, so it holds at any ``n``;
and a decoder or search bug that accepted null words at a rate of 1e-3 per attempt
would show in 5000 attempts with probability 1 - exp(-5) > 99.3%. Searching all
3000 (the old fixture) took 731 s of a 13.5-minute suite; this one about a sixth.
"""

from __future__ import annotations

import cv2
import numba
import numpy as np
import pytest
import skimage.data

import provmark
from provmark import Payload
from provmark._detect import DECODE_MIN_Z

pytestmark = [
    pytest.mark.usefixtures("numba_one_thread"),
    pytest.mark.skipif(numba.config.DISABLE_JIT,
                       reason="thousands of detections take hours with NUMBA_DISABLE_JIT=1"),
]

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def _crop(img: np.ndarray, rng: np.random.Generator, max_side: int = 320) -> np.ndarray:
    h, w = img.shape[:2]
    ch = int(rng.integers(256, min(h, max_side) + 1))
    cw = int(rng.integers(256, min(w, max_side) + 1))
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    return np.ascontiguousarray(img[y:y + ch, x:x + cw])


def _rescale(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    s = float(rng.uniform(0.55, 1.6))
    size = (max(256, round(w * s)), max(256, round(h * s)))
    interp = [cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC][int(rng.integers(3))]
    return cv2.resize(img, size, interpolation=interp)


def _synthetic(kind: str, rng: np.random.Generator) -> np.ndarray:
    size = int(rng.integers(256, 321))
    if kind == "flat":
        img = np.empty((size, size, 3), np.uint8)
        img[...] = rng.integers(0, 256, 3, dtype=np.uint8)
        return img
    if kind == "gradient":
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
        a = rng.uniform(0, 2 * np.pi)
        t = np.cos(a) * yy + np.sin(a) * xx
        lo, hi = sorted(rng.uniform(0, 255, 2))
        base = lo + (hi - lo) * (t - t.min()) / max(np.ptp(t), 1e-9)
        tint = rng.uniform(0.7, 1.0, 3)
        return np.clip(np.rint(base[..., None] * tint), 0, 255).astype(np.uint8)
    if kind == "noise":
        return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    # smooth noise: blurred, like out-of-focus texture
    noise = rng.normal(128, 60, (size, size, 3)).astype(np.float32)
    sigma = float(rng.uniform(1, 6))
    return np.clip(cv2.GaussianBlur(noise, (0, 0), sigma) * 3 - 256, 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


class _Tally:
    def __init__(self):
        self.n = 0
        self.decode_attempts = 0
        self.payloads = []
        self.decoded_but_hidden = 0
        self.fap_below_one = 0
        self.z = {}
        self.z_searched = []

    def detect(self, img, group: str, key=None, *, search: bool):
        det = provmark.detect(img, key=key, search=search)
        self.n += 1
        self.decode_attempts += det.details["decode_attempts"]
        if det.found or det.payload is not None:
            self.payloads.append((group, det))
        self._decode_null_grids(img, group, key, aligned=det.details["aligned_sync_score"]
                                < DECODE_MIN_Z)
        if det.reason == "decoded word not significant enough":
            self.decoded_but_hidden += 1  # the codec accepted a word: also a false alarm
        if det.false_alarm_probability != 1.0:
            self.fap_below_one += 1
        # The pilot score on the aligned grid is ~N(0, 1) under the null; after the
        # grid search the reported score is the best of `hypotheses` of them.
        self.z.setdefault(group, []).append(det.details["aligned_sync_score"])
        if search:
            self.z_searched.append((det.sync_score, det.hypotheses))
        return det

    def _decode_null_grids(self, img, group: str, key, *, aligned: bool) -> None:
        """Decode null words through the detector's own reading and codec: the aligned
        grid when the detector did not (its pilot z under ``DECODE_MIN_Z``, as on
        nearly every null image), and a grid half a block off it, which the detector
        reads only if its search picks it. The codec's null acceptance is thus tested
        on more words than the detector now decodes (it skips weak grids and decodes
        only the blind search's best candidate)."""
        from provmark._detect import evaluate, read_grid, read_luma
        from provmark._keys import normalize_key

        k = normalize_key(key)
        y = read_luma(np.asarray(img))
        for oy, ox in ([(0, 0)] if aligned else []) + [(8, 8)]:
            score, code_score, _ = read_grid(y, k, oy, ox)
            self.decode_attempts += 1
            result = evaluate(score, k, code_score).result
            if result.payload is not None:
                self.payloads.append((group, f"the codec on grid ({oy}, {ox}): {result}"))


def _searched(i: int) -> bool:
    """Whether detection ``i`` of a loop runs the full search: two in seven. Seven is
    prime to the periods 2, 3, 4, 5 and 8 of the loops' variants, so every variant
    (key kind, rescale, JPEG, synthetic kind, attack on the marked image) gets its
    share of searched detections."""
    return i % 7 in (0, 3)


@pytest.fixture(scope="module")
def tally(numba_one_thread):
    t = _Tally()
    rng = np.random.default_rng(20251123)
    originals = [getattr(skimage.data, name)() for name in PHOTOS]

    # 1. Unmarked photos: random crops and rescales (public key and random keys).
    for i in range(1200):
        img = originals[i % len(originals)]
        if i % 3:
            img = _rescale(img, rng)
        img = _crop(img, rng)
        if i % 5 == 0:
            img = _jpeg(img, int(rng.integers(30, 96)))
        t.detect(img, "photo", key=None if i % 2 else rng.bytes(12), search=_searched(i))

    # 2. Synthetic: flat, gradients, noise, smooth noise.
    for i in range(600):
        kind = ("flat", "gradient", "noise", "smooth")[i % 4]
        t.detect(_synthetic(kind, rng), kind, key=None if i % 2 else rng.bytes(12),
                 search=_searched(i))

    # 3. Marked images read with wrong keys (plain, JPEG'd, cropped, rescaled).
    marked = []
    for i, img in enumerate(originals):
        base = np.ascontiguousarray(cv2.resize(img, (512, 512), interpolation=cv2.INTER_AREA))
        for key in (None, f"secret-{i}"):
            p = Payload(int(rng.integers(0, 2**24)), int(rng.integers(0, 2**40)), 1 + i % 3)
            m = provmark.embed(base, p, key=key)
            assert provmark.detect(m, key=key).payload == p  # the right key reads it
            marked.append(m)
    for i in range(1200):
        m = marked[i % len(marked)]
        variant = i % 4
        if variant == 1:
            m = _jpeg(m, 75)
        elif variant == 2:
            m = _crop(m, rng, max_side=384)
        elif variant == 3:
            dy, dx = 16 * rng.integers(0, 8, 2)  # shift by whole blocks
            m = np.ascontiguousarray(m[dy:, dx:])
        wrong = rng.bytes(int(rng.integers(1, 33))) if i % 3 else f"wrong-{i}"
        # One in seven searched here: another key's template often locks on a marked
        # image and its fine search then costs ~0.3 s of CPU (benchmarks/RESULTS.md).
        t.detect(m, "wrong key", key=wrong, search=i % 7 == 0)
    return t


@pytest.mark.slow
def test_enough_detections(tally):
    assert tally.n >= 3000
    # The searched share really searched: a null image never decodes on the
    # aligned grid, so each of them scored many grid hypotheses.
    assert len(tally.z_searched) >= 680
    assert all(h > 1 for _, h in tally.z_searched)
    # The power argument of the module docstring counts on >= 5000 null decodings.
    assert tally.decode_attempts >= 5000, tally.decode_attempts


@pytest.mark.slow
def test_no_payload_ever_returned(tally):
    assert tally.payloads == [], tally.payloads[:5]


@pytest.mark.slow
def test_codec_never_accepted_a_word(tally):
    # false_alarm_probability is 1.0 whenever nothing was decoded.
    assert tally.decoded_but_hidden == 0
    assert tally.fap_below_one == 0


@pytest.mark.slow
def test_sync_score_is_standard_normal_on_unmarked(tally):
    z = np.concatenate([np.asarray(v) for v in tally.z.values()])
    print(f"sync score over {z.size} null detections: mean {z.mean():.3f}, std {z.std():.3f}, "
          f"max |z| {np.abs(z).max():.2f}; per group: " + ", ".join(
              f"{g} {np.mean(v):.2f}/{np.std(v):.2f} (n={len(v)})" for g, v in tally.z.items()))
    assert abs(z.mean()) < 0.2, z.mean()
    assert 0.75 < z.std() < 1.25, z.std()
    assert np.abs(z).max() < 6.0
    # The one-sided tail the false-alarm bound relies on: P(Z >= 3) is about 1e-3.
    assert (z >= 3).mean() < 0.01


@pytest.mark.slow
def test_searched_sync_score_respects_the_max_bound(tally):
    # P(max of m scores >= z) <= m exp(-z^2/2): the bound the false-alarm
    # probability uses. Over n null detections, expect fewer than ~1 above the
    # z where n * m * exp(-z^2/2) = 1.
    z = np.array([s for s, _ in tally.z_searched])
    m = max(h for _, h in tally.z_searched)
    z_star = np.sqrt(2 * np.log(len(z) * m))
    print(f"searched sync score over {len(z)} detections ({tally.decode_attempts} decoding "
          f"attempts in all): mean {z.mean():.2f}, max {z.max():.2f}, bound {z_star:.2f}")
    assert (z >= z_star).sum() <= 1


@pytest.mark.slow
@pytest.mark.parametrize("group", ["photo", "noise", "smooth", "wrong key"])
def test_sync_score_per_group(tally, group):
    z = np.asarray(tally.z[group])
    assert abs(z.mean()) < 0.3, (group, z.mean())
    assert 0.6 < z.std() < 1.4, (group, z.std())


def test_marked_sync_score_is_far_from_the_null(photo_factory):
    img = photo_factory("coffee", 512, 512)
    det = provmark.detect(provmark.embed(img, Payload(1, 2)))
    assert det.sync_score > 6
