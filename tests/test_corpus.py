"""Tests of the corpus builder ``benchmarks/corpus.py`` on synthetic images.

The builder's selection, conversion, downscaling, licence lookup and manifest are run
on a handful of small images written to a temporary directory, with a fake Debian
copyright file and a resolver that stands in for dpkg: no apt, no network, no
installed image package is needed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

_CORPUS_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "corpus.py"


def _load_corpus():
    if "provmark_bench_corpus" in sys.modules:
        return sys.modules["provmark_bench_corpus"]
    spec = importlib.util.spec_from_file_location("provmark_bench_corpus", _CORPUS_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus()

COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: pics/special*.png
Copyright: 2021 Photographer
License: CC0-1.0

Files: debian/*
Copyright: 2022 Packager
License: Expat
"""


def _texture(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 200 // max(w, 1), y * 200 // max(h, 1), (x + y) % 200], axis=-1)
    return np.clip(base + rng.integers(0, 50, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Synthetic sources: RGB, palette, translucent RGBA, grey, 16-bit and a too-small one."""
    root = tmp_path_factory.mktemp("src")
    (root / "pics").mkdir()
    files = {}
    files["rgb"] = root / "pics" / "rgb.png"  # 600x400 = 0.24 MP -> <0.3
    Image.fromarray(_texture(400, 600, 1)).save(files["rgb"])
    files["pal"] = root / "pics" / "special-pal.png"  # 800x700 = 0.56 MP -> 0.3-0.6
    Image.fromarray(_texture(700, 800, 2)).quantize(64).save(files["pal"])
    rgba = np.dstack([_texture(1000, 1300, 3), np.full((1000, 1300), 255, np.uint8)])
    rgba[:100, :100, 3] = 0  # a transparent corner -> composited over white
    files["rgba"] = root / "pics" / "rgba.png"  # 1.3 MP -> 0.6-2
    Image.fromarray(rgba, "RGBA").save(files["rgba"])
    files["grey"] = root / "pics" / "grey.png"  # 2000x1200 = 2.4 MP -> >2
    Image.fromarray(_texture(1200, 2000, 4)[..., 0]).save(files["grey"])
    files["deep"] = root / "pics" / "deep.png"  # 700x500 16-bit grey -> 0.3-0.6
    Image.fromarray((_texture(500, 700, 5)[..., 1].astype(np.uint16) * 257)).save(files["deep"])
    files["tiny"] = root / "pics" / "tiny.png"  # short side 200 -> skipped
    Image.fromarray(_texture(200, 300, 6)).save(files["tiny"])
    doc = root / "doc" / "fake-images"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    return root, files


def _sources(files):
    S = corpus.Source
    return (
        S("a-rgb", "fake-images", "debian", str(files["rgb"]), "photo", ("sky",)),
        S("b-pal", "fake-images", "debian", str(files["pal"]), "art", ("flat",)),
        S("c-rgba", "fake-images", "debian", str(files["rgba"]), "screenshot", ("ui", "text")),
        S("d-grey", "fake-images", "debian", str(files["grey"]), "photo", ("foliage", "dark")),
        S("e-deep", "fake-images", "debian", str(files["deep"]), "text", ("text",)),
        S("f-tiny", "fake-images", "debian", str(files["tiny"]), "photo", ("face",)),
    )


def _build(images, out, **kwargs):
    root, files = images
    logged = []
    records = corpus.build(out, sources=_sources(files), doc_root=str(root / "doc"),
                           resolver=lambda s: (Path(s.path), "1.0-test"),
                           log=logged.append, **kwargs)
    return records, logged


@pytest.fixture(scope="module")
def built(images, tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    records, logged = _build(images, out, copies=(corpus.Copy("d-grey", 0.45),),
                             min_per_band=2)
    return out, records, logged


def test_size_bands_and_their_edges():
    assert corpus.size_band(244, 244) is None  # 0.0595 MP, just under the first band
    assert corpus.size_band(245, 245) == "<0.3"
    assert corpus.size_band(300, 200) == "<0.3"
    assert corpus.size_band(600, 500) == "0.3-0.6"  # exactly 0.3 MP starts the next band
    assert corpus.size_band(1000, 600) == "0.6-2"
    assert corpus.size_band(2000, 1000) == ">2"
    assert corpus.size_band(1920, 1080) == ">2"


def test_natives_keep_their_size_band_and_the_small_one_is_skipped(built):
    _, records, logged = built
    natives = {r["id"]: r for r in records if r["native"]}
    assert sorted(natives) == ["a-rgb", "b-pal", "c-rgba", "d-grey", "e-deep"]
    assert any("f-tiny" in m and "256" in m for m in logged)
    assert (natives["a-rgb"]["width"], natives["a-rgb"]["height"]) == (600, 400)
    assert [natives[i]["band"] for i in sorted(natives)] == \
        ["<0.3", "0.3-0.6", "0.6-2", ">2", "0.3-0.6"]


def test_conversions_are_noted_and_the_pngs_are_8bit_rgb(built):
    out, records, _ = built
    notes = {r["id"]: " ".join(r["notes"]) for r in records if r["native"]}
    assert notes["a-rgb"] == ""
    assert "palette" in notes["b-pal"]
    assert "composited over white (10000 of 1300000 pixels" in notes["c-rgba"]
    assert "grey source replicated" in notes["d-grey"]
    assert "scaled to 8 bits" in notes["e-deep"]
    for r in records:
        with Image.open(out / r["file"]) as im:
            assert im.mode == "RGB" and im.format == "PNG"
            assert im.size == (r["width"], r["height"])
        digest = hashlib.sha256((out / r["file"]).read_bytes()).hexdigest()
        assert digest == r["sha256"]
    with Image.open(out / "images" / "c-rgba.png") as im:
        corner = np.asarray(im)[:100, :100]
    assert (corner == 255).all()  # transparent pixels became white
    with Image.open(out / "images" / "a-rgb.png") as im, Image.open(_src(built, "a-rgb")) as src:
        assert np.array_equal(np.asarray(im), np.asarray(src))  # lossless


def _src(built, ident):
    return next(r["source_path"] for r in built[1] if r["id"] == ident)


def test_chosen_copy_is_an_inter_area_downscale(built):
    out, records, _ = built
    copy = next(r for r in records if r["id"] == "d-grey@0.45mp")
    assert copy["derived_from"] == "d-grey" and not copy["native"]
    assert copy["band"] == "0.3-0.6"
    assert copy["tags"] == ["dark", "foliage"] and copy["kind"] == "photo"
    assert "INTER_AREA" in copy["notes"][-1]
    with Image.open(out / "images" / "d-grey.png") as im:
        native = np.asarray(im)
    expected = cv2.resize(native, (copy["width"], copy["height"]), interpolation=cv2.INTER_AREA)
    with Image.open(out / copy["file"]) as im:
        assert np.array_equal(np.asarray(im), expected)


def test_every_band_is_filled_and_nothing_is_upscaled(built):
    _, records, _ = built
    by_id = {r["id"]: r for r in records}
    for label in corpus.BAND_LABELS[:-1]:
        assert sum(r["band"] == label for r in records) >= 2, label
    # Nothing is at least twice the 3 MP target, so >2 keeps its one native.
    assert [r["id"] for r in records if r["band"] == ">2"] == ["d-grey"]
    copies = [r for r in records if r["derived_from"]]
    assert len(copies) >= 2  # the chosen one plus at least one automatic fill
    for r in copies:
        src = by_id[r["derived_from"]]
        assert r["width"] < src["width"] and r["height"] < src["height"]
        assert min(r["width"], r["height"]) >= corpus.MIN_SHORT_SIDE
    # <0.3 had one native: the fill adds a copy that brings content it lacked.
    small = [r for r in records if r["band"] == "<0.3"]
    assert len(small) == 2 and small[1]["derived_from"] is not None


def test_plan_fill_prefers_missing_content_and_stops_when_full():
    def rec(i, w, h, tags, kind="photo"):
        return {"id": i, "width": w, "height": h, "band": corpus.size_band(w, h),
                "kind": kind, "tags": list(tags), "derived_from": None}

    records = [rec("small", 500, 400, ["sky"]), rec("big-sky", 3000, 2000, ["sky"]),
               rec("big-face", 3000, 2000, ["face"]), rec("mid", 900, 800, ["sky"]),
               rec("third", 700, 600, ["sky"])]
    plan = corpus.plan_fill(records, min_per_band=2)
    first = next(c for c in plan if corpus.size_band(
        *corpus._copy_size(3000, 2000, c.megapixels)) == "<0.3")
    assert first.source == "big-face"  # "face" is what the band lacks
    assert corpus.plan_fill(records, min_per_band=1) == []
    # A band cannot be filled from images that are not at least twice the target.
    assert corpus.plan_fill([rec("only", 700, 500, ["sky"])], min_per_band=3) == [
        corpus.Copy("only", 0.12, "band <0.3 had 0 members")]


def test_downscale_refuses_to_upscale_or_go_under_256():
    img = np.zeros((400, 600, 3), np.uint8)
    with pytest.raises(ValueError, match="never upscales"):
        corpus.downscale(img, 0.5)
    with pytest.raises(ValueError, match="256"):
        corpus.downscale(img, 0.05)
    assert corpus.downscale(img, 0.12).shape == (283, 424, 3)


def test_licences_come_from_the_copyright_file(built):
    _, records, _ = built
    lic = {r["id"]: r for r in records}
    assert lic["b-pal"]["licence"] == "CC0-1.0"  # pics/special*.png stanza
    assert lic["b-pal"]["copyright"] == "2021 Photographer"
    assert lic["a-rgb"]["licence"] == "GPL-2+"  # Files: * (debian/* is ignored)
    assert "copyright (Files: *)" in lic["a-rgb"]["licence_source"]
    assert lic["d-grey@0.45mp"]["licence"] == lic["d-grey"]["licence"]


def test_free_text_copyright_is_searched_for_the_file(tmp_path):
    doc = tmp_path / "pkg"
    doc.mkdir()
    (doc / "copyright").write_text(
        "Image Authors:\n\n - adwaita*\n - other.jpg:\n   Copyright 2011 A. Painter\n"
        "   Licensed under Creative Commons Attribution-ShareAlike 3.0 License.\n")
    licence, holder, where = corpus.debian_licence("pkg", "/usr/share/bg/adwaita-l.webp",
                                                   doc_root=str(tmp_path))
    assert licence.startswith("Licensed under Creative Commons Attribution-ShareAlike 3.0")
    assert "A. Painter" in holder and where.endswith("copyright")
    missing = corpus.debian_licence("nothing", "/x.png", doc_root=str(tmp_path))
    assert missing[0].startswith("unknown")


def test_manifest_is_written_and_the_build_is_deterministic(images, built, tmp_path):
    out, records, _ = built
    lines = (out / corpus.MANIFEST).read_text().splitlines()
    assert [json.loads(ln) for ln in lines] == records
    for field in ("id", "source", "source_path", "licence", "width", "height", "megapixels",
                  "band", "sha256", "tags", "derived_from", "kind", "notes"):
        assert all(field in r for r in records), field
    assert corpus.load_manifest(out) == records
    (out / corpus.IMAGES / "stale.png").write_bytes(b"old")
    again, _ = _build(images, out, copies=(corpus.Copy("d-grey", 0.45),), min_per_band=2)
    assert again == records
    assert not (out / corpus.IMAGES / "stale.png").exists()


def test_table_lists_every_band(built):
    text = corpus.table(built[1])
    for label in corpus.BAND_LABELS:
        assert f"### {label} MP" in text
    assert "5 at native size from 1 packages" in text


def test_install_only_as_root_and_only_what_is_missing(monkeypatch):
    monkeypatch.setattr(corpus.shutil, "which", lambda name: f"/usr/bin/{name}")
    have = {"a"}.__contains__
    assert corpus.install_commands(["a", "b"], have, is_root=False) == []
    assert corpus.install_commands(["a"], have, is_root=True) == []
    cmds = corpus.install_commands(["a", "b", "c"], have, is_root=True)
    assert cmds[0][:2] == ["apt-get", "update"]
    assert cmds[1][-2:] == ["b", "c"] and "--no-install-recommends" in cmds[1]


def test_the_source_table_is_consistent():
    ids = [s.id for s in corpus.SOURCES]
    assert len(ids) == len(set(ids))
    for s in corpus.SOURCES:
        assert s.kind in corpus.KINDS and set(s.tags) <= set(corpus.TAGS), s.id
        assert s.origin in ("debian", "pypi")
    assert {c.source for c in corpus.COPIES} <= set(ids)
    origins = {s.package for s in corpus.SOURCES}
    assert len(origins) >= 4


def test_pypi_licence_is_read_from_the_loader_docstring():
    pytest.importorskip("skimage")
    astronaut = next(s for s in corpus.SOURCES if s.id == "skimage-astronaut")
    text, where = corpus.pypi_licence(astronaut)
    assert "public domain" in text and where == "skimage.data:astronaut docstring"


# -- the corpus mode of benchmarks/robustness.py ------------------------------------------

def _load_bench(stem: str):
    """``benchmarks/<stem>.py``, loaded by path once (benchmarks are not a package)."""
    name = f"provmark_bench_{stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _CORPUS_PATH.with_name(f"{stem}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _load_robustness():
    return _load_bench("robustness")


def test_every_attack_of_the_bar15_set_runs():
    rb = _load_robustness()
    img = np.ascontiguousarray(_texture(300, 400, 7))
    for label, attack, params, bar in rb.BAR15_SET:
        assert bar in (0.95, 0.99, 1.0), label
        if attack is None:
            continue
        out = rb.A.apply(attack, img, rng=rb._attack_rng(0, "x", 0, label), **params)
        assert out.dtype == np.uint8 and out.ndim == 3, label
    # The same realisation for every method: the random crop is reproducible.
    a = rb.A.apply("crop", img, rng=rb._attack_rng(3, "im", 1, "crop 25% area"), area=0.25)
    b = rb.A.apply("crop", img, rng=rb._attack_rng(3, "im", 1, "crop 25% area"), area=0.25)
    assert np.array_equal(a, b)


def test_corpus_summary_splits_small_copies_and_counts_wrong_payloads():
    rb = _load_robustness()

    def row(band, attack, ok, side=600, wrong=False, image="i", method="provmark"):
        return {"method": method, "image": image, "band": band, "payload_index": 0,
                "attack": attack, "ok": ok, "found": ok or wrong, "wrong": wrong, "error": "",
                "short_side": side, "counted": side >= rb.MIN_SIDE, "psnr": 41.0,
                "ssim": 0.98, "detect_s": 0.05}

    attack_set = (("JPEG q50", "jpeg", {"quality": 50}, 0.99),
                  ("crop 25% area", "crop", {"area": 0.25}, 0.95))
    rows = [row("<0.3", "JPEG q50", True, image="a"), row("<0.3", "JPEG q50", False, image="b",
                                                          wrong=True),
            row(">2", "JPEG q50", True, image="c"), row("<0.3", "crop 25% area", True, side=200),
            row(">2", "crop 25% area", True, image="c")]
    refusals = [{"image": "flat", "band": "0.3-0.6", "payload_index": 0,
                 "message": "too flat"}]
    images = [{"id": i, "band": b} for i, b in
              (("a", "<0.3"), ("b", "<0.3"), ("flat", "0.3-0.6"), ("c", ">2"))]
    text = rb.summarise_corpus(rows, refusals, list(rb._load_corpus_module().BAND_LABELS),
                               attack_set, images)
    jpeg = next(ln for ln in text.splitlines() if ln.startswith("| JPEG q50 |"))
    assert "1/2 50% **FAIL**" in jpeg and "1/1 100% pass" in jpeg
    crop = next(ln for ln in text.splitlines() if ln.startswith("| crop 25% area |"))
    assert crop.split(" | ")[2] == "-"  # the 200 px copy is not counted in the bar ...
    assert "| crop 25% area | <0.3 | 1 | 0 | 0 |" in text  # ... but reported best effort
    assert "**WRONG PAYLOADS RETURNED: 1**" in text
    assert "- flat (0.3-0.6, payload 0): too flat" in text


def test_a_lost_copy_equal_to_the_unmarked_copy_is_named(tmp_path):
    """Brightness x1.4 takes a bright texture to 255 everywhere, marked or not: that
    loss is flagged (and listed, still counted); a lost WebP copy is not."""
    rb = _load_robustness()
    img = (200 + _texture(300, 320, 5) // 5).astype(np.uint8)  # 200..249
    path = tmp_path / "bright.png"
    cv2.imwrite(str(path), np.ascontiguousarray(img[..., ::-1]))
    record = {"id": "bright", "band": "<0.3", "kind": "art", "file": "bright.png",
              "megapixels": 0.096}
    rows, refusals = rb.run_corpus_case(
        (record, path, 1, 0, "bar15", {}, ["brightness x1.4", "WebP", "none"]))
    assert not refusals
    by = {r["attack"]: r for r in rows}
    assert by["none (reference)"]["ok"] and "same_as_unmarked" not in by["none (reference)"]
    assert not by["brightness x1.4"]["ok"] and by["brightness x1.4"]["same_as_unmarked"]
    assert not by["WebP q50"]["ok"] and by["WebP q50"]["same_as_unmarked"] is False
    attack_set = [a for a in rb.BAR15_SET if a[0] in by]
    text = rb.summarise_corpus(rows, refusals, ["<0.3"], attack_set, [record])
    assert ("1 of the counted copies lost are identical, pixel for pixel, to the unmarked "
            "image's copy") in text
    assert "<0.3 bright #0 brightness x1.4." in text
    brightness = next(ln for ln in text.splitlines() if ln.startswith("| brightness x1.4 |"))
    assert "0/1 0% **FAIL**" in brightness  # still counted against the bar


def _tiny_corpus(root: Path) -> None:
    """Two textured images in a manifest, as benchmarks/corpus.py writes one."""
    (root / "images").mkdir(parents=True)
    with open(root / "manifest.jsonl", "w") as fh:
        for n, (h, w) in enumerate(((260, 300), (280, 270))):
            name = f"images/t{n}.png"
            cv2.imwrite(str(root / name), np.ascontiguousarray(_texture(h, w, n)[..., ::-1]))
            fh.write(json.dumps({"id": f"t{n}", "band": "<0.3", "kind": "photo",
                                 "file": name, "megapixels": h * w / 1e6}) + "\n")


def _untimed(rows):
    """Rows without their timings (a resumed run's must equal the first run's)."""
    return [{k: v for k, v in r.items() if k not in ("detect_s", "seconds")} for r in rows]


def test_an_interrupted_corpus_run_resumes_from_its_journal(tmp_path, monkeypatch, capsys):
    rb = _load_robustness()
    _tiny_corpus(tmp_path / "c")
    out = tmp_path / "run" / "table.md"
    argv = ["--corpus", str(tmp_path / "c"), "--payloads", "1", "--jobs", "1",
            "--attacks", "JPEG q50", "--out", str(out)]
    journal = out.with_suffix(".journal.jsonl")
    # Keep the journal of a finished run, to cut it as a stop would have.
    monkeypatch.setattr(rb._sibling("_journal").Journal, "remove", lambda self: None)
    assert rb.main(argv) == 0
    full = json.loads(out.with_suffix(".json").read_text())
    lines = journal.read_text().splitlines()
    assert json.loads(lines[0])["settings"]["seed"] == 0
    assert sorted(json.loads(ln)["key"] for ln in lines[1:]) == [["provmark", "t0"],
                                                                 ["provmark", "t1"]]
    assert {r["image"] for r in full["rows"]} == {"t0", "t1"}
    assert all(r["ok"] for r in full["rows"])
    # A stop after the first job, in the middle of writing the second.
    journal.write_text("\n".join(lines[:2]) + "\n" + lines[2][: len(lines[2]) // 2])
    out.unlink()
    assert rb.main(argv) == 0
    again = json.loads(out.with_suffix(".json").read_text())
    assert "after resuming 1 jobs from its journal" in again["header"]
    assert _untimed(again["rows"]) == _untimed(full["rows"])
    # Another seed makes other copies: that journal is refused, not mixed in.
    with pytest.raises(SystemExit):
        rb.main(argv + ["--seed", "1"])
    assert "seed differ" in capsys.readouterr().err


def test_a_finished_corpus_run_removes_its_journal(tmp_path):
    rb = _load_robustness()
    _tiny_corpus(tmp_path / "c")
    out = tmp_path / "t.md"
    assert rb.main(["--corpus", str(tmp_path / "c"), "--payloads", "1", "--jobs", "1",
                    "--attacks", "none", "--out", str(out)]) == 0
    assert out.exists() and out.with_suffix(".json").exists()
    assert not out.with_suffix(".journal.jsonl").exists()
    assert not list(tmp_path.glob("*.tmp"))


def test_an_interrupted_false_positive_run_resumes_from_its_journal(tmp_path, monkeypatch,
                                                                    capsys):
    fp = _load_bench("false_positives")
    _tiny_corpus(tmp_path / "c")
    out = tmp_path / "fp.md"
    journal = out.with_suffix(".journal.jsonl")
    # 2 images x 4 draws: a job each.
    argv = ["--corpus", str(tmp_path / "c"), "--n", "8", "--jobs", "1", "--out", str(out)]
    monkeypatch.setattr(fp._sibling("_journal").Journal, "remove", lambda self: None)
    assert fp.main(argv) == 0
    full = json.loads(out.with_suffix(".json").read_text())
    lines = journal.read_text().splitlines()
    assert len(full["rows"]) == 8 and len(lines) == 1 + 2
    journal.write_text("\n".join(lines[:2]) + "\n")
    assert fp.main(argv) == 0
    again = json.loads(out.with_suffix(".json").read_text())
    assert "after resuming 1 jobs from its journal" in again["header"]
    assert _untimed(again["rows"]) == _untimed(full["rows"])
    with pytest.raises(SystemExit):
        fp.main(argv[:-2] + ["--n", "9", "--out", str(out)])
    assert "n differ" in capsys.readouterr().err


# -- benchmarks/true_grid.py ------------------------------------------------------------

def test_a_crops_true_grid_is_where_the_source_was_written():
    """locate finds a crop's offset in its source, and true_grid turns it into the grid
    hypothesis of docs/format.md 6, on which the crop decodes without any search."""
    tg = _load_bench("true_grid")
    import provmark
    from provmark._detect import _attempt, read_luma
    from provmark._keys import normalize_key
    from provmark._sync import SyncCandidate

    payload = provmark.Payload(provider=3, content_id=5)
    marked = provmark.embed(_texture(600, 640, 0), payload, key="tg")
    y0, x0 = 45, 83
    crop = np.ascontiguousarray(marked[y0:y0 + 400, x0:x0 + 420])
    assert tg.locate(marked, crop)[:2] == (y0, x0) and tg.locate(marked, crop)[2] > 0.99
    assert tg.locate(marked, marked) == (0, 0, 1.0)
    oy, ox, ty, tx = tg.true_grid(y0, x0)
    assert (oy, ox) == (3, 13) and (ty, tx) == (3, 6)  # first blocks at source 48 and 96
    read = _attempt(read_luma(crop), normalize_key("tg"), SyncCandidate(0.0, oy, ox, ty, tx), 1)
    assert read.evaluation.result.payload == payload
    wrong = _attempt(read_luma(crop), normalize_key("tg"), SyncCandidate(0.0, oy, ox, ty + 1, tx), 1)
    assert wrong.evaluation.result.payload is None


def test_the_true_grid_diagnostic_reads_the_bar15_copies(tmp_path, capsys):
    tg = _load_bench("true_grid")
    _tiny_corpus(tmp_path / "c")
    out = tmp_path / "tg.md"
    assert tg.main(["--corpus", str(tmp_path / "c"), "--attack", "JPEG q50", "--attack",
                    "crop 50%", "--payloads", "1", "--jobs", "1", "--out", str(out),
                    "--json", str(tmp_path / "tg.json")]) == 0
    rows = json.loads((tmp_path / "tg.json").read_text())
    assert sorted((r["image"], r["attack"]) for r in rows) == [
        ("t0", "JPEG q50"), ("t0", "crop 50% area"), ("t1", "JPEG q50"), ("t1", "crop 50% area")]
    # Textured and lightly attacked: every copy read at its true grid and by the detector.
    assert all(r["match"] > 0.9 and r["true_decoded"] and r["detected"] for r in rows)
    # the z bins of the summary hold every counted copy once (the crops of these
    # 260-280 px images are under 256 px a side: not counted), each decoded at its grid
    assert sorted(r["attack"] for r in rows if r["short_side"] >= 256) == ["JPEG q50"] * 2
    bins = [ln.split(" | ") for ln in out.read_text().splitlines()
            if ln.startswith(("| under 4 |", "| 4-5 |", "| 5-6 |", "| 6-7 |", "| 7 and over |"))]
    assert len(bins) == 5
    assert sum(int(b[1]) for b in bins) == 2 and sum(int(b[2]) for b in bins) == 2
    assert tg.main(["--corpus", str(tmp_path / "c"), "--attack", "no such attack"]) == 2
    assert "matches no bar15 attack" in capsys.readouterr().err
    assert tg.main(["--corpus", str(tmp_path / "c"), "--attack", "WebP", "--bands", "<0.5"]) == 2
    assert "the bands are <0.3" in capsys.readouterr().err
    assert tg.main(["--corpus", str(tmp_path / "none"), "--attack", "WebP"]) == 2
    assert "make corpus" in capsys.readouterr().err


@pytest.mark.parametrize("attack, params", [
    ("resize", {"scale": 0.75}), ("resize", {"scale": (960 / 1080, 1280 / 1920)}),
    ("rotate", {"angle": -2.0, "crop": True}),
    ("screenshot", {"width": 500, "border": 12, "quality": 95})])
def test_a_resampled_copy_read_back_at_its_known_geometry_decodes(attack, params):
    """known_geometry gives the matrix the attack applied (source pixel to copy pixel):
    the copy resampled back through it onto the source's grid decodes at the aligned
    grid, without any search; a geometry 2% off does not give the same reading."""
    tg = _load_bench("true_grid")
    import provmark
    from provmark import attacks as A
    from provmark._detect import _attempt, read_luma
    from provmark._keys import normalize_key
    from provmark._sync import SyncCandidate

    payload = provmark.Payload(provider=3, content_id=5)
    marked = provmark.embed(_texture(480, 640, 1), payload, key="tg")
    copy = A.apply(attack, marked, **params)
    matrix = tg.known_geometry(attack, params, marked.shape[:2])
    aligned = SyncCandidate(0.0, 0, 0, 0, 0)
    plane = tg.back_on_source(read_luma(copy), matrix, marked.shape[:2])
    assert plane.shape == marked.shape[:2] and np.isfinite(plane).all()
    right = _attempt(plane, normalize_key("tg"), aligned, 1).evaluation
    assert right.result.payload == payload and right.z > 7
    off = matrix.copy()
    off[:, :2] *= 1.02
    wrong = _attempt(tg.back_on_source(read_luma(copy), off, marked.shape[:2]),
                     normalize_key("tg"), aligned, 1).evaluation
    assert wrong.z < right.z - 3


def test_known_geometry_is_none_for_attacks_that_do_not_resample_by_parameters():
    tg = _load_bench("true_grid")
    assert tg.known_geometry("jpeg", {"quality": 50}, (300, 400)) is None
    assert tg.known_geometry("rotate", {"angle": 2.0, "crop": False}, (300, 400)) is None
    np.testing.assert_allclose(tg.known_geometry("resize", {"scale": 0.5}, (300, 400)),
                               [[0.5, 0, -0.25], [0, 0.5, -0.25]])
