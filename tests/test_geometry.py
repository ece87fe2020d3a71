"""The synchronisation template and blind recovery of resize, aspect change and
rotation (provmark._template, and detect() end to end)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import provmark
from provmark import _template
from provmark._detect import PERIOD_MIN_PIXELS, read_luma
from provmark._keys import normalize_key

KEY = normalize_key(b"geometry-test-key")


def test_template_tile_is_keyed_periodic_and_in_band():
    a, b = _template.keyed_template(KEY), _template.keyed_template(b"another key")
    assert a.tile.shape == (_template.PERIOD, _template.PERIOD)
    assert not np.allclose(a.tile, b.tile)
    r = np.hypot(a.freqs[:, 0], a.freqs[:, 1])
    assert (r >= _template.BAND[0] - 1e-9).all() and (r <= _template.BAND[1] + 1e-9).all()
    spec = np.abs(np.fft.fft2(a.tile))
    # 16 cosines -> 32 spectral peaks (with their mirror images), nothing else
    assert (spec > 1e-3 * spec.max()).sum() == 2 * _template.N_FREQS


def test_template_lattice_factor_follows_the_short_side():
    assert _template.template_factor(256, 256) == 1
    assert _template.template_factor(1080, 1920) == 1
    assert _template.template_factor(1400, 2000) == 2
    assert _template.template_factor(2799, 4000) == 2
    assert _template.template_factor(3000, 4000) == 4
    assert _template.template_factor(9000, 9000) == 4
    a, b = _template.keyed_template(KEY, 1), _template.keyed_template(KEY, 4)
    assert b.tile.shape == (4 * _template.PERIOD,) * 2
    np.testing.assert_allclose(b.freqs * 4, a.freqs)
    # the coarse tile is the fine one stretched: the same cosines, same phases
    np.testing.assert_allclose(b.tile[::4, ::4], a.tile, atol=1e-5)


def test_small_images_carry_a_stronger_template():
    flat_small, tex_small = _template.size_gains(512 * 512)
    flat_big, tex_big = _template.size_gains(2_000_000)
    assert (flat_big, tex_big) == (1.0, 1.0)
    assert 1.0 <= flat_small <= _template.FLAT_GAIN_MAX  # skies get no more than 1 MP's
    assert flat_small < tex_small <= _template.TEXTURE_GAIN_MAX


@pytest.mark.parametrize("factor", [1, 2])
def test_phase_lock_finds_the_grid_origin_of_a_crop(photo_factory, factor):
    img = photo_factory("coffee", 512, 512)
    plane = read_luma(img).astype(np.float32)
    tile = _template.keyed_template(KEY, factor).tile
    p = tile.shape[0]
    yy, xx = np.mgrid[0:512, 0:512]
    marked = plane + 0.8 * tile[yy % p, xx % p]
    crop = np.ascontiguousarray(marked[37:, 21:])
    z, oy, ox = _template.phase_lock(crop, KEY, factor)
    assert z > 8 and (oy, ox) == ((-37) % p, (-21) % p)
    # no template, or the wrong lattice: no lock. (Another key's constellation
    # shares some of the band's few lattice points, so it may lock on a template:
    # a lock only tells the pilot where to look, it is no evidence of a mark.)
    assert _template.phase_lock(np.ascontiguousarray(plane[37:, 21:]), KEY, factor)[0] < 5.5
    assert _template.phase_lock(crop, KEY, 3 - factor)[0] < 5.5


def test_phase_lock_grows_with_the_template_amplitude(photo_factory):
    """The lock is a matched filter: its z is proportional to the template's
    amplitude. Template bins a bin or two apart (every key has some) must not count
    as each other's noise, which made it grow as the square root (24, 42, 76 at 0.8,
    2, 4 grey levels on this photo)."""
    plane = read_luma(photo_factory("coffee", 512, 512)).astype(np.float32)
    tile = _template.keyed_template(KEY, 1).tile
    k = _template.keyed_template(KEY, 1).lattice
    near = np.abs(k[:, None, :] - k[None, :, :]).max(axis=-1) <= 2
    assert near.sum() > 16  # some frequencies are neighbours in the spectrum
    yy, xx = np.mgrid[0:512, 0:512]
    z = [_template.phase_lock(np.ascontiguousarray(plane + a * tile[yy % 64, xx % 64],
                                                   dtype=np.float32), KEY, 1)[0]
         for a in (1.0, 2.0, 4.0)]
    assert z[1] / z[0] > 1.9 and z[2] / z[1] > 1.9, z


def test_one_spectral_line_on_a_template_bin_does_not_lock(photo_factory, monkeypatch):
    """An image's own periodic pattern whose line falls on one template bin (a UI's
    regular pattern, an enlarged staircase of grey levels) no longer locks alone: each
    bin is capped relative to the template bins' median. Without the cap the same
    plane locks at several times LOCK_Z; the marked plane still locks."""
    from provmark import _detect

    plane = read_luma(photo_factory("coffee", 512, 512)).astype(np.float32)
    tpl = _template.keyed_template(KEY, 1)
    (ky, kx), yy, xx = tpl.lattice[0], *np.mgrid[0:512, 0:512]
    line = 6.0 * np.cos(2 * np.pi * (ky * yy + kx * xx) / tpl.period + 0.3)
    striped = np.ascontiguousarray(plane + line, dtype=np.float32)
    assert _template.phase_lock(striped, KEY, 1)[0] < _detect.LOCK_Z
    marked = np.ascontiguousarray(plane + tpl.tile[yy % 64, xx % 64], dtype=np.float32)
    assert _template.phase_lock(marked, KEY, 1)[0] > 3 * _detect.LOCK_Z
    monkeypatch.setattr(_template, "LOCK_BIN_CAP", 1e9)  # no cap
    assert _template.phase_lock(striped, KEY, 1)[0] > 3 * _detect.LOCK_Z


def test_lock_breadth_reads_the_templates_bins_together(photo_factory):
    """A template raises all of its bins: the median bin of a lock of z Z reads near
    Z / 4 (16 bins). At the best shift of an unmarked plane it reads near 0."""
    plane = read_luma(photo_factory("coffee", 512, 512)).astype(np.float32)
    tile = _template.keyed_template(KEY, 1).tile
    yy, xx = np.mgrid[0:512, 0:512]
    marked = np.ascontiguousarray(plane + 1.5 * tile[yy % 64, xx % 64], dtype=np.float32)
    z, oy, ox = _template.phase_lock(marked, KEY, 1)
    breadth = _template.lock_breadth(marked, KEY, 1, (oy, ox))
    assert z > 10 and 0.5 * z / 4 < breadth < 1.5 * z / 4, (z, breadth)
    _, oy, ox = _template.phase_lock(plane, KEY, 1)
    assert abs(_template.lock_breadth(plane, KEY, 1, (oy, ox))) < 1.0
    assert _template.lock_breadth(plane[:60], KEY, 1, (0, 0)) == 0.0  # no whole period


@pytest.mark.parametrize("size, angle", [(272, 0.5), (272, 1.2)])
def test_a_quantised_gradients_lock_is_not_searched(image_factory, tmp_path, capsys, size,
                                                    angle):
    """A uint8 gradient's grey-level steps lock the template on a few bins (z 6-10
    here): such locks are not searched (median bin under LOCK_MIN_BREADTH) or not
    searched finely (under FINE_MIN_BREADTH; each fine search cost about 0.3 s), and
    are reported with their median bin, by ``details`` and by ``--explain``."""
    from PIL import Image

    from provmark import _detect
    from provmark.cli import EXIT_NOT_FOUND, main

    gradient = image_factory["gradient"](size, angle)
    det = provmark.detect(gradient, search=True)
    template = det.details["template"]
    assert not det.found
    locked = [lock for lock in template["locks"] if lock["z"] >= _detect.LOCK_Z]
    assert locked and all(lock["breadth"] < _detect.FINE_MIN_BREADTH for lock in locked)
    narrow = [lock for lock in locked if lock["breadth"] < _detect.LOCK_MIN_BREADTH]
    skipped = template.get("fine_skipped", [])
    assert narrow and "fine" not in template
    assert all(_detect.LOCK_MIN_BREADTH <= b < _detect.FINE_MIN_BREADTH for b in skipped)
    assert bool(skipped) == (angle == 1.2)  # the second has locks of both kinds
    path = tmp_path / "gradient.png"
    Image.fromarray(gradient).save(path)
    assert main(["detect", str(path), "--explain"]) == EXIT_NOT_FOUND
    out, err = capsys.readouterr()
    assert (f"{len(narrow) + len(skipped)} template lock(s) from z {_detect.LOCK_Z} on a few "
            f"of its bins only") in out
    assert f"{len(narrow)} not searched (under" in out


@pytest.fixture(scope="module")
def marked_1024(photo_factory):
    img = photo_factory("coffee", 1024, 1024)
    payload = provmark.Payload(4242, 123456789, 2)
    return img, provmark.embed(img, payload, key=KEY), payload


@pytest.mark.parametrize("sy, sx, rot", [(0.5, 0.5, 0), (1.5, 1.5, 0), (1.0, 0.7, 0),
                                         (1.0, 1.0, 2.0), (0.8, 0.8, -1.0)])
def test_estimate_affine_recovers_the_transform(marked_1024, sy, sx, rot):
    _, marked, _ = marked_1024
    h, w = marked.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rot, 1.0)
    m[:, :2] = m[:, :2] @ np.diag([sx, sy])
    out = (int(w * sx), int(h * sy))
    m[:, 2] += np.array(out) / 2 - m[:, :2] @ np.array([w / 2, h / 2])
    warped = cv2.warpAffine(marked, m, out, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    est = _template.estimate_affine(read_luma(np.ascontiguousarray(warped)), KEY)[0]
    assert est.score > 2.0
    assert est.scale_y == pytest.approx(sy, rel=3e-3)
    assert est.scale_x == pytest.approx(sx, rel=3e-3)
    # OpenCV's positive angle is counter-clockwise; ours is measured in (y, x).
    assert abs(abs(est.rotation) - abs(rot)) < 0.15


@pytest.mark.parametrize("shape, count", [((512, 512), 1), ((1080, 1920), 2),
                                          ((1620, 2880), 6), ((4000, 6000), 6)])
def test_spectrum_windows_cover_the_copy(shape, count):
    window = (min(shape[0], 1024), min(shape[1], 1024))
    corners = _template.spectrum_windows(shape, window)
    assert len(corners) == count
    for oy, ox in corners:
        assert 0 <= oy <= shape[0] - window[0] and 0 <= ox <= shape[1] - window[1]
    if count > 1:  # the windows reach both ends of the long side
        xs = sorted({ox for _, ox in corners})
        assert xs[0] == 0 and xs[-1] == shape[1] - window[1]


def test_averaged_spectrum_steadies_the_noise_floor():
    """Welch's average of four windows: the whitened noise floor spreads about half
    as much as one window's, so a faint peak stands out twice as far."""
    y = np.random.default_rng(3).normal(128, 20, (2048, 2048)).astype(np.float32)
    one = _template.whitened_spectrum(y[:1024, :1024])
    four = _template.whitened_spectrum(y, 1024)
    assert one.shape == four.shape
    assert four.std() < 0.6 * one.std()
    assert four.mean() == pytest.approx(one.mean(), rel=0.05)


def test_unmarked_image_scores_low(photo_factory):
    img = photo_factory("coffee", 1024, 1024)
    assert _template.estimate_affine(read_luma(img), KEY)[0].score < 1.8


@pytest.mark.parametrize("attack", ["resize0.5", "resize1.5", "aspect", "rotate2", "screenshot"])
def test_detect_after_geometric_attacks(marked_1024, attack):
    from provmark import attacks as A

    _, marked, payload = marked_1024
    copy = {"resize0.5": lambda x: A.resize(x, scale=0.5),
            "resize1.5": lambda x: A.resize(x, scale=1.5),
            "aspect": lambda x: A.resize(x, size=(1024, 700)),
            "rotate2": lambda x: A.rotate(x, angle=2.0),
            "screenshot": lambda x: A.screenshot(x, width=1280, border=40, quality=80)}[attack](marked)
    det = provmark.detect(copy, key=KEY)
    assert det.found and det.payload == payload, det
    assert det.false_alarm_probability <= 1e-9
    if attack == "resize0.5":
        assert det.scale == pytest.approx(0.5, rel=5e-3)
    # the wrong key finds nothing on the same copy
    assert provmark.detect(copy, key=b"not the key").payload is None


def test_a_cropped_copy_may_come_from_a_source_with_a_coarser_lattice():
    """A copy cropped after the resize is smaller than its source: the lattice
    factors tried are those its source could carry *at least* this large."""
    from provmark._detect import _plausible_factors
    from provmark._template import AffineEstimate

    def factors(apparent, shape):
        est = AffineEstimate(np.eye(2) * apparent, 5.0, apparent, apparent, 0.0, 1)
        return _plausible_factors(est, shape)

    # 1536x2048 (factor 2) rotated 5 degrees and cropped to 1372x1935, read at the
    # apparent scale 2: a factor-1 source x2 uncropped (first), then crops: of a
    # factor-2 source at 1:1 (the truth), of a factor-4 source halved
    assert factors(2.0, (1372, 1935)) == [(1, False), (2, True), (4, True)]
    # a 3000x4000 copy showing the base lattice at 1:1 is no factor-1 source at 1:1
    # (that size carries factor 4), nor a factor-2 one halved: a factor-4 source x0.25
    assert factors(1.0, (3000, 4000)) == [(4, False)]
    # an aspect change reads each axis by its own scale: 1333x2000 (factor 1) squashed
    # to 1185x1333 is a factor-1 source, though its mean scale alone says 1539x1731
    squashed = AffineEstimate(np.diag([0.889, 0.667]), 5.0, 0.889, 0.667, 0.0, 1)
    assert _plausible_factors(squashed, (1185, 1333))[0] == (1, False)
    # a small copy is no crop of a source several times larger (a crop keeps at
    # least half of each side): only its own lattice is read
    assert factors(1.0, (288, 384)) == [(1, False)]


@pytest.mark.slow
def test_detect_a_rotated_crop_of_a_large_source(photo_factory):
    """A source whose short side just carries the factor-2 lattice, rotated and
    cropped under that size (lost before the factor rule above was corrected)."""
    from provmark import attacks as A

    img = photo_factory("coffee", 2048, 1536)
    assert _template.template_factor(*img.shape[:2]) == 2
    payload = provmark.Payload(77, 31337, 1)
    copy = A.rotate(provmark.embed(img, payload, key=KEY), angle=5.0)
    assert _template.template_factor(*copy.shape[:2]) == 1
    det = provmark.detect(copy, key=KEY)
    assert det.payload == payload, det


def test_a_near_miss_climbs_to_the_lock(marked_1024):
    """A geometry 1% and 0.3 degrees off the truth locks under LOCK_Z on a
    512-px copy; the climb reaches the lock and ends nearer the truth. An unmarked
    copy does not climb to a lock from the same start."""
    from provmark import _detect
    from provmark._sync import hypothesis_matrix

    img, marked, _ = marked_1024
    truth = np.diag([0.5, 0.5])
    off = hypothesis_matrix(1.0, 0.3) @ truth @ np.diag([1.01, 0.99])
    geo = _template.AffineEstimate(off, 0.0, 0.5, 0.5, 0.3, 1)
    y = read_luma(cv2.resize(marked, (512, 512), interpolation=cv2.INTER_AREA))
    start = _template.phase_lock(np.ascontiguousarray(_template.warp_to_grid(y, off),
                                                      np.float32), KEY, 1)[0]
    assert _detect.NEAR_LOCK_Z - 1.5 < start < _detect.LOCK_Z
    climbed = _detect._climb_to_lock(y, KEY, geo, 1)
    assert climbed is not None
    end = _template.phase_lock(np.ascontiguousarray(
        _template.warp_to_grid(y, climbed.matrix), np.float32), KEY, 1)[0]
    assert end >= _detect.LOCK_Z
    assert np.abs(climbed.matrix - truth).max() < np.abs(off - truth).max()
    plain = read_luma(cv2.resize(img, (512, 512), interpolation=cv2.INTER_AREA))
    assert _detect._climb_to_lock(plain, KEY, geo, 1) is None


def test_polishing_moves_a_held_lock_to_the_truth(marked_1024):
    """A geometry 0.35 degrees and 0.5% off the truth still locks on a 512-px copy
    (a 1024-px grid); polishing it by the lock's z brings it within a tenth of a
    degree and 0.2%."""
    from provmark import _detect
    from provmark._sync import hypothesis_matrix

    _, marked, _ = marked_1024
    y = read_luma(cv2.resize(marked, (512, 512), interpolation=cv2.INTER_AREA))
    off = hypothesis_matrix(1.0, 0.35) @ np.diag([0.5 * 1.005, 0.5 * 0.995])
    geo = _template.AffineEstimate(off, 0.0, 0.5, 0.5, 0.35, 1)
    assert _detect._window_lock_z(y, KEY, off, 1, 512) >= _detect.LOCK_Z
    polished = _detect._polish_lock(y, KEY, geo, 1)
    assert abs(polished.rotation) < 0.1
    assert abs(polished.scale_y / 0.5 - 1) < 0.002 and abs(polished.scale_x / 0.5 - 1) < 0.002


def test_the_fine_search_decodes_a_lock_the_pilot_misses(photo_factory, monkeypatch):
    """A 512x512 copy rotated 2 degrees, its geometry 0.4 degrees and 0.6% off: the
    template locks, the pilot at that geometry does not decode; the fine search
    (polish, then the pilot around it) does, and counts what it searched. (Long lists
    off: at that geometry the long list its early pilot affords decodes it too.)"""
    from provmark import _detect
    from provmark import attacks as A
    from provmark._detect import FINE_DECODES, _lock_resampled, _Search
    from provmark._sync import hypothesis_matrix

    payload = provmark.Payload(4242, 123456789, 2)
    copy = A.rotate(provmark.embed(photo_factory("coffee", 512, 512), payload, key=KEY), angle=2.0)
    y = read_luma(copy)
    geo = _template.AffineEstimate(hypothesis_matrix(0.994, 2.4), 0.0, 0.994, 0.994, 2.4, 1)
    monkeypatch.setattr(_detect, "LONG_LIST_Z", float("inf"))
    plain = _Search(y, KEY)
    plain.template = {"locks": []}
    lock = _lock_resampled(y, KEY, geo, 1, plain.template)
    assert lock.held and not plain.near(lock.plane, lock.origin, geo)
    assert _template.lock_breadth(lock.plane, KEY, 1, lock.origin) >= _detect.FINE_MIN_BREADTH
    fine = _Search(y, KEY)
    fine.template = {"locks": []}
    assert fine.fine_search(lock, 1)
    assert fine.attempts[-1].evaluation.result.payload == payload
    assert fine.hypotheses > plain.hypotheses  # 25 geometries' phases counted
    assert len(fine.template["fine"][0]) == FINE_DECODES


@pytest.mark.parametrize("scale", [1.5, 2.0])
def test_an_upscaled_small_image_is_read(photo_factory, scale):
    """A 400x400 source (base lattice) upscaled: at x2 its template locks on the copy
    as the factor-2 lattice, which is read as a resize of the base one."""
    from provmark import attacks as A

    img = photo_factory("coffee", 400, 400)
    payload = provmark.Payload(5, 6, 1)
    copy = A.resize(provmark.embed(img, payload, key=KEY), scale=scale)
    det = provmark.detect(copy, key=KEY)
    assert det.payload == payload, det
    assert det.scale == pytest.approx(scale, rel=5e-3)


def test_warp_to_grid_inverts_a_known_resize(marked_1024):
    _, marked, _ = marked_1024
    y = read_luma(marked)
    small = cv2.resize(y, (512, 512), interpolation=cv2.INTER_AREA)
    back = _template.warp_to_grid(small, np.diag([0.5, 0.5]))
    assert back.shape == (1024, 1024)
    ref = cv2.resize(small, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    assert np.abs(back[8:-8, 8:-8] - ref[8:-8, 8:-8]).mean() < 2.0


# --------------------------------------------------------------------------- #
# search="exhaustive": rotated and resized copies of sources without a template


@pytest.fixture(scope="module")
def marked_512():
    from skimage import data

    img = np.ascontiguousarray(cv2.resize(data.chelsea(), (512, 512), interpolation=cv2.INTER_AREA))
    payload = provmark.Payload(provider=77, content_id=123456)
    return img, provmark.embed(img, payload, key="sweep"), payload


@pytest.mark.parametrize("attack, params", [("rotate", {"angle": -2.0}),
                                            ("resize", {"scale": 0.75})])
def test_exhaustive_sweep_finds_small_sources(marked_512, attack, params, monkeypatch):
    """The sweep is the fallback when the template did not survive: with every
    template lock refused, it alone finds the geometry."""
    from provmark import attacks

    monkeypatch.setattr(provmark._detect, "LOCK_Z", float("inf"))
    # (the uncropped sweep reads the template's phases without a lock)
    monkeypatch.setattr(provmark._detect._Search, "coherent_uncropped", lambda self: False)
    # (nor do the pilot gates at the scale and rotation sweeps' best)
    monkeypatch.setattr(provmark._detect._Search, "pilot_scales", lambda self: False)
    monkeypatch.setattr(provmark._detect._Search, "pilot_rotations", lambda self: False)
    _, marked, payload = marked_512
    copy = attacks.apply(attack, marked, rng=np.random.default_rng(0), **params)
    det = provmark.detect(copy, key="sweep", search="exhaustive")
    assert det.found and det.payload == payload
    assert det.false_alarm_probability <= 1e-9
    sweep = det.details["scale_sweep"]
    assert sweep is not None and sweep["hypotheses_scored"] >= 1
    if attack == "rotate":
        assert abs(det.rotation - params["angle"]) <= 0.31
    else:
        assert abs(det.scale - params["scale"]) <= 0.01


@pytest.mark.slow
def test_exhaustive_sweep_finds_nothing_in_unmarked_or_wrong_key(marked_512):
    img, marked, _ = marked_512
    for image, key in ((img, "sweep"), (marked, "another key")):
        det = provmark.detect(image, key=key, search="exhaustive")
        assert not det.found and det.payload is None
        sweep = det.details["scale_sweep"]
        assert sweep["hypotheses_scored"] == sweep["of"] > 300
        assert sweep["best_z"] < 6.5


def test_search_argument_is_validated(marked_512):
    with pytest.raises(ValueError, match="exhaustive"):
        provmark.detect(marked_512[1], search="full")


def test_exhaustive_sweep_has_nothing_to_do_on_large_copies():
    """A copy whose source would be over 1.2 MP at every swept scale: the sweep scores
    nothing and says so (no NaN in the JSON-able details)."""
    import json

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (3400, 3400, 3), dtype=np.uint8)  # 11.6 MP: scale > 3 needed
    det = provmark.detect(img, search="exhaustive")
    assert not det.found
    assert det.details["scale_sweep"]["hypotheses_scored"] == 0
    assert det.details["scale_sweep"]["best_z"] is None
    json.dumps(det.details, allow_nan=False)


@pytest.mark.parametrize("values, start, expected", [
    ([0, 1, 2, 3, 2], 0, 3),        # climbs several steps
    ([5, 1, 2, 3, 2], 2, 3),        # a farther global maximum does not matter
    ([1, 4, 2, 6, 1], 2, 3),        # both neighbours better: the better one
    ([3, 2, 1], 2, 0),
    ([7], 0, 0),
    ([1, 1, 1], 1, 1),              # ties: stay
])
def test_hill_climb(values, start, expected):
    from provmark._detect import hill_climb

    calls = []

    def value(j):
        calls.append(j)
        return values[j]

    assert hill_climb(len(values), start, value) == expected
    assert all(0 <= j < len(values) for j in calls)


# --------------------------------------------------------------------------- #
# Self-reference: the geometry from the mark's own period (large flat copies)


def _flat_art(h: int, w: int) -> np.ndarray:
    """Smooth digital-art-like content: two gradients and soft blobs, no texture."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 90 + 60 * np.sin(yy / h * 2.1) + 40 * np.cos(xx / w * 3.3)
    blobs = cv2.GaussianBlur(np.random.default_rng(5).normal(0, 40, (h, w)).astype(np.float32),
                             (0, 0), 40)
    g = np.clip(base + 8 * blobs, 0, 255)
    return np.stack([g, g * 0.9 + 10, g * 0.7 + 30], axis=-1).astype(np.uint8)


def _scaled_rotated(img: np.ndarray, scale: float, rotation: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rotation, scale)
    size = (round(w * scale), round(h * scale))
    m[:, 2] += (size[0] - w) / 2, (size[1] - h) / 2
    return cv2.warpAffine(img, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


@pytest.mark.slow
def test_the_period_of_a_flat_mark_gives_its_geometry(monkeypatch):
    from provmark import _embed
    from provmark._period import period_geometries

    payload = provmark.Payload(7, 11, 1)
    # The fine mark's own period, without the coarse layer (docs/format.md 5.6),
    # whose second period moves the estimate by about a tenth of a degree (2.87
    # instead of 3 degrees below; the lock and the pilot's fine search absorb that).
    with monkeypatch.context() as patch:
        patch.setattr(_embed, "COARSE_MIN_SIDE", 10**6)
        fine_only = provmark.embed(_flat_art(1600, 2400), payload)
    marked = provmark.embed(_flat_art(1600, 2400), payload)
    assert not np.array_equal(fine_only, marked)  # the default wrote the coarse layer
    for scale, rotation in ((1.5, 0.0), (1.25, -2.0), (1.0, 3.0)):
        copy = _scaled_rotated(fine_only, scale, rotation)
        found = [_template._scales_rotation(a) for a in period_geometries(read_luma(copy))]
        # One of the (at most 3) candidates is the geometry, to 0.3% and 0.1 degrees;
        # the others read an axis at another multiple of the tile, and the mark
        # rejects them when decoding.
        assert any(abs(sy / scale - 1) < 3e-3 and abs(sx / scale - 1) < 3e-3
                   and abs(rot - rotation) < 0.1 for sy, sx, rot in found), (scale, rotation, found)
        # With the coarse layer too, the default search decodes the copy.
        assert provmark.detect(_scaled_rotated(marked, scale, rotation)).payload == payload
    # Unmarked, the same content has no period
    assert period_geometries(read_luma(cv2.resize(_flat_art(1600, 2400), (3000, 2000)))) == []


@pytest.mark.slow
def test_the_self_reference_stage_decodes_a_resized_flat_copy():
    from provmark._detect import _Search

    payload = provmark.Payload(7, 11, 1)
    marked = provmark.embed(_flat_art(1600, 2400), payload)
    copy = cv2.resize(marked, (1920, 1280), interpolation=cv2.INTER_AREA)  # x0.8, 2.5 MP
    run = _Search(read_luma(copy), normalize_key(None))
    run.template = {"locks": []}
    assert run.self_reference()
    best = next(a for a in run.attempts if a.decoded)
    assert best.evaluation.result.payload == payload
    assert abs(best.geometry.scale_y - 0.8) < 2e-3 and abs(best.geometry.rotation) < 0.1
    # Under PERIOD_MIN_PIXELS (a 0.43 MP copy) the stage does nothing.
    small = cv2.resize(marked, (800, 533), interpolation=cv2.INTER_AREA)
    assert small.shape[0] * small.shape[1] < PERIOD_MIN_PIXELS
    run = _Search(read_luma(small), normalize_key(None))
    run.template = {"locks": []}
    assert not run.self_reference() and len(run.attempts) == 1


@pytest.mark.slow
def test_the_self_reference_stage_decodes_a_screenshot_of_a_flat_image():
    """A mid-size copy (0.71 MP): the flat source reduced x0.45, its border cropped and
    JPEG 80, as a screenshot of a large generated image is. The period's lattice
    gives the coarse layer's grid, which decodes (ukui-city's screenshot, whose
    template the embedder had given up, had no other sign of its geometry)."""
    from provmark._detect import _Search

    payload = provmark.Payload(7, 11, 1)
    marked = provmark.embed(_flat_art(1600, 2400), payload)
    small = cv2.resize(marked, (1080, 720), interpolation=cv2.INTER_AREA)[20:-20, 20:-20]
    copy = cv2.imdecode(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])[1],
                        cv2.IMREAD_UNCHANGED)
    assert PERIOD_MIN_PIXELS <= copy.shape[0] * copy.shape[1] < 2_100_000
    run = _Search(read_luma(copy), normalize_key(None))
    run.template = {"locks": []}
    assert run.self_reference()
    best = next(a for a in run.attempts if a.decoded)
    assert best.evaluation.result.payload == payload
    assert abs(best.geometry.scale_y - 0.9) < 3e-3  # the coarse layer's grid: 2 x 0.45


@pytest.fixture(scope="module")
def resized_small(photo_factory):
    """A 512x512 photo marked, resized x0.75 (a 384x384 copy), and the same copy of
    the unmarked photo."""
    img = photo_factory("coffee", 512, 512)
    payload = provmark.Payload(4242, 123456789, 2)
    marked = provmark.embed(img, payload, key=KEY)

    def copy(a):
        return np.ascontiguousarray(cv2.resize(a, (384, 384), interpolation=cv2.INTER_AREA))
    return copy(marked), copy(img), payload


def _off_estimate(scale, rotation=0.5, error=(1.014, 0.987)):
    """An estimate of an isotropic resize ``scale`` some 1.4% and half a degree off
    (as the magnitude search's are when an image's own spectral peaks mislead it)."""
    from provmark._sync import hypothesis_matrix

    a = hypothesis_matrix(1.0, rotation) @ np.diag([scale * error[0], scale * error[1]])
    return _template.AffineEstimate(a, 0.0, 0.0, 0.0, 0.0, 1).with_matrix(a)


def test_coherent_search_finds_the_geometry_near_an_estimate_that_does_not_lock(resized_small):
    """From an estimate too far off for the lock on a resampled plane, the coherent
    search scores the template's phases over the grid around it and returns a
    geometry that locks; an unmarked copy scores under COHERENT_Z from there."""
    from provmark import _detect

    marked, plain, _ = resized_small
    truth = np.diag([0.75, 0.75])
    start = _off_estimate(0.75).matrix
    y = read_luma(marked)
    assert _detect._window_lock_z(y, KEY, start, 1, 512) < _detect.LOCK_Z
    spectrum = _template.template_estimates(y, KEY, 1)[1]
    z, best, hypotheses = _template.coherent_search(spectrum, KEY, _template.coherent_grid(start[None]), 1)
    assert z[0] >= _detect.COHERENT_Z
    assert np.abs(best[0] - truth).max() < 0.006 * 0.75  # within the grid's half step
    assert _detect._window_lock_z(y, KEY, best[0], 1, 512) >= 2 * _detect.LOCK_Z
    grid = len(_template.COHERENT_SCALES) ** 2 * len(_template.COHERENT_ROTATIONS)
    assert hypotheses == grid * 9 * _template.COHERENT_ORIGINS
    plain_spectrum = _template.template_estimates(read_luma(plain), KEY, 1)[1]
    assert _template.coherent_search(plain_spectrum, KEY, _template.coherent_grid(start[None]),
                                   1)[0][0] < _detect.COHERENT_Z


def test_the_coherent_grid_is_centred_on_the_estimate():
    a = _off_estimate(1.3, rotation=-2.0).matrix
    grid = _template.coherent_grid(np.stack([a, np.eye(2)]))
    g = len(_template.COHERENT_SCALES) ** 2 * len(_template.COHERENT_ROTATIONS)
    assert grid.shape == (2, g, 2, 2)
    np.testing.assert_allclose(grid[0, g // 2], a, atol=1e-12)
    np.testing.assert_allclose(grid[1, g // 2], np.eye(2), atol=1e-12)
    scales = [_template._scales_rotation(m) for m in grid[0]]
    assert min(s[0] for s in scales) == pytest.approx(1.3 * 1.014 * (1 + min(_template.COHERENT_SCALES)))
    assert max(s[2] for s in scales) == pytest.approx(-2.0 + max(_template.COHERENT_ROTATIONS))


def test_detect_reads_a_copy_whose_estimates_are_a_little_off(resized_small, monkeypatch):
    """When every magnitude estimate is 1.4% and half a degree off (no lock, no
    climb), the coherent stage finds the geometry and decodes; without that stage
    the copy reads nothing, and an unmarked copy reads nothing with it."""
    from provmark import _detect

    marked, plain, payload = resized_small
    real = _template.template_estimates

    def misled(y, key, top=1):
        estimates, spectrum = real(y, key, top)
        return [_off_estimate(0.75)] + [e for e in estimates
                                        if abs(e.scale_y / 0.75 - 1) > 0.05][:top - 1], spectrum

    monkeypatch.setattr(_detect, "template_estimates", misled)
    det = provmark.detect(marked, key=KEY)
    assert det.payload == payload and det.found
    assert det.details["template"]["coherent"][0] >= _detect.COHERENT_Z
    assert det.details["template"]["used"] and det.scale == pytest.approx(0.75, abs=0.004)
    from provmark.cli import _explain

    said: list[str] = []
    _explain(det, say=said.append)
    assert any("coherent search" in line for line in said), said
    assert not any("aligned grid decoded" in line for line in said), said
    assert provmark.detect(plain, key=KEY).payload is None
    monkeypatch.setattr(_detect._Search, "coherent_estimates", lambda self: False)
    monkeypatch.setattr(_detect._Search, "coherent_scales", lambda self: False)
    monkeypatch.setattr(_detect._Search, "coherent_uncropped", lambda self: False)
    monkeypatch.setattr(_detect._Search, "pilot_scales", lambda self: False)
    monkeypatch.setattr(_detect._Search, "pilot_rotations", lambda self: False)
    assert provmark.detect(marked, key=KEY).payload is None


def test_the_scale_sweep_reads_a_resize_whose_estimates_are_all_wrong(resized_small, monkeypatch):
    """With no estimate near the truth (the magnitude search's all wrong, as on small
    UI screenshots), the coherent scale sweep's best scale is the resize's; it locks
    and decodes. An unmarked copy reads nothing, and the sweep's hypotheses are
    counted in the bound."""
    from provmark import _detect

    marked, plain, payload = resized_small
    real = _template.template_estimates

    def wrong(y, key, top=1):
        estimates, spectrum = real(y, key, top)
        return [e for e in estimates if abs(e.scale_y / 0.75 - 1) > 0.05][:top], spectrum

    monkeypatch.setattr(_detect, "template_estimates", wrong)
    det = provmark.detect(marked, key=KEY)
    assert det.payload == payload and det.found
    assert det.details["template"]["coherent_scales"][0] >= _detect.SCALE_SWEEP_LOCK_Z
    assert det.scale == pytest.approx(0.75, abs=0.004)
    from provmark.cli import _explain

    said: list[str] = []
    _explain(det, say=said.append)
    assert any("coherent sweep" in line for line in said), said
    unmarked = provmark.detect(plain, key=KEY)
    assert unmarked.payload is None
    swept = sum(g.shape[0] * g.shape[1] for _, g in _template.scale_sweep_grids(plain.shape[:2]))
    assert unmarked.hypotheses > swept * 9 * _template.COHERENT_ORIGINS


def test_the_scale_sweep_reads_a_small_image_shown_as_a_screenshot(photo_factory, monkeypatch):
    """The screenshot chain shows a 288-px-wide image at 1280 px (x4.44) and saves it as
    JPEG 80: with the magnitude estimates all wrong (as on im-bluebells and im-julia-set
    in the corpus, x3.2-3.3), the coherent sweep reaches that scale (its range goes to
    5.0: a 256-px image at 1280) and decodes; under the former 3.0 ceiling it did not.
    (Not every small image's screenshot scores: see benchmarks/RESULTS.md, session 15.)"""
    from provmark import _detect

    img = photo_factory("coffee", 288, 384)  # width, height
    payload = provmark.Payload(4242, 123456789, 2)
    from provmark import attacks

    shot = attacks.screenshot(provmark.embed(img, payload, key=KEY))
    scale = 1280 / img.shape[1]
    real = _template.template_estimates

    def wrong(y, key, top=1):
        estimates, spectrum = real(y, key, top)
        return [e for e in estimates if abs(e.scale_y / scale - 1) > 0.05][:top], spectrum

    monkeypatch.setattr(_detect, "template_estimates", wrong)
    det = provmark.detect(shot, key=KEY)
    assert det.payload == payload and det.found
    assert det.scale == pytest.approx(scale, rel=0.004)
    assert det.details["template"]["coherent_scales"][0] >= _detect.SCALE_SWEEP_LOCK_Z
    monkeypatch.setattr(_template, "SCALE_SWEEP_RANGE", (0.4, 3.0))  # the former ceiling
    # (the enlargement's interpolation lines read this copy too, since session 23)
    assert provmark.detect(shot, key=KEY).details["template"]["swept"] == "enlargements"
    monkeypatch.setattr(_detect._Search, "enlargements", lambda self: False)
    assert provmark.detect(shot, key=KEY).payload is None


@pytest.fixture(scope="module")
def rotated_small(photo_factory):
    """A 384x384 photo marked, rotated 2 degrees and cropped to its valid area (a
    copy of about 356x356), and the same copy of the unmarked photo."""
    from provmark import attacks

    img = photo_factory("astronaut", 384, 384)
    payload = provmark.Payload(777, 5550123, 3)
    marked = provmark.embed(img, payload, key=KEY)
    return (attacks.rotate(marked, angle=2.0, crop=True), attacks.rotate(img, angle=2.0, crop=True),
            payload)


def test_the_rotation_sweep_reads_a_rotation_whose_estimates_are_all_wrong(rotated_small,
                                                                            monkeypatch):
    """With no estimate near the truth (as on small UI screenshots, a fractal, a night
    map in the corpus), the coherent rotation sweep's best rotation is within its step
    of the truth; it locks (climbing if it falls short) and decodes. Without the stage
    the copy reads nothing; an unmarked copy reads nothing with it, and the sweep's
    hypotheses are counted in the bound."""
    from provmark import _detect

    marked, plain, payload = rotated_small
    real = _template.template_estimates

    def wrong(y, key, top=1):
        estimates, spectrum = real(y, key, top)
        return [e for e in estimates if abs(e.rotation - 2.0) > 1.0][:top], spectrum

    monkeypatch.setattr(_detect, "template_estimates", wrong)
    det = provmark.detect(marked, key=KEY)
    assert det.payload == payload and det.found
    assert det.details["template"]["coherent_rotations"][0] >= _detect.ROTATION_SWEEP_LOCK_Z
    assert det.rotation == pytest.approx(2.0, abs=0.15) and det.scale == pytest.approx(1.0, abs=0.004)
    from provmark.cli import _explain

    said: list[str] = []
    _explain(det, say=said.append)
    assert any("coherent sweep of rotations" in line for line in said), said
    unmarked = provmark.detect(plain, key=KEY)
    assert unmarked.payload is None
    spectrum = real(read_luma(plain), KEY, 1)[1]
    swept = _template.rotation_sweep_grids(spectrum, 1)
    assert unmarked.hypotheses > swept.shape[0] * swept.shape[1] * 9 * _template.COHERENT_ORIGINS
    monkeypatch.setattr(_detect._Search, "coherent_rotations", lambda self: False)
    assert provmark.detect(marked, key=KEY).payload is None


def test_the_rotation_sweep_steps_by_the_window(rotated_small):
    """Rotations from -MAX_ROTATION to +MAX_ROTATION about scale 1, 0 among them, in
    steps that move the template's farthest peak half a bin: twice as fine on a
    window twice as large, and twice as coarse for the next lattice factor."""
    plain = rotated_small[1]
    spectrum = _template.template_estimates(read_luma(plain), KEY, 1)[1]
    grids = _template.rotation_sweep_grids(spectrum, 1)
    assert grids.shape[1:] == (_template.SCALE_SWEEP_BLOCK, 2, 2)
    m = grids.reshape(-1, 2, 2)
    np.testing.assert_allclose(np.einsum("nij,nkj->nik", m, m), np.broadcast_to(np.eye(2), m.shape),
                               atol=1e-12)  # rotations, scale 1
    angles = np.unique(np.round(np.degrees(np.arctan2(m[:, 1, 0], m[:, 0, 0])), 9))
    step = np.diff(angles)
    np.testing.assert_allclose(step, step[0])
    assert angles[0] <= -_template.MAX_ROTATION < angles[0] + step[0]
    assert angles[-1] >= _template.MAX_ROTATION > angles[-1] - step[0]
    assert np.isclose(angles, 0.0).any()
    reach = _template.BAND[1] * spectrum.down * max(spectrum.shape)  # bins
    assert np.deg2rad(step[0]) * reach == pytest.approx(_template.ROTATION_SWEEP_STEP_BINS)
    bigger = _template.CoherentSpectrum(spectrum.values, spectrum.noise, spectrum.down,
                                        tuple(2 * d for d in spectrum.shape))
    for spec, factor, ratio in ((bigger, 1, 0.5), (spectrum, 2, 2.0)):
        a = _template.rotation_sweep_grids(spec, factor).reshape(-1, 2, 2)
        t = np.unique(np.round(np.degrees(np.arctan2(a[:, 1, 0], a[:, 0, 0])), 9))
        assert np.diff(t)[0] == pytest.approx(ratio * step[0])


def test_the_scale_sweep_covers_its_range_by_lattice_factor():
    lo, hi = _template.SCALE_SWEEP_RANGE
    for shape in [(384, 384), (1080, 1920), (3000, 4000)]:
        grids = _template.scale_sweep_grids(shape)
        scales = np.concatenate([g[..., 0, 0].ravel() for _, g in grids])
        assert scales.min() == pytest.approx(lo) and hi / _template.SCALE_SWEEP_RATIO <= scales.max() < hi
        for f, g in grids:
            assert g.shape[1:] == (_template.SCALE_SWEEP_BLOCK, 2, 2)
            np.testing.assert_allclose(g[..., 0, 1], 0.0)
            np.testing.assert_allclose(g[..., 0, 0], g[..., 1, 1])
            # every scale's source (the copy over the resize) carries that factor
            assert all(_template.template_factor(int(shape[0] / r), int(shape[1] / r)) == f
                       for r in g[..., 0, 0].ravel())
    assert {f for f, _ in _template.scale_sweep_grids((3000, 4000))} == {1, 2, 4}


# --------------------------------------------------------------------------- #
# The uncropped sweep: both scales of a copy resized whole, at its known origin

ASPECT = (960 / 1080, 1280 / 1920)  # the aspect change (height, width)


@pytest.fixture(scope="module")
def squashed_small(photo_factory):
    """A 384x384 photo marked and squashed to 342x256 (the issue's aspect change),
    and the same copy of the unmarked photo."""
    from provmark import attacks

    img = photo_factory("astronaut", 384, 384)
    payload = provmark.Payload(4242, 99887766, 2)
    marked = provmark.embed(img, payload, key=KEY)
    return attacks.resize(marked, scale=ASPECT), attacks.resize(img, scale=ASPECT), payload


def test_the_uncropped_sweep_reads_an_aspect_change_whose_estimates_are_all_wrong(
        squashed_small, monkeypatch):
    """With no estimate near the truth (as on small UI screenshots and a night map in
    the corpus), the uncropped sweep finds both scales, its aligned grid shows the
    pilot and the search around it decodes. Without the stage the copy reads nothing;
    an unmarked copy reads nothing with it, its aligned grids show no pilot, and the
    sweep's hypotheses are counted in the bound."""
    from provmark import _detect
    from provmark.cli import _explain

    marked, plain, payload = squashed_small
    sy, sx = marked.shape[0] / 384, marked.shape[1] / 384
    real = _template.template_estimates

    def wrong(y, key, top=1):
        estimates, spectrum = real(y, key, top)
        return [e for e in estimates if abs(e.scale_y / sy - 1) > 0.05
                or abs(e.scale_x / sx - 1) > 0.05][:top], spectrum

    monkeypatch.setattr(_detect, "template_estimates", wrong)
    det = provmark.detect(marked, key=KEY)
    assert det.payload == payload and det.found
    report = det.details["template"]
    assert report["swept"] == "coherent_uncropped"
    hit = max(report["coherent_uncropped"], key=lambda h: h["pilot_z"])
    assert hit["pilot_z"] >= _detect.UNCROPPED_PILOT_Z
    assert hit["scale_y"] == pytest.approx(sy, rel=0.004)
    assert hit["scale_x"] == pytest.approx(sx, rel=0.004)
    said: list[str] = []
    _explain(det, say=said.append)
    assert any("resizes of the whole, uncropped image" in line for line in said), said

    unmarked = provmark.detect(plain, key=KEY)
    assert unmarked.payload is None and not unmarked.found
    tried = unmarked.details["template"]["coherent_uncropped"]
    assert tried and all(h["pilot_z"] < _detect.UNCROPPED_PILOT_Z for h in tried)
    y = read_luma(plain)
    swept = _template.uncropped_sweep(real(y, KEY, 1)[1], KEY, y.shape, 1)[1]
    assert swept > 10_000 and unmarked.hypotheses > swept
    monkeypatch.setattr(_detect._Search, "coherent_uncropped", lambda self: False)
    assert provmark.detect(marked, key=KEY).payload is None


@pytest.mark.parametrize("shape", [(256, 342), (1080, 1920), (2000, 3000)])
def test_the_uncropped_sweep_covers_whole_sources_of_each_factor(shape):
    """Each factor's hypotheses step evenly in v = 1 / s on each axis, by a quarter
    cycle of the farthest peak at the window's centre; a pair (vy, vx) is scored
    exactly when its scales are at most UNCROPPED_MAX_ASPECT apart and its source,
    the copy times (vy, vx), is at least a tile a side and carries that factor."""
    from provmark._layout import TILE_PX

    window = tuple(min(d, _template.MAX_SPECTRUM_SIDE) for d in shape)
    origin = tuple((d - w) // 2 for d, w in zip(shape, window))
    spec = _template.CoherentSpectrum(np.zeros((window[0], window[1] // 2 + 1), np.complex64),
                                      np.ones((window[0], window[1] // 2 + 1), np.float32),
                                      1, window, origin)
    lo_s, hi_s = _template.SCALE_SWEEP_RANGE
    scored = 0
    for factor in (1, 2, 4):
        vy, vx, lo, hi = _template.uncropped_hypotheses(spec, shape, factor)
        for v, axis in ((vy, 0), (vx, 1)):
            if len(v) > 1:
                centre = origin[axis] + window[axis] / 2
                assert np.diff(v) == pytest.approx(
                    _template.UNCROPPED_STEP_CYCLES * factor / (_template.BAND[1] * centre))
        if not len(vy) or not len(vx):
            continue
        rows, cols = np.arange(0, len(vy), 5), np.arange(0, len(vx), 5)
        inside = (cols[None, :] >= lo[rows, None]) & (cols[None, :] < hi[rows, None])
        hy = np.broadcast_to(shape[0] * vy[rows, None], inside.shape)
        hx = np.broadcast_to(shape[1] * vx[None, cols], inside.shape)
        ratio = np.broadcast_to(vx[None, cols] / vy[rows, None], inside.shape)
        carried = np.vectorize(lambda a, b: _template.template_factor(int(a), int(b)))(hy, hx)
        wanted = ((ratio <= _template.UNCROPPED_MAX_ASPECT)
                  & (ratio >= 1 / _template.UNCROPPED_MAX_ASPECT)
                  & (np.minimum(hy, hx) >= TILE_PX) & (carried == factor))
        # (a source within a fraction of a pixel of a threshold may fall either way)
        assert (inside != wanted).mean() < 0.002
        assert lo_s * 0.999 <= (1 / vy).min() and (1 / vy).max() <= hi_s
        scored += int(inside.sum())
    assert scored > 0


def test_warp_from_origin_puts_the_source_origin_at_the_plane_origin():
    """A whole source resized by cv2.resize comes back pixel for pixel, and near its
    origin also under a scale a little off whose plane is a fraction of a pixel
    larger than the source (warp_to_grid, centre to centre, is then off by that
    fraction's half near the origin)."""
    rng = np.random.default_rng(5)
    src = cv2.GaussianBlur(rng.normal(0, 20, (300, 400)).astype(np.float32), (0, 0), 2.0)
    copy = cv2.resize(src, (267, 331), interpolation=cv2.INTER_CUBIC)
    level = np.abs(src).mean()
    a = np.diag([331 / 300, 267 / 400])
    back = _template.warp_from_origin(copy, a)
    assert back.shape == _template.grid_shape(copy.shape, a) == (300, 400)
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(back[inner] - src[inner]).mean() < 0.03 * level
    np.testing.assert_array_equal(_template.warp_from_origin(copy, a, 128), back[:128, :128])
    off = np.diag([331 / 300.4, 267 / 400.4])  # a plane of 301 x 401
    corner = (slice(4, 64), slice(4, 64))
    err = np.abs(_template.warp_from_origin(copy, off)[corner] - src[corner]).mean()
    assert err < 0.05 * level
    assert err < 0.25 * np.abs(_template.warp_to_grid(copy, off)[corner] - src[corner]).mean()


def _check_pilot_gates(plain, marked_copy, stage, tries, gate_z, monkeypatch):
    """The unmarked copy ``plain`` reads nothing, each of its ``tries`` (a number, or a
    range of them) gates of
    ``stage`` stays under ``gate_z`` and every grid phase they scored is counted;
    without the stage the marked copy reads nothing either."""
    from provmark import _detect

    unmarked = provmark.detect(plain, key=KEY)
    assert unmarked.payload is None and not unmarked.found
    gates = unmarked.details["template"][stage]
    assert len(gates) in (tries if isinstance(tries, range) else (tries,))
    tries = len(gates)
    assert all(g["pilot_z"] < gate_z for g in gates)
    monkeypatch.setattr(_detect._Search, stage, lambda self: False)
    without = provmark.detect(plain, key=KEY)
    # each gate scores at least 16 pixel phases, each at every tile phase
    assert unmarked.hypotheses - without.hypotheses >= tries * 16 * _detect.DITHER_BLOCKS**2
    assert provmark.detect(marked_copy, key=KEY).payload is None


def _gated_detection(copy, payload, stage, gate_z, monkeypatch, explained, off=()):
    """``copy`` read with every template lock refused and the stages ``off`` off
    decodes ``payload`` through the pilot gates of ``stage``, one of which reached
    ``gate_z``, and ``--explain`` says so (``explained`` in a line); returns the
    detection and its best gate."""
    from provmark import _detect
    from provmark.cli import _explain

    monkeypatch.setattr(_detect, "LOCK_Z", float("inf"))
    for other in off:
        monkeypatch.setattr(_detect._Search, other, lambda self: False)
    det = provmark.detect(copy, key=KEY)
    assert det.payload == payload and det.found
    assert det.false_alarm_probability <= 1e-9
    report = det.details["template"]
    assert report["swept"] == stage
    hit = max(report[stage], key=lambda h: h["pilot_z"])
    assert hit["pilot_z"] >= gate_z
    said: list[str] = []
    _explain(det, say=said.append)
    assert any(explained in line for line in said), said
    return det, hit


@pytest.mark.parametrize("width, border", [(400, 16), (900, 40)])
def test_the_pilot_reads_a_screenshot_whose_template_does_not_lock(
        photo_factory, width, border, monkeypatch):
    """A screenshot (resized, then cropped at the border, JPEG) of a marked 512x512
    photo whose template locks nowhere (as a weak template's does on the corpus's
    screenshots: every lock refused here): the pilot, read at the coherent scale
    sweep's best scales, finds the scale and the search around it decodes. Without the
    stage the copy reads nothing; the unmarked screenshot reads nothing with it, none
    of its gates reaches SCALE_PILOT_Z, and every grid phase its gates scored is
    counted in the bound."""
    from provmark import _detect, attacks

    img = photo_factory("coffee", 512, 512)
    payload = provmark.Payload(4242, 123456789, 2)
    marked = provmark.embed(img, payload, key=KEY)
    shot = attacks.screenshot(marked, width=width, border=border, quality=90)
    plain = attacks.screenshot(img, width=width, border=border, quality=90)
    # (the uncropped sweep reads the template's phases without a lock; an enlargement's
    # interpolation lines may give the scale first)
    _, hit = _gated_detection(shot, payload, "pilot_scales", _detect.SCALE_PILOT_Z,
                              monkeypatch, "reading the pilot at the coherent sweep's best scales",
                              off=("coherent_uncropped", "enlargements"))
    assert hit["scale"] == pytest.approx(width / 512, rel=0.01)

    _check_pilot_gates(plain, shot, "pilot_scales", _detect.SCALE_PILOT_TRIES,
                       _detect.SCALE_PILOT_Z, monkeypatch)


@pytest.mark.parametrize("name, width, height", [("coffee", 384, 352), ("chelsea", 420, 315)])
def test_an_enlarged_screenshot_is_read_at_the_scale_its_interpolation_shows(
        photo_factory, name, width, height, monkeypatch):
    """A small marked photo enlarged x3.2-3.3 into a 1280-px screenshot (40 px of
    border cropped, JPEG 80) whose template locks nowhere and whose scale the coherent
    sweeps miss (as the corpus's 360-500 px screenshots' did): the interpolation's
    lines give the scale within 0.1%, the pilot there shows the mark and the search
    around it decodes. Without the stage the copy reads nothing; the unmarked
    screenshot reads nothing with it, none of its gates reaches ENLARGEMENT_PILOT_Z,
    and every grid phase they scored is counted."""
    from provmark import _detect, attacks

    img = photo_factory(name, width, height)
    payload = provmark.Payload(4242, 123456789, 2)
    marked = provmark.embed(img, payload, key=KEY)
    shot = attacks.screenshot(marked, width=1280, border=40, quality=80)
    plain = attacks.screenshot(img, width=1280, border=40, quality=80)
    # (the uncropped sweep and the scale gates read phases without a lock)
    det, hit = _gated_detection(shot, payload, "enlargements", _detect.ENLARGEMENT_PILOT_Z,
                                monkeypatch, "interpolation",
                                off=("coherent_uncropped", "pilot_scales"))
    assert hit["scale_x"] == pytest.approx(1280 / width, rel=1e-3)
    assert det.scale == pytest.approx(1280 / width, rel=0.01)

    _check_pilot_gates(plain, shot, "enlargements", _detect.ENLARGEMENT_TRIES,
                       _detect.ENLARGEMENT_PILOT_Z, monkeypatch)


def test_a_paired_enlargement_is_gated_on_the_larger_window(photo_factory, monkeypatch):
    """Where only the paired reading (one axis's line, the same frequency weaker on
    the other: a page of text) offers an enlargement, it is gated on up to
    ENLARGEMENT_WINDOW pixels at every PAIRED_STEP-th grid phase and reported as
    paired; where both axes' lines offer it, the gate keeps its 512 px. The copy here
    is a screenshot whose lines read on both axes, with each reading replaced in turn."""
    from provmark import _detect, _resampling, attacks

    img = photo_factory("coffee", 384, 352)
    payload = provmark.Payload(4242, 123456789, 2)
    marked = provmark.embed(img, payload, key=KEY)
    shot = attacks.screenshot(marked, width=1280, border=40, quality=80)
    truth = np.diag([1280 / 384] * 2)
    gates = []
    real_gate = _detect._Search._pilot_gate

    def spy(self, name, a, about, around, gate_z, step=_detect.SCALE_PILOT_STEP,
            window=_detect.SCALE_PILOT_WINDOW):
        if name == "enlargements":
            gates.append((step, window))
        return real_gate(self, name, a, about, around, gate_z, step, window)

    monkeypatch.setattr(_detect._Search, "_pilot_gate", spy)
    monkeypatch.setattr(_resampling, "enlargement_readings", lambda y: ([], [truth]))
    det, hit = _gated_detection(shot, payload, "enlargements", _detect.ENLARGEMENT_PILOT_Z,
                                monkeypatch, "interpolation",
                                off=("coherent_uncropped", "pilot_scales"))
    assert hit.get("paired") is True
    assert gates == [(_detect.PAIRED_STEP, _detect.ENLARGEMENT_WINDOW)]

    gates.clear()
    monkeypatch.setattr(_resampling, "enlargement_readings", lambda y: ([truth], []))
    det = provmark.detect(shot, key=KEY)
    assert det.payload == payload
    assert gates == [(1, _detect.SCALE_PILOT_WINDOW)]
    assert "paired" not in det.details["template"]["enlargements"][0]


@pytest.mark.parametrize("angle", [2.0, -5.0])
def test_the_pilot_reads_a_rotation_whose_template_does_not_lock(photo_factory, angle,
                                                                  monkeypatch):
    """A tilted and cropped copy of a marked 512x512 photo whose template locks nowhere
    (every lock refused, as a small UI screenshot's weak template locks nowhere on the
    corpus): the pilot, read at the coherent rotation sweep's best rotations, finds the
    rotation and the search around it decodes. Without the stage the copy reads
    nothing; the unmarked copy reads nothing with it, none of its gates reaches
    ROTATION_PILOT_Z, and every grid phase its gates scored is counted."""
    from provmark import _detect, attacks

    img = photo_factory("coffee", 512, 512)
    payload = provmark.Payload(4242, 123456789, 2)
    marked = provmark.embed(img, payload, key=KEY)
    tilted = attacks.rotate(marked, angle=angle, crop=True)
    plain = attacks.rotate(img, angle=angle, crop=True)
    # (the uncropped sweep and the scale gates read phases without a lock)
    det, hit = _gated_detection(tilted, payload, "pilot_rotations", _detect.ROTATION_PILOT_Z,
                                monkeypatch, "coherent rotation sweep's best rotations",
                                off=("coherent_uncropped", "pilot_scales"))
    assert hit["rotation"] == pytest.approx(angle, abs=0.4)
    assert det.rotation == pytest.approx(angle, abs=0.2)

    _check_pilot_gates(plain, tilted, "pilot_rotations", _detect.ROTATION_PILOT_TRIES,
                       _detect.ROTATION_PILOT_Z, monkeypatch)


@pytest.mark.parametrize("angle", [5.0, -2.0])
def test_a_tilted_dialog_is_read_at_its_straight_edges_rotation(image_factory, angle,
                                                                 monkeypatch):
    """A tilted and cropped copy of a marked 380x360 dialog whose template locks
    nowhere and whose rotation the template's sweeps do not give (as the corpus's small
    UI screenshots and buildings tilted by 5 degrees): its straight edges give the
    rotation, the pilot there shows the mark and the search around it decodes.
    Without the stage the copy reads nothing; the unmarked copy reads nothing with it,
    none of its gates reaches EDGE_ROTATION_PILOT_Z, and every grid phase they scored
    is counted."""
    from provmark import _detect, attacks

    img = image_factory["dialog"](360, 380)
    payload = provmark.Payload(4242, 123456789, 2)
    marked = provmark.embed(img, payload, key=KEY)
    tilted = attacks.rotate(marked, angle=angle, crop=True)
    plain = attacks.rotate(img, angle=angle, crop=True)
    # (the uncropped sweep and the scale and rotation sweeps' gates read phases
    # without a lock)
    off = ("coherent_uncropped", "pilot_scales", "pilot_rotations")
    det, hit = _gated_detection(tilted, payload, "edge_rotation",
                                _detect.EDGE_ROTATION_PILOT_Z, monkeypatch, "straight edges",
                                off=off)
    assert hit["rotation"] == pytest.approx(angle, abs=0.15)
    assert det.rotation == pytest.approx(angle, abs=0.2)

    # (the gates beside the estimate run only where the first reads near the mark)
    _check_pilot_gates(plain, tilted, "edge_rotation",
                       range(1, len(_detect.EDGE_ROTATION_GATES) + 1),
                       _detect.EDGE_ROTATION_PILOT_Z, monkeypatch)


def _text_page(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Rows of dark words on white paper (a document or help page: the mark lives
    near the ink only)."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.full((height, width, 3), 255, np.uint8)
    for row in range(40, height - 30, 22):
        x = 30
        while x < width - 120:
            word = "".join(chr(int(c)) for c in rng.integers(97, 123, int(rng.integers(2, 9))))
            cv2.putText(img, word, (x, row), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1,
                        cv2.LINE_AA)
            x += 12 * len(word) + 10
    return img


def test_the_edge_gate_reads_a_large_window_of_a_tilted_page(monkeypatch):
    """A 940x1300 text page tilted 1 degree and cropped, read at its straight edges'
    rotation: the gate reads up to EDGE_ROTATION_WINDOW (1024) pixels a side, where a
    512-px window (the sweeps' gates') sees a quarter of the ink and reads the pilot
    much lower (on the corpus's help page: 4.6-6.4 against 6.6-8.7, under and over the
    gate's 6.0)."""
    from provmark import _detect, attacks

    assert _detect.EDGE_ROTATION_WINDOW == 1024
    payload = provmark.Payload(4242, 123456789, 2)
    marked = provmark.embed(_text_page(940, 1300), payload, key="k1")
    tilted = attacks.rotate(marked, angle=1.0, crop=True)
    off = ("coherent_uncropped", "pilot_scales", "pilot_rotations")
    monkeypatch.setattr(_detect, "LOCK_Z", float("inf"))
    for other in off:
        monkeypatch.setattr(_detect._Search, other, lambda self: False)
    read = {}
    for window in (512, 1024):
        monkeypatch.setattr(_detect, "EDGE_ROTATION_WINDOW", window)
        det = provmark.detect(tilted, key="k1")
        assert det.payload == payload and det.details["template"]["swept"] == "edge_rotation"
        read[window] = det.details["template"]["edge_rotation"][0]["pilot_z"]
    assert read[1024] >= read[512] + 3.0, read


def test_plane_and_copy_positions_map_both_ways():
    """The arithmetic that carries the pilot's grid from the gate's window to the
    search's planes: a point mapped to the copy and back lands where it started."""
    from provmark import _detect
    from provmark._sync import hypothesis_matrix

    a = hypothesis_matrix(1.0, 1.5) @ np.diag([1.7, 1.6])
    point = np.array([201.0, 77.0])
    copy = _detect._plane_to_copy((800, 1200), (512, 512), a, point)
    assert _detect._copy_to_plane((800, 1200), (512, 512), a, copy) == (201, 77)
    # the planes' centres map to the copy's centre
    assert np.allclose(_detect._plane_to_copy((800, 1200), (512, 300), a, [255.5, 149.5]),
                       [399.5, 599.5])


def test_refine_scales_finds_the_true_scale_between_the_sweeps_steps(resized_small):
    """The sweep's blocks re-scored 10 times finer: the one nearest a resize x0.75 tops
    the re-ranking, within the sweep's step of the truth (the score reads the nearest
    spectral bin, which on a 384-px copy fixes a scale to about 0.5%); every refined
    hypothesis is counted."""
    from provmark import _detect

    marked, _, _ = resized_small
    y = read_luma(marked)
    run = _detect._Search(y, KEY)
    run.lock_on_copy()
    run.resample_estimates()
    run.coherent_scales()
    swept = run._swept_best["coherent_scales"][:_detect.SCALE_PILOT_REFINE]
    refined, n = _template.refine_scales(run._spectrum, KEY, swept)
    # each refined scale is scored at the coherent search's candidate origins
    per_origin = len(swept) * _template.SCALE_REFINE_STEPS
    assert n >= per_origin and n % per_origin == 0
    assert [c[0] for c in refined] == sorted((c[0] for c in refined), reverse=True)
    assert refined[0][2][0, 0] == pytest.approx(0.75, rel=0.01)
    assert refined[0][0] >= max(c[0] for c in swept)
