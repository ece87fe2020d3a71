"""The extension carriers (embedder revision 6, docs/format.md 5.8): a second set of
coefficient pairs repeating every slot's symbol on small images with room for it,
read together with the carriers where these alone do not decode."""

from __future__ import annotations

import numpy as np
import pytest

import provmark
from provmark import _detect, _embed, _layout
from provmark import attacks
from provmark._keys import normalize_key
from provmark._sync import SyncCandidate
from provmark.kernels._modulation import ANGLE_PERIOD, LOW


KEY = "extension-test-key"
PAYLOAD = provmark.Payload(provider=123, content_id=456789, label=2)


def test_the_extension_pairs_are_free_low_coefficients_with_a_keyed_dither_of_their_own():
    base = {tuple(p) for p in _layout.PAIRS.reshape(-1, 2)}
    ext = {tuple(p) for p in _layout.EXTENSION_PAIRS.reshape(-1, 2)}
    assert len(ext) == 4 and not base & ext and (0, 0) not in ext
    assert _layout.EXTENSION_PAIRS.max() < LOW
    k = normalize_key(KEY)
    dither = _layout.extension_dither(k)
    assert dither.shape == _layout.keyed_layout(k).dither.shape
    assert 0.0 <= dither.min() and dither.max() < ANGLE_PERIOD
    assert not np.allclose(dither, _layout.keyed_layout(k).dither)
    assert not np.allclose(dither, _layout.extension_dither(normalize_key("another key")))
    np.testing.assert_array_equal(dither, _layout.extension_dither(normalize_key(KEY)))


@pytest.fixture(scope="module")
def art(image_factory):
    return image_factory["smooth_art"](288, 384, seed=0)


@pytest.fixture(scope="module")
def marked(art):
    return _embed.mark_array(art, PAYLOAD, normalize_key(KEY))


@pytest.fixture(scope="module")
def marked_without(art, request):
    """The same mark without the extension (as the embedder wrote it before)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(_embed, "EXTENSION_MAX_PIXELS", 0)
    try:
        return _embed.mark_array(art, PAYLOAD, normalize_key(KEY))
    finally:
        mp.undo()


def test_a_smooth_small_image_gets_the_extension_within_the_quality_floors(art, marked,
                                                                            marked_without):
    assert marked.extension == 1.0 and marked_without.extension == 0.0
    assert _embed._psnr(art, marked.image) >= 40.0
    assert _embed.ssim(art, marked.image) >= _embed.MIN_SSIM
    # Only the extension differs: where the carriers' mark left the pixels alone and
    # the block is flat, so does the extension (no floor of its own).
    changed = np.abs(marked.image.astype(int) - marked_without.image).max(axis=2)
    assert 0 < (changed > 0).mean() < 0.9
    room = _embed.change_limit(art)
    total = np.abs(marked.image.astype(int) - art).max(axis=2)
    h, w = room.shape[0] * 2, room.shape[1] * 2
    assert (total[:h, :w] <= np.repeat(np.repeat(room, 2, 0), 2, 1) + 0.5).all()


def test_the_carriers_alone_still_read_the_mark_and_the_extension_pilot_shows(marked):
    k = normalize_key(KEY)
    plane = _detect.read_luma(marked.image)
    assert _detect._read_plane(plane, k) == PAYLOAD  # a reader of the carriers only
    ext = _detect.extension_observations(plane, SyncCandidate(0.0, 0, 0, 0, 0), k)
    assert _detect.pilot_z(ext.folded(), k) > 8.0


def test_a_webp_copy_decodes_only_with_the_extension(marked, marked_without):
    det = provmark.detect(attacks.apply("webp", marked.image, quality=50), key=KEY)
    assert det.found and det.payload == PAYLOAD
    assert det.details["layer"] == "extended"
    assert det.details["extension"][0]["z"] >= _detect.EXTENSION_MIN_Z
    assert det.false_alarm_probability <= _detect.MAX_FALSE_ALARM
    before = provmark.detect(attacks.apply("webp", marked_without.image, quality=50), key=KEY)
    assert not before.found


def test_the_extension_reads_are_counted_and_find_nothing_on_an_unmarked_image(art,
                                                                               monkeypatch):
    det = provmark.detect(art, key=KEY)
    assert not det.found and det.payload is None
    reads = det.details["extension"]
    assert reads and all(abs(r["z"]) < 5 for r in reads)

    def carriers_only(self, attempt):
        self.attempts.append(attempt)
        return attempt.decoded

    monkeypatch.setattr(_detect._Search, "_add", carriers_only)
    without = provmark.detect(art, key=KEY)
    assert without.details["extension"] == []
    # every extension read is one more hypothesis in the bound
    assert det.hypotheses == without.hypotheses + len(reads)


def test_a_wrong_key_reads_no_extension_and_no_payload(marked):
    det = provmark.detect(attacks.apply("webp", marked.image, quality=50), key="not the key")
    assert not det.found and det.payload is None
    assert all(abs(r["z"]) < 5 for r in det.details["extension"])


def test_busy_and_large_images_get_no_extension(image_factory):
    busy = image_factory["noise"](256, seed=3)  # at the PSNR floor: no room
    assert _embed.mark_array(busy, PAYLOAD, normalize_key(KEY)).extension == 0.0
    large = image_factory["smooth_art"](1024, 1024, seed=1)  # over EXTENSION_MAX_PIXELS
    assert 1024 * 1024 > _embed.EXTENSION_MAX_PIXELS
    assert _embed.mark_array(large, PAYLOAD, normalize_key(KEY)).extension == 0.0


def test_explain_and_the_forensic_report_say_the_extension_was_read(marked, tmp_path,
                                                                     capsys):
    import io

    from PIL import Image

    from provmark.cli import EXIT_OK, main

    copy = attacks.apply("webp", marked.image, quality=50)
    path = tmp_path / "art.webp50.png"
    Image.fromarray(copy).save(path)
    key_file = tmp_path / "key"
    key_file.write_text(KEY)
    assert main(["detect", str(path), "--key-file", str(key_file), "--explain"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert "read with the extension carriers" in out + err
    # No tamper map: region by region neither reading says anything.
    buf = io.BytesIO()
    Image.fromarray(copy).save(buf, "PNG")
    report = provmark.inspect(buf.getvalue(), key=KEY, tamper=True, search=True)
    assert report.detection.payload == PAYLOAD
    assert not report.tamper_summary["available"]
    assert "extension carriers read together" in report.tamper_summary["reason"]


def test_both_layers_fold_the_coarse_layer_with_the_extension_where_the_fine_pilot_is_weak(
        monkeypatch):
    """A smooth 512x768 sky (coarse layer and extension) at WebP 40: the fine pilot
    reads under 2.5, the coarse layer's and the extension's show; both_layers folds
    those two (one counted decoding)."""
    from test_coarse_layer import KEY as COARSE_KEY, PAYLOAD as COARSE_PAYLOAD, smooth_sky

    k = normalize_key(COARSE_KEY)
    marked = _embed.mark_array(smooth_sky(512, 768), COARSE_PAYLOAD, k)
    assert marked.extension > 0
    copy = attacks.apply("webp", marked.image, quality=40)
    run = _detect._Search(_detect.read_luma(copy), k)
    assert not run.decoded and run.attempts[0].evaluation.z < _detect.DECODE_MIN_Z
    assert _detect.pilot_z(run._aligned_extension.folded(), k) >= _detect.EXTENSION_MIN_Z
    assert not run.coarse_layer()
    folded = []
    real = _detect._evaluate_seen
    monkeypatch.setattr(_detect, "_evaluate_seen",
                        lambda seen, *a, **kw: (folded.append(list(seen)), real(seen, *a, **kw))[1])
    before = run.hypotheses
    run.both_layers()
    assert run.hypotheses == before + 1
    assert len(folded) == 1 and len(folded[0]) == 2
    assert folded[0][1] is run._aligned_extension  # the coarse layer's, then the extension's
