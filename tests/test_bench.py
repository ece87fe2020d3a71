"""Tests of ``provmark bench`` (:mod:`provmark.bench`): resume cache, report writers,
TPR at FPR, MS-SSIM, a tiny end-to-end run through the CLI, and missing peers.

Everything runs in this process (``jobs=1``) on scikit-image's coffee at
256x256 (astronaut is too busy to mark at 256x256 within 40 dB) with provmark only, so the module takes a few seconds; nothing is
downloaded and no peer is needed.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from provmark.bench import metrics, runner
from provmark.bench.images import ImageRef, skimage_photos
from provmark.bench.methods import (
    PEER_INSTALL_HINT,
    ProvmarkMethod,
    parse_method,
    resolve_methods,
)
from provmark.bench.report import markdown, quality_rows, robustness_rows, tpr_rows
from provmark.bench.report import write_csv, write_json
from provmark.bench.runner import AttackCase, BenchConfig, BenchResult

SIZE = (256, 256)


@pytest.fixture(autouse=True)
def _fresh_worker_caches():
    runner._method.cache_clear()
    runner._marked.cache_clear()
    yield
    runner._method.cache_clear()
    runner._marked.cache_clear()


def _config(tmp_path, cases=None, methods=("provmark@1.0",), **kw) -> BenchConfig:
    return BenchConfig(methods=list(methods), images=skimage_photos(["coffee"], SIZE),
                       cases=cases or [AttackCase.make("none"),
                                       AttackCase.make("jpeg", {"quality": 50}),
                                       AttackCase.make("crop", {"area": 0.5})],
                       out=tmp_path, jobs=1, **kw)


def _stable(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k != "seconds"}


# -- runner: resume ----------------------------------------------------------------

def test_resume_runs_only_the_missing_cases(tmp_path, monkeypatch):
    cfg = _config(tmp_path)
    first = runner.run(cfg, progress=False)
    # 3 positives + 3 negatives (one provmark detector) + 1 embed record.
    assert first.computed == 6 and first.cached == 0
    assert runner.summarise(first.records) == "1 embed, 3 negative, 3 positive"
    cache = tmp_path / "cache.jsonl"
    lines = cache.read_text().splitlines()
    assert len(lines) == 7

    # Interrupted run: two case lines lost, the last write torn in the middle.
    kept = [ln for ln in lines if '"jpeg"' not in ln]
    assert len(kept) == 5
    cache.write_text("\n".join(kept) + "\n" + lines[-1][: len(lines[-1]) // 2])
    calls = []
    original = runner._run_task

    def counting(task):
        calls.append(task)
        return original(task)

    monkeypatch.setattr(runner, "_run_task", counting)
    second = runner.run(cfg, progress=False)
    assert second.computed == 2 and second.cached == 4
    ran = [key for task in calls for key, *_ in
           (task["cases"] if task["kind"] == "positive" else
            [k for _, keyed in task["cases"] for _, k in keyed])]
    assert len(ran) == 2
    assert [_stable(r) for r in second.records] == [_stable(r) for r in first.records]

    # Nothing missing: nothing runs.
    third = runner.run(cfg, progress=False)
    assert third.computed == 0 and third.cached == 6

    # --no-resume starts afresh.
    fourth = runner.run(_config(tmp_path, resume=False), progress=False)
    assert fourth.computed == 6


def test_parallel_workers_give_the_same_records_as_one_process(tmp_path):
    cases = [AttackCase.make("none"), AttackCase.make("gaussian_noise", {"sigma": 5.0})]
    serial = runner.run(_config(tmp_path / "serial", cases=cases), progress=False)
    cfg = _config(tmp_path / "parallel", cases=cases, methods=("provmark@1.0", "provmark@0.5"))
    cfg.jobs = 2  # spawned worker processes
    parallel = runner.run(cfg, progress=False)
    assert parallel.computed == 2 * 2 + 2
    by_key = {r["key"]: _stable(r) for r in parallel.records}
    for rec in serial.records:  # provmark@1.0's records, computed in this process
        assert by_key[rec["key"]] == _stable(rec)


def test_cache_keys_depend_on_what_determines_a_result():
    case = AttackCase.make("jpeg", {"quality": 50})
    base = runner.case_key("positive", "provmark@1.0", "0.1.0", "img", case, 0)
    assert base == runner.case_key("positive", "provmark@1.0", "0.1.0", "img", case, 0)
    others = {
        runner.case_key("positive", "provmark@1.5", "0.1.0", "img", case, 0),
        runner.case_key("positive", "provmark@1.0", "0.2.0", "img", case, 0),
        runner.case_key("positive", "provmark@1.0", "0.1.0", "img2", case, 0),
        runner.case_key("positive", "provmark@1.0", "0.1.0", "img",
                        AttackCase.make("jpeg", {"quality": 30}), 0),
        runner.case_key("positive", "provmark@1.0", "0.1.0", "img", case, 1),
        runner.case_key("negative", "provmark@1.0", "0.1.0", "img", case, 0),
    }
    assert base not in others and len(others) == 6


def test_seeds_are_deterministic_and_shared_by_methods():
    case = AttackCase.make("crop", {"area": 0.5})
    a = runner.attack_rng(0, "img", case).integers(0, 1 << 30, 4)
    b = runner.attack_rng(0, "img", case).integers(0, 1 << 30, 4)
    c = runner.attack_rng(1, "img", case).integers(0, 1 << 30, 4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    m1 = runner.message_bits(0, "dwtDct", "img", 48)
    np.testing.assert_array_equal(m1, runner.message_bits(0, "dwtDct", "img", 48))
    assert m1.dtype == bool and m1.shape == (48,)


def test_attack_cases_expand_names_and_families():
    cases, skipped = runner.attack_cases(["jpeg", "flip"])
    labels = [c.label for c in cases]
    assert labels[0] == "none"
    assert "jpeg quality=90" in labels and "flip direction=both" in labels
    assert len(cases) == 1 + 5 + 3
    fam, _ = runner.attack_cases(["colour"])
    assert {c.family for c in fam[1:]} == {"colour"}
    with pytest.raises(KeyError, match="did you mean"):
        runner.attack_cases(["jpg"])
    assert AttackCase.make("jpeg_pillow", {"quality": 50, "subsampling": "4:4:4"}).label == \
        "jpeg_pillow quality=50, subsampling=4:4:4"


def test_quick_grid_has_the_peers_published_claims():
    attacks = {(c.attack, c.severity) for c in runner.QUICK_CASES}
    assert ("resize", "0.5") in attacks  # README: resize 50% fails
    assert any(a == "crop" for a, _ in attacks)  # README: crop fails
    assert any(a == "brightness" for a, _ in attacks)  # README: brightness passes
    assert {"jpeg", "jpeg_pillow"} <= {a for a, _ in attacks}  # README: JPEG passes
    assert {c.family for c in runner.QUICK_CASES} == {"none", "compression", "geometry",
                                                       "filtering", "colour", "occlusion",
                                                       "chain"}


def test_embed_failure_is_recorded_not_raised(tmp_path, monkeypatch):
    import provmark

    def refuse(self, rgb, bits, rng=None):
        raise provmark.EmbedError("the mark does not read back (test)")

    monkeypatch.setattr(ProvmarkMethod, "embed", refuse)
    res = runner.run(_config(tmp_path, negatives=False), progress=False)
    embed = [r for r in res.records if r["kind"] == "embed"]
    assert len(embed) == 1 and "EmbedError" in embed[0]["error"]
    pos = [r for r in res.records if r["kind"] == "positive"]
    assert len(pos) == 3
    assert all(not r["exact"] and r["p_value"] == 1.0 and r["bit_accuracy"] == 0.5
               and r["error"].startswith("embed failed") for r in pos)
    text = markdown(res)
    assert "could not mark an image" in text and "†" in text


# -- methods -----------------------------------------------------------------------

@pytest.mark.parametrize("bits", [64, 40, 24, 1])
def test_provmark_profile_bits_round_trip(bits):
    m = ProvmarkMethod(bits=bits)
    msg = np.random.default_rng(bits).integers(0, 2, bits).astype(bool)
    payload = m.payload(msg)
    np.testing.assert_array_equal(m.bits_of(payload), msg)
    if bits <= 40:
        assert payload.provider == 4242
    assert m.name == ("provmark@1.0" if bits == 64 else f"provmark@1.0/{bits}b")


def test_parse_method_names_and_errors():
    assert parse_method("provmark@1.5").name == "provmark@1.5"
    assert parse_method("provmark@0.75/40b").payload_bits == 40
    with pytest.raises(ValueError, match="unknown method"):
        parse_method("stegastamp")
    with pytest.raises(ValueError, match="cannot read method"):
        parse_method("provmark@@1")
    methods, skipped = resolve_methods(["provmark@1.0,provmark@1.0", "provmark@0.5"])
    assert [m.name for m in methods] == ["provmark@1.0", "provmark@0.5"] and not skipped
    sweep = parse_method("provmark@1.0:exhaustive")
    assert sweep.search == "exhaustive" and sweep.name == "provmark@1.0:exhaustive"
    assert not sweep.primary and parse_method("provmark@1.0").search == "standard"
    with pytest.raises(ValueError, match="only provmark"):
        parse_method("dwtDct:exhaustive")


def test_exhaustive_method_reads_a_resized_small_source(monkeypatch):
    """The exhaustive detector reads a 0.75x copy of a 512x512 source where the
    default detector cannot: here every template lock is refused (as when the
    template did not survive), which leaves the sweep alone to find the scale."""
    import cv2
    from skimage import data

    import provmark

    monkeypatch.setattr(provmark._detect, "LOCK_Z", float("inf"))
    # (the uncropped sweep reads the template's phases without a lock)
    monkeypatch.setattr(provmark._detect._Search, "coherent_uncropped", lambda self: False)
    monkeypatch.setattr(provmark._detect._Search, "pilot_scales", lambda self: False)
    monkeypatch.setattr(provmark._detect._Search, "pilot_rotations", lambda self: False)
    img = np.ascontiguousarray(cv2.resize(data.coffee(), (512, 512), interpolation=cv2.INTER_AREA))
    method = parse_method("provmark@1.0:exhaustive")
    bits = np.random.default_rng(5).integers(0, 2, method.payload_bits).astype(bool)
    marked = method.embed(img, bits)
    small = cv2.resize(marked, (384, 384), interpolation=cv2.INTER_AREA)
    readout = method.detect(small)
    assert method.exact(readout, bits) and readout.p_value <= 1e-9
    assert not parse_method("provmark@1.0").detect(small).found


def test_peers_are_skipped_cleanly_when_absent(tmp_path, monkeypatch):
    # A None entry in sys.modules makes `import x` raise ImportError, as if absent.
    monkeypatch.setitem(sys.modules, "imwatermark", None)
    monkeypatch.setitem(sys.modules, "blind_watermark", None)
    methods, skipped = resolve_methods(["provmark@1.0", "peers"])
    assert [m.name for m in methods] == ["provmark@1.0"]
    assert set(skipped) == {"dwtDct", "dwtDctSvd", "rivaGan", "blind-watermark"}
    assert all("make peers" in why for why in skipped.values())
    logged = []
    res = runner.run(_config(tmp_path, methods=("provmark@1.0", "dwtDct"),
                             cases=[AttackCase.make("none")]),
                     progress=False, log=logged.append)
    assert any("skipping dwtDct" in msg and "make peers" in msg for msg in logged)
    assert {r["method"] for r in res.records if r["kind"] == "positive"} == {"provmark@1.0"}
    assert "make peers" in markdown(res) and PEER_INSTALL_HINT in markdown(res)
    with pytest.raises(ValueError, match="no method left"):
        runner.run(_config(tmp_path, methods=("dwtDct",)), progress=False, log=logged.append)


# -- metrics -----------------------------------------------------------------------

def test_tpr_at_fpr_on_p_values_with_known_answer():
    p = np.array([1e-9, 1e-7, 5e-4, 2e-3, 0.5, 1.0, 1e-3, 1e-6])
    assert metrics.tpr_at_fpr(p, 1e-3) == pytest.approx(5 / 8)
    assert metrics.tpr_at_fpr(p, 1e-6) == pytest.approx(3 / 8)
    assert math.isnan(metrics.tpr_at_fpr(np.array([]), 1e-3))


def test_tpr_at_fpr_is_exact_for_a_gaussian_null():
    # Scores N(0,1) under the null and N(4,1) when marked: p = Q(s), and the
    # TPR at FPR a is Q(Q^-1(a) - 4). Quantiles stand in for samples (no noise).
    from scipy.stats import norm

    u = (np.arange(200_000) + 0.5) / 200_000
    pos_scores = norm.ppf(u) + 4.0
    p_pos = norm.sf(pos_scores)
    for fpr in (1e-3, 1e-6):
        expected = norm.sf(norm.isf(fpr) - 4.0)
        assert metrics.tpr_at_fpr(p_pos, fpr) == pytest.approx(expected, abs=1e-4)


def test_empirical_tpr_needs_enough_negatives():
    neg = np.arange(1000.0)  # scores 0..999: the top one may be a false positive at 1e-3
    pos = np.array([997.0, 998.5, 1000.0, 5.0])
    tpr, threshold = metrics.empirical_tpr_at_fpr(pos, neg, 1e-3)
    assert threshold == 998.0 and tpr == 0.5
    assert np.mean(neg > threshold) <= 1e-3
    assert metrics.empirical_tpr_at_fpr(pos, neg[:999], 1e-3) is None
    assert metrics.empirical_tpr_at_fpr(pos, neg, 1e-6) is None


def test_binomial_p_value():
    assert metrics.binomial_p_value(48, 48) == pytest.approx(2.0**-48)
    assert metrics.binomial_p_value(0, 48) == 1.0
    assert metrics.binomial_p_value(47, 48) == pytest.approx(49 * 2.0**-48)
    assert 0.5 < metrics.binomial_p_value(24, 48) < 0.6


def _ssim_reference(x, y, weights, sigma=1.5, radius=5):
    """MS-SSIM straight from the formula: explicit windows, no filtering routines."""
    t = np.arange(-radius, radius + 1)
    g = np.exp(-t**2 / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    out = 1.0
    for j, wt in enumerate(weights):
        h, wd = x.shape
        ls, css = [], []
        for i in range(radius, h - radius):
            for k in range(radius, wd - radius):
                px = x[i - radius:i + radius + 1, k - radius:k + radius + 1]
                py = y[i - radius:i + radius + 1, k - radius:k + radius + 1]
                mx, my = (w * px).sum(), (w * py).sum()
                vx = (w * px * px).sum() - mx * mx
                vy = (w * py * py).sum() - my * my
                cxy = (w * px * py).sum() - mx * my
                ls.append((2 * mx * my + c1) / (mx * mx + my * my + c1))
                css.append((2 * cxy + c2) / (vx + vy + c2))
        ls, css = np.array(ls), np.array(css)
        if j == len(weights) - 1:
            out *= np.mean(ls * css) ** wt
        else:
            out *= np.mean(css) ** wt
            x = 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])
            y = 0.25 * (y[0::2, 0::2] + y[1::2, 0::2] + y[0::2, 1::2] + y[1::2, 1::2])
    return out


def test_ms_ssim_matches_the_formula_on_a_small_case():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, (48, 48)).cumsum(axis=1) % 256  # some structure
    y = np.clip(x + rng.normal(0, 12, x.shape), 0, 255)
    weights = (0.3, 0.7)
    assert metrics.ms_ssim(x, y, weights=weights) == pytest.approx(
        _ssim_reference(x, y, weights), rel=1e-10)


def test_ms_ssim_single_scale_is_gaussian_ssim():
    from skimage.metrics import structural_similarity

    import skimage.data

    a = skimage.data.astronaut()[100:228, 100:228]
    b = np.clip(a + np.random.default_rng(0).normal(0, 8, a.shape), 0, 255).astype(np.uint8)
    ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, channel_axis=2,
                                use_sample_covariance=False, data_range=255)
    assert metrics.ms_ssim(a, b, weights=(1.0,)) == pytest.approx(ref, rel=1e-12)
    # Noise in one colour channel counts in full, where luma would dilute it.
    big = skimage.data.astronaut()[:256, :256]
    blue = big.copy()
    noise = np.random.default_rng(0).normal(0, 3, big.shape[:2])
    blue[..., 2] = np.clip(blue[..., 2] + noise, 0, 255).astype(np.uint8)
    rgb_score = metrics.ms_ssim(big, blue)
    assert rgb_score < 0.999
    assert rgb_score < metrics.ms_ssim(metrics.luma(big), metrics.luma(blue))


def test_ms_ssim_is_one_on_identical_images_and_drops_with_noise():
    import skimage.data

    img = skimage.data.astronaut()[:256, :256]
    assert metrics.ms_ssim(img, img) == 1.0
    rng = np.random.default_rng(0)
    values = []
    for sigma in (2, 8, 32):
        noisy = np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)
        values.append(metrics.ms_ssim(img, noisy))
    assert 1.0 > values[0] > values[1] > values[2] > 0.0
    assert metrics.psnr(img, img) == math.inf
    with pytest.raises(ValueError, match="too small"):
        metrics.ms_ssim(img[:64, :64], img[:64, :64])


# -- report writers ----------------------------------------------------------------

@dataclass(frozen=True)
class _Fake:
    name: str
    family: str
    payload_bits: int
    primary: bool = True
    strength: float = 1.0
    key: bytes | None = None

    @property
    def detector_id(self):
        return self.name

    @property
    def description(self):
        return f"fake {self.name}"


def _synthetic_result(tmp_path) -> BenchResult:
    refs = [ImageRef("a", "skimage", SIZE), ImageRef("b", "skimage", SIZE)]
    cases = [AttackCase.make("none"), AttackCase.make("jpeg", {"quality": 50})]
    methods = [_Fake("provmark@1.0", "provmark", 64), _Fake("dwtDct", "dwtDct", 48)]
    records = []
    outcomes = {  # (method, case label, image) -> (exact, bit accuracy, p-value)
        ("provmark@1.0", "none", "a"): (True, 1.0, 1e-20),
        ("provmark@1.0", "none", "b"): (True, 1.0, 1e-20),
        ("provmark@1.0", "jpeg quality=50", "a"): (True, 1.0, 1e-12),
        ("provmark@1.0", "jpeg quality=50", "b"): (False, 0.5, 1e-4),
        ("dwtDct", "none", "a"): (True, 1.0, 2.0**-48),
        ("dwtDct", "none", "b"): (False, 0.75, 1e-5),
        ("dwtDct", "jpeg quality=50", "a"): (False, 0.5, 0.6),
        ("dwtDct", "jpeg quality=50", "b"): (False, 0.25, 1.0),
    }
    for m in methods:
        for ref in refs:
            records.append({"key": f"e-{m.name}-{ref.name}", "kind": "embed", "method": m.name,
                            "detector": m.name, "image": ref.id, "psnr": 40.0 + len(ref.name),
                            "ssim": 0.98, "ms_ssim": 0.995, "seconds": 0.01, "error": None})
            for c in cases:
                exact, acc, p = outcomes[(m.name, c.label, ref.name)]
                base = {"method": m.name, "detector": m.name, "image": ref.id, "seed": 0,
                        "payload_bits": m.payload_bits, "attack": c.attack, "family": c.family,
                        "case": c.label, "params": dict(c.params),
                        "severity_key": c.severity_key, "severity": c.severity}
                records.append({**base, "key": f"p-{m.name}-{ref.name}-{c.label}",
                                "kind": "positive", "exact": exact, "bit_accuracy": acc,
                                "abstained": False, "p_value": p, "score": -math.log10(p),
                                "found": None, "error": None, "info": {"note": "x"}})
                records.append({**base, "key": f"n-{m.name}-{ref.name}-{c.label}",
                                "kind": "negative", "exact": False, "bit_accuracy": 0.5,
                                "abstained": False, "p_value": 0.3, "score": 0.5,
                                "found": None, "error": None, "info": {}})
    cfg = BenchConfig(methods=[m.name for m in methods], images=refs, cases=cases, out=tmp_path,
                      command="provmark bench --test")
    return BenchResult(config=cfg, methods=methods, skipped_methods={"rivaGan": "not here"},
                       records=records, computed=len(records), seconds=1.0)


def test_report_tables_have_the_right_numbers(tmp_path):
    res = _synthetic_result(tmp_path)
    rob = {(r["case"], r["method"]): r for r in robustness_rows(res)}
    assert rob[("jpeg quality=50", "provmark@1.0")]["exact_rate"] == 0.5
    assert rob[("jpeg quality=50", "provmark@1.0")]["bit_accuracy"] == 0.75
    assert rob[("none", "dwtDct")]["bit_accuracy"] == pytest.approx(0.875)
    q = {r["method"]: r for r in quality_rows(res)}
    assert q["dwtDct"]["psnr"] == pytest.approx(41.0) and q["dwtDct"]["attacked_cases"] == 2
    tpr = {r["method"]: r for r in tpr_rows(res)}
    # Attacked p-values 1e-12 and 1e-4 (none excluded): both <= 1e-3, one <= 1e-6.
    assert tpr["provmark@1.0"]["tpr@1e-03"] == 1.0 and tpr["provmark@1.0"]["tpr@1e-06"] == 0.5
    assert tpr["dwtDct"]["tpr@1e-03"] == 0.0
    assert tpr["provmark@1.0"]["positives"] == 2 and tpr["provmark@1.0"]["negatives"] == 2
    fam = {(r["method"], r["group"]): r for r in tpr_rows(res, groups="family")}
    assert fam[("dwtDct", "none")]["tpr@1e-06"] == 0.5  # 2**-48 yes, 1e-5 no


def test_csv_json_and_markdown_writers(tmp_path):
    res = _synthetic_result(tmp_path)
    path = write_csv(res, tmp_path / "r.csv")
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(res.records) == 4 + 16
    pos = [r for r in rows if r["kind"] == "positive" and r["method"] == "dwtDct"
           and r["image"].startswith("skimage:b") and r["attack"] == "jpeg"]
    assert len(pos) == 1
    assert pos[0]["bit_accuracy"] == "0.25" and pos[0]["exact"] == "False"
    assert json.loads(rows[1]["info"]) in ({"note": "x"}, {})
    doc = json.loads(write_json(res, tmp_path / "r.json").read_text())
    assert doc["config"]["command"] == "provmark bench --test"
    assert len(doc["records"]) == 20 and doc["skipped_methods"] == {"rivaGan": "not here"}
    assert {r["method"] for r in doc["methods"]} == {"provmark@1.0", "dwtDct"}
    assert "packages" in doc["environment"]
    md = markdown(res)
    assert "| attack | provmark@1.0 | dwtDct |" in md
    assert "| jpeg quality=50 | 50% / 0.75 | 0% / 0.38 |" in md
    assert "| none | 100% / 1.00 | 50% / 0.88 |" in md
    assert "`rivaGan`: not here" in md
    assert "n/a (needs ≥1000 negatives, has 2)" in md
    assert "Sanity check against invisible-watermark's README" in md


# -- end to end --------------------------------------------------------------------

@pytest.mark.slow
def test_end_to_end_cli_run_writes_tables_and_plots(tmp_path, capsys):
    from provmark.cli import main

    out = tmp_path / "bench"
    code = main(["bench", "--methods", "provmark@1.0", "--attacks", "gaussian_blur,crop",
                 "--photos", "coffee", "--size", "256", "--jobs", "1", "--out", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    assert "| attack | provmark@1.0 |" in captured.out
    assert "| none | 100% / 1.00 |" in captured.out
    for name in ("report.md", "results.json", "results.csv", "cache.jsonl"):
        assert (out / name).stat().st_size > 0
    plots = ["severity_filtering", "severity_geometry", "tradeoff_psnr", "capacity",
             "tpr_at_fpr"]
    for stem in plots:
        for ext in ("png", "svg"):
            f = out / f"{stem}.{ext}"
            assert f.stat().st_size > 1000, f
    assert (out / "severity_filtering.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((out / "results.json").read_text())
    assert len([r for r in doc["records"] if r["kind"] == "positive"]) == 1 + 5 + 4
    assert doc["config"]["command"].startswith("provmark bench --methods provmark@1.0")


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    from provmark.cli import main

    assert main(["bench", "--attacks", "jpg", "--out", str(tmp_path), "--jobs", "1"]) == 2
    assert "did you mean 'jpeg'" in capsys.readouterr().err
    assert main(["bench", "--size", "100", "--out", str(tmp_path)]) == 2
    assert main(["bench", "--images", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
