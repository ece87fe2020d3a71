"""The coarse layer (embedder revision 3): a second version-1 mark written on the
image reduced by 2 under the fine mark of smooth images of at least 512 px a side,
and read by the detector on the copy reduced by 2, alone and together with the fine
mark (src/provmark/_embed.py ``_with_coarse_layer``, src/provmark/_detect.py
``_Search.coarse_layer`` and ``_Search.both_layers``)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

import provmark
from provmark import Payload, attacks
from provmark._detect import coarse_plane, read_coarse, read_luma
from provmark._embed import COARSE_MIN_SIDE, MIN_SSIM, ssim
from provmark._keys import normalize_key

pytestmark = pytest.mark.usefixtures("numba_one_thread")

PAYLOAD = Payload(provider=7, content_id=42, label=1)
KEY = "coarse-layer test key"


@pytest.fixture(scope="module", autouse=True)
def _no_extension():
    """These tests are about the coarse layer: the extension carriers (docs/format.md
    5.8), which such small smooth images also get, would read some of their copies
    first (tests/test_extension.py)."""
    from provmark import _embed

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_embed, "EXTENSION_MAX_PIXELS", 0)
        yield


def smooth_sky(height: int, width: int, grain: float = 6.0, seed: int = 0) -> np.ndarray:
    """A blue vertical gradient with a faint, slightly blurred grain: smooth enough
    that the fine mark stays far above the PSNR floor (about 50 dB) and does not
    survive WebP 50, as on the corpus' smooth wallpapers."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 100 + 60 * yy / height + 15 * np.sin(xx / width * 3)
    rgb = np.stack([base * 0.55, base * 0.8, base + 50], -1)
    grain_map = cv2.GaussianBlur(rng.normal(0, grain, (height, width)).astype(np.float32),
                                 (0, 0), 0.7)
    return np.clip(rgb + grain_map[..., None] + 0.5, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def sky_marked():
    img = smooth_sky(512, 768)
    return img, provmark.embed(img, PAYLOAD, key=KEY)


def test_coarse_plane_is_the_mean_of_every_two_by_two_cell():
    y = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    half = coarse_plane(y)
    assert half.shape == (2, 3) and half.dtype == np.float32
    assert half[1, 2] == pytest.approx(np.mean(y[2:4, 4:6]))
    # INTER_AREA's exact halving, which the embedder uses, is the same mean.
    rgb = np.random.default_rng(1).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    area = cv2.resize(rgb.astype(np.float32), (48, 32), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(coarse_plane(read_luma(rgb)),
                               area @ np.array([0.299, 0.587, 0.114], np.float32), atol=1e-3)


def test_a_smooth_image_gets_the_coarse_layer_within_the_quality_floors(sky_marked):
    img, marked = sky_marked
    assert read_coarse(marked, normalize_key(KEY)) == PAYLOAD
    mse = np.mean((marked.astype(np.float64) - img) ** 2)
    assert 10 * np.log10(255**2 / mse) >= 40.0
    assert ssim(img, marked) >= MIN_SSIM
    # The fine mark is still read on the aligned grid, as without the coarse layer.
    assert provmark.detect(marked, key=KEY, search=False).payload == PAYLOAD


def test_the_coarse_layer_reads_after_webp_where_the_fine_mark_does_not(sky_marked):
    _, marked = sky_marked
    copy = attacks.apply("webp", marked, quality=50)
    assert provmark.detect(copy, key=KEY, search=False).payload is None  # fine mark gone
    det = provmark.detect(copy, key=KEY)
    assert det.found and det.payload == PAYLOAD
    assert det.scale == 2.0 and det.false_alarm_probability <= 1e-9
    assert det.details["layer"] == "coarse"
    assert provmark.detect(marked, key=KEY).details["layer"] == "fine"
    assert provmark.detect(copy, key="another key").payload is None


def test_a_textured_image_gets_no_coarse_layer(image_factory):
    # Noise: the fine mark spends the PSNR budget (about 40 dB) and survives
    # compression by itself.
    noise = image_factory["noise"](512, seed=3)
    marked = provmark.embed(noise, PAYLOAD, key=KEY)
    assert read_coarse(marked, normalize_key(KEY)) is None


def test_an_image_under_the_coarse_size_gets_no_coarse_layer():
    img = smooth_sky(COARSE_MIN_SIDE - 12, 768)
    marked = provmark.embed(img, PAYLOAD, key=KEY)
    assert read_coarse(marked, normalize_key(KEY)) is None
    assert provmark.detect(marked, key=KEY).payload == PAYLOAD


def test_both_layers_are_read_as_one_where_neither_decodes_alone(tmp_path, capsys,
                                                                 monkeypatch):
    """A 512x768 flat artwork at JPEG 43: the fine grid and the coarse plane each
    read a pilot, neither decodes; their observations folded together, each weighed
    by its own pilot, do. (The long lists a strong early pilot affords decode the
    coarse plane alone: they are turned off here, and checked to read it too.)"""
    from test_geometry import _flat_art

    from provmark import _detect
    from provmark._detect import _Search

    # The public key: which copies need the joint reading depends on the key and
    # payload (it is a margin of a few tenths of pilot z, not a guarantee).
    payload = Payload(7, 11, 1)
    marked = provmark.embed(_flat_art(512, 768), payload)
    copy = attacks.apply("jpeg", marked, quality=43)
    assert provmark.detect(copy).payload == payload  # with long lists
    monkeypatch.setattr(_detect, "LONG_LIST_Z", float("inf"))
    det = provmark.detect(copy)
    assert det.found and det.payload == payload and det.false_alarm_probability <= 1e-9
    assert det.details["layer"] == "both" and det.scale == 1.0
    assert det.details["grids_read"] == 3  # fine, coarse, both
    run = _Search(read_luma(copy), normalize_key(None))
    assert not run.coarse_layer() and not any(a.decoded for a in run.attempts)
    assert min(a.evaluation.z for a in run.attempts) >= 2.5
    before = run.hypotheses
    assert run.both_layers() and run.hypotheses == before + 1
    assert provmark.detect(copy, key="another key").payload is None
    # --explain says so
    from provmark.cli import EXIT_OK, main

    path = tmp_path / "art.jpeg43.png"
    Image.fromarray(copy).save(path)
    assert main(["detect", str(path), "--explain"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert "read on both layers at once" in out + err
    # The forensic report draws no tamper map from it: region by region neither layer
    # says anything (a map of the fine grid called nearly all of it "missing").
    import io

    buf = io.BytesIO()
    Image.fromarray(copy).save(buf, "PNG")
    report = provmark.inspect(buf.getvalue(), tamper=True, search=True)
    assert report.detection.payload == payload
    assert not report.tamper_summary["available"]
    assert "read together" in report.tamper_summary["reason"]
    assert not any("missing" in p for p in report.problems)


def test_a_crops_coarse_grid_gives_its_fine_grid():
    """both_near derives the fine grid of a crop from its coarse grid (both layers
    start at the source's origin) and decodes the two together: on a clean crop at an
    odd offset the derived grid is the true one, origin and tile phase."""
    from test_geometry import _flat_art

    from provmark._detect import _Search

    payload = Payload(7, 11, 1)
    marked = provmark.embed(_flat_art(512, 768), payload)
    assert read_coarse(marked, normalize_key(None)) == payload
    y0, x0 = 37, 53
    crop = np.ascontiguousarray(marked[y0:y0 + 400, x0:x0 + 600])
    run = _Search(read_luma(crop), normalize_key(None))
    # The template's tile origin in the crop (its period is a multiple of 64):
    # the coarse layer's 32-px blocks start there too.
    oy, ox = (-y0) % 64, (-x0) % 64
    assert run.coarse_near(oy, ox)  # a clean crop: the coarse plane decodes alone
    before = run.hypotheses
    assert run.both_near(run._coarse_planes[-1], oy % 2, ox % 2)
    both = run.attempts[-1]
    fy, fx = (-y0) % 16, (-x0) % 16
    assert (both.cand.oy, both.cand.ox) == (fy, fx)
    assert (both.cand.ty, both.cand.tx) == (((y0 + fy) // 16) % 32, ((x0 + fx) // 16) % 32)
    assert both.evaluation.result.payload == payload and run.hypotheses > before


def test_both_layers_are_not_read_where_a_pilot_shows_nothing(sky_marked):
    """An unmarked image's (or a wrong key's) pilots read about N(0, 1): the joint
    reading is skipped unless each reaches DECODE_MIN_Z, and costs nothing then."""
    from provmark._detect import _Search

    img, _ = sky_marked
    run = _Search(read_luma(img), normalize_key(KEY))
    run.coarse_layer()
    assert len(run.attempts) == 2 and max(a.evaluation.z for a in run.attempts) < 2.5
    before = run.hypotheses
    assert not run.both_layers()
    assert len(run.attempts) == 2 and run.hypotheses == before


def test_the_coarse_layer_respects_a_higher_psnr_floor():
    img = smooth_sky(512, 768)
    k = normalize_key(KEY)
    marked = provmark.embed(img, PAYLOAD, key=KEY, min_psnr=42.0)
    mse = np.mean((marked.astype(np.float64) - img) ** 2)
    assert 10 * np.log10(255**2 / mse) >= 42.0 and read_coarse(marked, k) == PAYLOAD
    # A floor the fine mark alone does not clear by COARSE_HEADROOM: no coarse layer.
    marked = provmark.embed(img, PAYLOAD, key=KEY, min_psnr=47.0)
    assert read_coarse(marked, k) is None
    assert provmark.detect(marked, key=KEY).payload == PAYLOAD


def test_an_exact_two_times_upscale_is_read_on_the_coarse_plane(photos_256):
    # The coarse stage reads any copy enlarged exactly twice (the fine grid of the
    # source lies on the reduced plane): a 256x256 photo shown at 512x512.
    img = photos_256["astronaut"]
    marked = provmark.embed(img, PAYLOAD, key=KEY)
    big = cv2.resize(marked, (512, 512), interpolation=cv2.INTER_LINEAR)
    det = provmark.detect(big, key=KEY)
    assert det.payload == PAYLOAD and det.scale == 2.0 and det.details["layer"] == "coarse"
    assert det.details["grids_read"] == 2  # the aligned fine grid, then the coarse plane


def test_the_report_says_which_layer_was_read(sky_marked, tmp_path):
    import io

    from PIL import Image

    from provmark._report_html import write_html_report

    _, marked = sky_marked
    for image, coarse in ((marked, False), (attacks.apply("webp", marked, quality=50), True)):
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, "PNG")
        report = provmark.inspect(buf.getvalue(), key=KEY, tamper=False, search=True)
        html = write_html_report(report, image, tmp_path / "r.html").read_text()
        assert ("read on the copy reduced by 2" in html) == coarse
        assert ("relative to the marked original" in html) != coarse


def test_explain_says_the_coarse_layer_was_read(tmp_path, capsys):
    from provmark.cli import EXIT_OK, main

    marked = provmark.embed(smooth_sky(512, 768), PAYLOAD)  # the public key
    path = tmp_path / "sky.webp.png"
    Image.fromarray(attacks.apply("webp", marked, quality=50)).save(path)
    assert main(["detect", str(path), "--explain"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert "read on the copy reduced by 2" in out + err


def test_check_embeddable_says_whether_the_coarse_layer_is_written(image_factory):
    smooth = provmark.check_embeddable(smooth_sky(512, 768))
    assert smooth.ok and smooth.coarse_layer
    assert not any("WebP may erase" in w for w in smooth.warnings)
    noise = provmark.check_embeddable(image_factory["noise"](512, seed=3))
    assert noise.ok and not noise.coarse_layer
    small = provmark.check_embeddable(smooth_sky(384, 600))
    assert small.ok and not small.coarse_layer


def flat_planes(height: int, width: int) -> np.ndarray:
    """Flat-colour artwork (as ukui-city, the corpus' 3640x2400 wallpaper): a dark sky
    with a faint horizontal gradient over two flat areas split by straight edges."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    sky = np.stack([10 + 12 * xx / width, 30 + 10 * xx / width, 80 + 15 * xx / width], -1)
    left = np.array([5, 80, 110], np.float32)
    right = np.array([215, 240, 225], np.float32)
    split = 0.58 * width
    ridge = 0.35 * height + (xx - split) * np.where(xx < split, -0.2, 0.25)
    img = np.where((yy > ridge)[..., None],
                   np.where((xx < split)[..., None], left, right), sky)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def planes_crop_jpeg():
    """A 1280x850 crop at an odd offset of the marked flat artwork, JPEG 50: its fine
    mark is gone (aligned pilot under 1), its coarse layer is not."""
    img = flat_planes(1200, 1800)
    marked = provmark.embed(img, PAYLOAD, key=KEY)
    assert read_coarse(marked, normalize_key(KEY)) == PAYLOAD
    crop = np.ascontiguousarray(marked[37:37 + 850, 53:53 + 1280])
    unmarked = np.ascontiguousarray(img[37:37 + 850, 53:53 + 1280])
    return (attacks.apply("jpeg", crop, quality=50),
            attacks.apply("jpeg", unmarked, quality=50))


@pytest.mark.slow
def test_the_blind_coarse_search_reads_a_crop_of_a_flat_image(planes_crop_jpeg,
                                                                monkeypatch, tmp_path,
                                                                capsys):
    """The blind search of the copy reduced by 2 finds the coarse layer's grid by
    itself; detect reaches it on a crop whose template does not lock (ukui-city has
    none: the embedder gave it up), here by turning that stage off."""
    from provmark._detect import BLIND_COARSE_FLAT_SHARE, _Search, flat_share
    from provmark._sync import search as sync_search

    copy, _ = planes_crop_jpeg
    y = read_luma(copy)
    assert flat_share(y) >= BLIND_COARSE_FLAT_SHARE
    run = _Search(y, normalize_key(KEY))
    assert run.attempts[0].evaluation.z < 2.0  # the fine mark on its aligned grid
    before = run.hypotheses
    assert run.blind_coarse()
    best = next(a for a in run.attempts if a.decoded)
    assert best.evaluation.result.payload == PAYLOAD and best.geometry.scale_y == 2.0
    # every phase searched is counted (the first parity's at least)
    phases = sync_search(coarse_plane(y), normalize_key(KEY), top=1)[1]
    assert run.hypotheses - before >= phases
    det, _ = run.outcome(y.shape)
    assert det.found and det.false_alarm_probability <= 1e-9
    monkeypatch.setattr(_Search, "lock_on_copy",
                        lambda self: setattr(self, "template", {"locks": []}) or False)
    det = provmark.detect(copy, key=KEY)
    assert det.payload == PAYLOAD and det.details["layer"] == "coarse" and det.scale == 2.0
    assert det.hypotheses > phases  # the stages before it, and its own
    assert det.details["blind_coarse"]["flat_share"] >= BLIND_COARSE_FLAT_SHARE
    assert 1 <= det.details["blind_coarse"]["parities"] <= 4
    assert provmark.detect(copy, key=KEY, search=False).details["blind_coarse"] is None
    # --explain says so
    from provmark.cli import EXIT_OK, main

    path, key_file = tmp_path / "planes.png", tmp_path / "key"
    Image.fromarray(copy).save(path)
    key_file.write_text(KEY)
    assert main(["detect", str(path), "--key-file", str(key_file), "--explain"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert "coarse layer searched blind" in out + err


@pytest.mark.slow
def test_the_blind_coarse_search_counts_every_parity_and_finds_nothing_unmarked(
        planes_crop_jpeg, image_factory):
    """The unmarked copy and a wrong key: the first parity searched at every phase,
    the other three near its best, all counted, nothing decoded. A textured copy is
    not searched at all (nothing counted)."""
    from provmark._detect import _Search
    from provmark._sync import search as sync_search

    copy, unmarked = planes_crop_jpeg
    for image, key in ((unmarked, KEY), (copy, "another key")):
        y = read_luma(image)
        run = _Search(y, normalize_key(key))
        before = run.hypotheses
        assert not run.blind_coarse()
        assert not any(a.decoded for a in run.attempts)
        first, phases = sync_search(coarse_plane(y), normalize_key(key), top=1)
        near = sum(sync_search(coarse_plane(y[sy:, sx:]), normalize_key(key), top=1,
                               near=(first[0].oy, first[0].ox))[1]
                   for sy, sx in ((0, 1), (1, 0), (1, 1)))
        assert run.hypotheses - before >= phases + near
    noise = image_factory["noise"](512, seed=3)
    run = _Search(read_luma(noise), normalize_key(KEY))
    before = run.hypotheses
    assert not run.blind_coarse() and run.hypotheses == before
    assert run.coarse_search is None  # reported as not run
