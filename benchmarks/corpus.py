"""Build the real test corpus: photos, digital art and screenshots at their native
resolution, taken from Debian packages and PyPI distributions that ship images, written
as lossless RGB PNG files with a ``manifest.jsonl`` that records each image's source,
licence, size band, content tags and checksum.

The corpus is what the robustness benchmark runs on (``benchmarks/robustness.py
--corpus DIR``): every image keeps its native pixel size; where a size band needs more
members (or a content the band lacks), a *downscaled* copy of a larger image is added
(OpenCV ``INTER_AREA``), never an upscaled one. The selection is a fixed table below
(sorted, no randomness), so the same package versions give the same corpus, file for
file. Large files are not committed: the corpus lives in a cache directory (``.corpus/``
in the repository root by default, ignored by git) and ``make corpus`` rebuilds it.

Usage::

    python benchmarks/corpus.py                 # install the packages (as root), build .corpus/
    python benchmarks/corpus.py --no-install    # build from what is installed
    python benchmarks/corpus.py --list          # the table per size band, with content tags
    python benchmarks/corpus.py --out /tmp/c --min-per-band 12

Size bands (megapixels = width * height / 1e6): ``<0.3`` (0.06 to 0.3), ``0.3-0.6``,
``0.6-2`` and ``>2``. Images whose short side is under 256 px are skipped. Palette,
alpha, grey and 16-bit sources are converted to 8-bit RGB and the conversion is noted
in the manifest's ``notes``. See ``docs/corpus.md`` for the sources and licences.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import importlib
import importlib.metadata
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / ".corpus"
MANIFEST = "manifest.jsonl"
IMAGES = "images"

#: Size bands in reporting order: (label, lowest megapixels, highest megapixels).
BANDS: tuple[tuple[str, float, float], ...] = (
    ("<0.3", 0.06, 0.3),
    ("0.3-0.6", 0.3, 0.6),
    ("0.6-2", 0.6, 2.0),
    (">2", 2.0, math.inf),
)
BAND_LABELS = tuple(b[0] for b in BANDS)
#: Images whose short side is below this are not part of the corpus.
MIN_SHORT_SIDE = 256
#: Target sizes (megapixels) of automatic downscaled copies, cycled per band.
FILL_TARGETS = {"<0.3": (0.2, 0.12, 0.25), "0.3-0.6": (0.45, 0.35, 0.55),
                "0.6-2": (1.0, 1.5, 0.75), ">2": (3.0, 2.5, 4.0)}
KINDS = ("photo", "art", "screenshot", "text")
#: Content tags used in the table (see docs/corpus.md for what each means).
TAGS = ("face", "person", "animal", "foliage", "flowers", "sky", "clouds", "night", "dusk",
        "dark", "smooth-gradient", "flat", "low-contrast", "texture", "text", "ui",
        "architecture", "interior", "water", "landscape", "space", "macro", "bokeh",
        "grey-source", "vehicle", "map", "fractal", "line-art", "logo", "microscopy")


@dataclass(frozen=True)
class Source:
    """One native image of the corpus.

    Parameters
    ----------
    id : str
        Corpus identifier (also the PNG's file name).
    package : str
        The Debian package (``origin="debian"``) or PyPI distribution (``"pypi"``)
        that ships the file.
    origin : {"debian", "pypi"}
    path : str
        Debian: the absolute installed path. PyPI: the path inside the
        distribution (``importlib.metadata.Distribution.locate_file``).
    kind : {"photo", "art", "screenshot", "text"}
    tags : tuple of str
        Content tags, given by looking at the image.
    licence_doc : str
        PyPI only: ``"module:function"`` whose docstring states the image's licence.
    """

    id: str
    package: str
    origin: str
    path: str
    kind: str
    tags: tuple[str, ...]
    licence_doc: str = ""


@dataclass(frozen=True)
class Copy:
    """A downscaled copy of the native ``source`` at ``megapixels`` (for ``reason``)."""

    source: str
    megapixels: float
    reason: str = "band needs this content"


def _deb(id, package, path, kind, *tags):
    return Source(id, package, "debian", path, kind, tuple(tags))


def _pypi(id, package, path, kind, *tags, doc=""):
    return Source(id, package, "pypi", path, kind, tuple(tags), doc)


_BG = "/usr/share/backgrounds"
_LXQT = "/usr/share/lxqt/wallpapers"
_DB = "/usr/share/desktop-base"
_GIMP = "/usr/share/gimp/2.0/help/en/images"
_HUGIN = "/usr/share/hugin/xrc/data/help_en_EN"
_IM = "/usr/share/doc/imagemagick-6-common/html/images"
_KSTARS = "/usr/share/doc/HTML/en/kstars"
_MYPAINT = "/usr/share/mypaint/backgrounds"

#: The native images, tagged by looking at each one. Order does not matter (the build
#: sorts by id); sizes are those of the Debian 12 / PyPI versions this was made with.
SOURCES: tuple[Source, ...] = (
    # -- PyPI: scikit-image sample data (photos) and matplotlib sample data --------------
    _pypi("skimage-astronaut", "scikit-image", "skimage/data/astronaut.png", "photo",
          "face", "person", doc="skimage.data:astronaut"),
    _pypi("skimage-chelsea", "scikit-image", "skimage/data/chelsea.png", "photo",
          "face", "animal", "texture", doc="skimage.data:chelsea"),
    _pypi("skimage-coffee", "scikit-image", "skimage/data/coffee.png", "photo",
          "interior", "smooth-gradient", doc="skimage.data:coffee"),
    _pypi("skimage-rocket", "scikit-image", "skimage/data/rocket.jpg", "photo",
          "night", "sky", "vehicle", doc="skimage.data:rocket"),
    _pypi("skimage-camera", "scikit-image", "skimage/data/camera.png", "photo",
          "person", "face", "sky", "grey-source", doc="skimage.data:camera"),
    _pypi("skimage-ihc", "scikit-image", "skimage/data/ihc.png", "photo",
          "microscopy", "texture", doc="skimage.data:immunohistochemistry"),
    _pypi("skimage-motorcycle", "scikit-image", "skimage/data/motorcycle_left.png", "photo",
          "interior", "vehicle", doc="skimage.data:stereo_motorcycle"),
    _pypi("skimage-hubble", "scikit-image", "skimage/data/hubble_deep_field.jpg", "photo",
          "night", "space", "dark", doc="skimage.data:hubble_deep_field"),
    _pypi("skimage-retina", "scikit-image", "skimage/data/retina.jpg", "photo",
          "microscopy", "dark", doc="skimage.data:retina"),
    _pypi("mpl-grace-hopper", "matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
          "photo", "face", "person"),
    # -- imagemagick-6-doc: documentation images ------------------------------------------
    _deb("im-bluebells", "imagemagick-6-doc", f"{_IM}/bluebells_clipped.jpg", "photo",
         "flowers", "foliage", "macro", "bokeh"),
    _deb("im-julia-set", "imagemagick-6-doc", f"{_IM}/julia-set.png", "art",
         "fractal", "flat"),
    _deb("im-configure", "imagemagick-6-doc", f"{_IM}/configure.jpg", "screenshot",
         "ui", "text", "line-art"),
    _deb("im-wizard", "imagemagick-6-doc", f"{_IM}/wizard.png", "art",
         "line-art", "flat", "person"),
    # -- hugin-data: the panorama tool's help (photos and a screenshot) -------------------
    _deb("hugin-pantheon", "hugin-data", f"{_HUGIN}/360px-Pantheon-150x100-rect-panini.jpg",
         "photo", "architecture", "interior", "person", "text"),
    _deb("hugin-celeste-editor", "hugin-data", f"{_HUGIN}/Celeste_cpeditor_post.jpg",
         "screenshot", "ui", "sky", "clouds", "foliage"),
    _deb("hugin-forest", "hugin-data", f"{_HUGIN}/CA_fringes00.jpg", "photo",
         "foliage", "landscape"),
    _deb("hugin-building", "hugin-data", f"{_HUGIN}/CA_tCA00.jpg", "photo",
         "architecture", "sky", "foliage"),
    _deb("hugin-medinet-habu", "hugin-data", f"{_HUGIN}/Medinet_habu_horizontal_fisheye.jpg",
         "photo", "architecture", "sky"),
    # -- gimp-help-en: tutorial photos and screenshots ------------------------------------
    _deb("gimp-power-lines", "gimp-help-en", f"{_GIMP}/tutorials/tone-mapping/power-lines.jpg",
         "photo", "sky", "clouds", "foliage"),
    _deb("gimp-tree-sky", "gimp-help-en",
         f"{_GIMP}/tutorials/tone-mapping/tree-exposed-for-sky-ground-is-dark.jpg",
         "photo", "sky", "foliage", "landscape"),
    _deb("gimp-orchard-truck", "gimp-help-en",
         f"{_GIMP}/tutorials/tone-mapping/apple-orchard-truck-from-camera.jpg",
         "photo", "vehicle", "foliage", "sky", "landscape"),
    _deb("gimp-scale-dialog", "gimp-help-en", f"{_GIMP}/tutorials/quickie-scale-dialog.png",
         "screenshot", "ui", "text"),
    _deb("gimp-crop-step", "gimp-help-en", f"{_GIMP}/tutorials/quickie-crop-step1.png",
         "screenshot", "ui", "animal", "foliage"),
    _deb("gimp-mode-menu", "gimp-help-en", f"{_GIMP}/tutorials/quickie-mode-menu.png",
         "screenshot", "ui", "text"),
    _deb("gimp-single-window", "gimp-help-en", f"{_GIMP}/using/single-window.png",
         "screenshot", "ui", "flowers", "dark"),
    _deb("gimp-slider-help", "gimp-help-en", f"{_GIMP}/toolbox/new-slider-interaction.png",
         "text", "text", "line-art", "flat"),
    # -- kstars-data / marble-data: astronomy and map screenshots (night content) ---------
    _deb("kstars-eyepiece", "kstars-data", f"{_KSTARS}/Arp84_EyepieceView.png", "screenshot",
         "night", "space", "dark", "text"),
    _deb("kstars-fitsviewer", "kstars-data", f"{_KSTARS}/fitsviewer.png", "screenshot",
         "night", "space", "ui", "dark"),
    _deb("kstars-milky-way", "kstars-data", f"{_KSTARS}/kstars_hips.png", "screenshot",
         "night", "space", "dark", "ui"),
    _deb("kstars-neptune", "kstars-data", f"{_KSTARS}/KStars_Neptune.png", "screenshot",
         "ui", "text", "space"),
    _deb("kstars-fits-settings", "kstars-data", f"{_KSTARS}/fits_settings.png", "screenshot",
         "ui", "text"),
    _deb("marble-night-map", "marble-data", "/usr/share/doc/HTML/en/marble/mapview-1.png",
         "screenshot", "ui", "map", "night", "text"),
    # -- mypaint-data-extras: scanned paper and canvas backgrounds ------------------------
    _deb("mypaint-cork", "mypaint-data-extras", f"{_MYPAINT}/ramon/HR_Cork.png", "art",
         "texture"),
    _deb("mypaint-watercolor", "mypaint-data-extras", f"{_MYPAINT}/ramon/HR_WaterColor.png",
         "art", "texture", "flat", "low-contrast"),
    _deb("mypaint-paper", "mypaint-data-extras", f"{_MYPAINT}/mrmamurk/mamurk_a_1.png", "art",
         "texture", "low-contrast"),
    # -- desktop-base: Debian themes ------------------------------------------------------
    _deb("debian-moonlight", "desktop-base", f"{_DB}/moonlight-theme/grub/grub-4x3.png", "art",
         "night", "dark", "flat", "smooth-gradient"),
    _deb("debian-spacefun", "desktop-base", f"{_DB}/spacefun-theme/grub/grub-4x3.png", "art",
         "space", "night", "logo", "text"),
    _deb("debian-joy-login", "desktop-base", f"{_DB}/joy-theme/login/sddm-preview.jpg",
         "screenshot", "ui", "smooth-gradient", "text"),
    _deb("debian-softwaves", "desktop-base", f"{_DB}/softwaves-theme/grub/grub-16x9.png", "art",
         "smooth-gradient", "low-contrast", "logo"),
    _deb("debian-plasma-desktop", "desktop-base",
         "/usr/share/plasma/look-and-feel/org.debian.desktop/contents/previews/"
         "fullscreenpreview.jpg", "screenshot", "ui", "text", "smooth-gradient"),
    # -- sway-backgrounds -----------------------------------------------------------------
    _deb("sway-blue", "sway-backgrounds", f"{_BG}/sway/Sway_Wallpaper_Blue_1366x768.png", "art",
         "flat", "logo", "text"),
    # -- ukui-wallpapers: digital art -----------------------------------------------------
    _deb("ukui-ribbon", "ukui-wallpapers", f"{_BG}/2004default.jpg", "art",
         "smooth-gradient"),
    _deb("ukui-mouse", "ukui-wallpapers", f"{_BG}/the-mouse.jpg", "art",
         "dark", "smooth-gradient"),
    _deb("ukui-city", "ukui-wallpapers", f"{_BG}/city.png", "art", "flat"),
    # -- lomiri-wallpapers-20.04: digital art ---------------------------------------------
    _deb("lomiri-fossa", "lomiri-wallpapers-20.04", f"{_BG}/Fossa_by_Jasper_Roks.jpg", "art",
         "smooth-gradient", "dark"),
    _deb("lomiri-infinite-sea", "lomiri-wallpapers-20.04", f"{_BG}/Infinite-Sea_by_Aury88.jpg",
         "art", "night", "sky", "water", "smooth-gradient"),
    # -- lomiri-wallpapers-16.04: photographs ---------------------------------------------
    _deb("lomiri-bridge", "lomiri-wallpapers-16.04", f"{_BG}/Bridge_by_Sander_Klootwijk.jpg",
         "photo", "sky", "smooth-gradient", "landscape"),
    _deb("lomiri-dragonfly", "lomiri-wallpapers-16.04", f"{_BG}/Dragonfly_by_Bolly.jpg", "photo",
         "foliage", "sky", "macro"),
    _deb("lomiri-brushes", "lomiri-wallpapers-16.04", f"{_BG}/Picture_1A_by_freespace.jpg",
         "photo", "texture", "interior", "macro"),
    _deb("lomiri-fig", "lomiri-wallpapers-16.04", f"{_BG}/Picture_0B_by_freespace.jpg", "photo",
         "texture", "macro"),
    _deb("lomiri-dogs", "lomiri-wallpapers-16.04", f"{_BG}/friends_by_Aitzol_Berasategi.jpg",
         "photo", "face", "animal", "architecture"),
    _deb("lomiri-stream", "lomiri-wallpapers-16.04", f"{_BG}/life_by_Aitzol_Berasategi.jpg",
         "photo", "foliage", "water", "landscape"),
    _deb("lomiri-sunset", "lomiri-wallpapers-16.04", f"{_BG}/sunset_by_Aitzol_Berasategi.jpg",
         "photo", "sky", "clouds", "dusk", "dark", "landscape"),
    # -- lxqt-themes: photographs ---------------------------------------------------------
    _deb("lxqt-after-rain", "lxqt-themes", f"{_LXQT}/after-the-rain.jpg", "photo",
         "sky", "clouds", "dusk", "dark", "landscape"),
    _deb("lxqt-cloud", "lxqt-themes", f"{_LXQT}/cloud.png", "photo", "sky", "clouds"),
    _deb("lxqt-fog", "lxqt-themes", f"{_LXQT}/fog.jpg", "photo",
         "landscape", "low-contrast", "smooth-gradient"),
    _deb("lxqt-drop", "lxqt-themes", f"{_LXQT}/drop.png", "photo",
         "foliage", "macro", "bokeh", "smooth-gradient"),
    _deb("lxqt-hills", "lxqt-themes", f"{_LXQT}/this-is-not-windows.jpg", "photo",
         "sky", "landscape", "smooth-gradient"),
)

#: Downscaled copies chosen for content: each band gets photos, night, faces, foliage
#: and smooth gradients even where no native image of that size has them.
COPIES: tuple[Copy, ...] = (
    Copy("lxqt-after-rain", 0.2, "dusk photo under 0.3 MP"),
    Copy("lomiri-fossa", 0.25, "smooth-gradient art under 0.3 MP"),
    Copy("lxqt-hills", 0.15, "sky and landscape photo under 0.3 MP"),
    Copy("lomiri-sunset", 0.45, "dusk sky photo at 0.3-0.6 MP"),
    Copy("lomiri-dogs", 0.5, "faces (animal) photo at 0.3-0.6 MP"),
    Copy("lxqt-drop", 0.4, "smooth bokeh macro photo at 0.3-0.6 MP"),
    Copy("lomiri-infinite-sea", 0.55, "night-sky art with smooth gradients at 0.3-0.6 MP"),
    Copy("lomiri-dogs", 1.2, "faces (animal) photo at 0.6-2 MP"),
    Copy("lomiri-dragonfly", 0.9, "foliage photo at 0.6-2 MP"),
    Copy("lomiri-sunset", 1.5, "dusk sky photo at 0.6-2 MP"),
    Copy("lxqt-cloud", 0.8, "sky photo at 0.6-2 MP"),
    Copy("lxqt-fog", 1.2, "low-contrast smooth photo at 0.6-2 MP"),
    Copy("lomiri-stream", 0.7, "foliage and water photo at 0.6-2 MP"),
    Copy("ukui-ribbon", 1.8, "smooth-gradient art at 0.6-2 MP"),
)


# --------------------------------------------------------------------------------------
# Pure helpers (tested on synthetic images)


def megapixels(width: int, height: int) -> float:
    """``width * height / 1e6``."""
    return width * height / 1e6


def size_band(width: int, height: int) -> str | None:
    """The size band of a ``width`` x ``height`` image, or None below 0.06 MP."""
    mp = megapixels(width, height)
    for label, low, high in BANDS:
        if low <= mp < high:
            return label
    return None


def to_rgb8(image) -> tuple[np.ndarray, list[str]]:
    """Convert a PIL image to a contiguous 8-bit RGB array, saying what was converted.

    Palette images are expanded; an alpha channel is dropped when fully opaque and
    otherwise composited over white; grey sources are replicated to three channels;
    16-bit and float sources are scaled to 8 bits. An EXIF orientation is applied.

    Returns
    -------
    rgb : ndarray, shape (H, W, 3), dtype uint8
    notes : list of str
        One note per conversion (empty for an 8-bit RGB source).
    """
    from PIL import Image, ImageOps

    notes: list[str] = []
    orientation = image.getexif().get(0x0112, 1)
    if orientation not in (None, 1):
        image = ImageOps.exif_transpose(image)
        notes.append(f"EXIF orientation {orientation} applied")
    mode = image.mode
    if mode == "P":
        has_alpha = "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
        notes.append("palette expanded to RGB" + (" (with transparency)" if has_alpha else ""))
        mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(np.rint(a * (255.0 / top)), 0, 255).astype(np.uint8)
        notes.append(f"{mode} scaled to 8 bits")
        image = Image.fromarray(a, "L")
        mode = "L"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(image.convert("RGBA"))
        alpha = rgba[..., 3]
        if alpha.min() == 255:
            notes.append("opaque alpha channel dropped")
            rgb = rgba[..., :3]
        else:
            a = alpha[..., None].astype(np.float64) / 255.0
            rgb = np.rint(rgba[..., :3] * a + 255.0 * (1 - a)).astype(np.uint8)
            notes.append(f"alpha composited over white ({int(np.sum(alpha < 255))} of "
                         f"{alpha.size} pixels not opaque)")
        if mode in ("LA", "La"):
            notes.append("grey source replicated to RGB")
        return np.ascontiguousarray(rgb), notes
    if mode in ("L", "1"):
        notes.append("grey source replicated to RGB")
        image = image.convert("L").convert("RGB")
    elif mode == "CMYK":
        notes.append("CMYK converted to RGB")
        image = image.convert("RGB")
    elif mode != "RGB":
        notes.append(f"{mode} converted to RGB")
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8)), notes


def downscale(rgb: np.ndarray, target_megapixels: float) -> np.ndarray:
    """Shrink ``rgb`` to about ``target_megapixels`` (aspect kept) with INTER_AREA.

    Raises
    ------
    ValueError
        If the target is not smaller than the image (the corpus never upscales) or the
        copy's short side would fall under 256 px.
    """
    import cv2

    h, w = rgb.shape[:2]
    scale = math.sqrt(target_megapixels * 1e6 / (w * h))
    nw, nh = round(w * scale), round(h * scale)
    if nw >= w or nh >= h:
        raise ValueError(f"a {w}x{h} image cannot be downscaled to {target_megapixels} MP: "
                         "the corpus never upscales; pick a larger source")
    if min(nw, nh) < MIN_SHORT_SIDE:
        raise ValueError(f"downscaling {w}x{h} to {target_megapixels} MP gives {nw}x{nh}, "
                         f"short side under {MIN_SHORT_SIDE} px: pick a larger target")
    return np.ascontiguousarray(cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA))


def _copy_size(width: int, height: int, target: float) -> tuple[int, int]:
    scale = math.sqrt(target * 1e6 / (width * height))
    return round(width * scale), round(height * scale)


def plan_fill(records: Sequence[dict], *, min_per_band: int) -> list[Copy]:
    """Downscaled copies that bring every band to ``min_per_band`` members.

    Candidates are native records with at least twice the target's pixels whose copy
    lands in the band (its short side >= 256 px); each pick maximises the
    content the band lacks (tags not yet present, then a kind not yet present), then
    prefers sources with fewer copies so far, then the smaller id. Deterministic.

    Parameters
    ----------
    records : sequence of dict
        Manifest records so far (``id``, ``width``, ``height``, ``band``, ``kind``,
        ``tags``, ``derived_from``).
    min_per_band : int

    Returns
    -------
    list of Copy
    """
    records = list(records)
    natives = sorted((r for r in records if not r.get("derived_from")), key=lambda r: r["id"])
    plan: list[Copy] = []
    copies_of: dict[str, int] = {}
    for r in records:
        if r.get("derived_from"):
            copies_of[r["derived_from"]] = copies_of.get(r["derived_from"], 0) + 1
    for label, _low, _high in BANDS:
        members = [r for r in records if r["band"] == label]
        targets = FILL_TARGETS[label]
        made = 0
        while len(members) < min_per_band:
            have_tags = {t for r in members for t in r["tags"]}
            have_kinds = {r["kind"] for r in members}
            taken = {r["derived_from"] for r in members if r.get("derived_from")}
            best = None
            # The band's targets in turn, starting where the last pick left off.
            for k in range(len(targets)):
                target = targets[(made + k) % len(targets)]
                for r in natives:
                    # At least twice the target's pixels: a real reduction, never upscaling.
                    if r["id"] in taken or megapixels(r["width"], r["height"]) < 2 * target:
                        continue
                    nw, nh = _copy_size(r["width"], r["height"], target)
                    if min(nw, nh) < MIN_SHORT_SIDE or size_band(nw, nh) != label:
                        continue
                    gain = len(set(r["tags"]) - have_tags) + (r["kind"] not in have_kinds)
                    key = (-gain, copies_of.get(r["id"], 0), r["id"])
                    if best is None or key < best[0]:
                        best = (key, r, target)
                if best is not None:
                    break
            if best is None:
                break  # nothing large enough can be shrunk into this band
            _, r, target = best
            copy = Copy(r["id"], target, f"band {label} had {len(members)} members")
            plan.append(copy)
            members.append({"id": copy_id(r["id"], target), "band": label, "kind": r["kind"],
                            "tags": r["tags"], "derived_from": r["id"]})
            copies_of[r["id"]] = copies_of.get(r["id"], 0) + 1
            made += 1
    return plan


def copy_id(source_id: str, target: float) -> str:
    """Identifier of the downscaled copy of ``source_id`` at ``target`` megapixels."""
    return f"{source_id}@{target:g}mp"


# --------------------------------------------------------------------------------------
# Licences


def _dep5_stanzas(text: str) -> list[dict[str, str]]:
    stanzas, current, key = [], {}, None
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
            continue
        if line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
            continue
        m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
        if m:
            key = m.group(1).lower()
            current[key] = m.group(2).strip()
    if current:
        stanzas.append(current)
    return stanzas


def _pattern_matches(pattern: str, path: str) -> bool:
    parts = path.strip("/").split("/")
    if any(fnmatch.fnmatchcase("/".join(parts[i:]), pattern) for i in range(len(parts))):
        return True
    base = pattern.rsplit("/", 1)[-1]
    return base.strip("*") != "" and fnmatch.fnmatchcase(parts[-1], base)


def debian_licence(package: str, path: str, *, doc_root: str = "/usr/share/doc"
                   ) -> tuple[str, str, str]:
    """The licence of an installed file, read from ``<doc_root>/<package>/copyright``.

    A machine-readable (DEP-5) file is searched for the last ``Files:`` stanza whose
    pattern matches the path (or its file name); ``debian/*`` stanzas are ignored and
    ``Files: *`` is the fallback. Otherwise the free-text file is searched for the
    file name (or a glob naming it) and the licence sentence that follows. A
    ``License`` file beside the image is quoted too.

    Returns
    -------
    licence, copyright, licence_source : str
    """
    copyright_file = Path(doc_root) / package / "copyright"
    extra = ""
    for name in ("License", "LICENSE", "COPYING"):
        sibling = Path(path).parent / name
        if sibling.is_file():
            lines = [ln.strip() for ln in sibling.read_text(errors="replace").splitlines()
                     if re.search(r"licen[cs]", ln, re.I)]
            if lines:
                extra = f"; {sibling}: {lines[0]}"
            break
    if not copyright_file.is_file():
        return "unknown (no copyright file)" + extra, "", str(copyright_file)
    text = copyright_file.read_text(errors="replace")
    if text.startswith("Format:"):
        best, fallback = None, None
        for st in _dep5_stanzas(text):
            if "files" not in st:
                continue
            patterns = st["files"].split()
            if patterns == ["*"]:
                fallback = st
            elif not any(p.startswith("debian/") for p in patterns) and any(
                    _pattern_matches(p, path) for p in patterns):
                best = st
        st = best or fallback
        if st is not None:
            which = "Files: " + " ".join(st["files"].split()[:3])
            return (st.get("license", "unknown").split("\n")[0] + extra,
                    " ".join(st.get("copyright", "").split())[:200],
                    f"{copyright_file} ({which})")
        return "unknown (no Files stanza)" + extra, "", str(copyright_file)
    # Free text: find the file (or a glob naming it), then the next licence sentence.
    name = Path(path).name
    lines = text.splitlines()
    for i, line in enumerate(lines):
        words = [w.strip(" -:,") for w in line.split()]
        if any(w and (w == name or ("*" in w and fnmatch.fnmatchcase(name, w))) for w in words):
            for follow in lines[i:i + 40]:
                if re.search(r"licen[cs]ed under|^\s*License:", follow, re.I):
                    copy = next((ln.strip() for ln in lines[i:i + 40] if "Copyright" in ln), "")
                    return follow.strip() + extra, copy, str(copyright_file)
    first = next((ln.strip() for ln in lines if re.search(r"licen[cs]", ln, re.I)), "unknown")
    return f"see copyright file ({first})" + extra, "", str(copyright_file)


def pypi_licence(source: Source) -> tuple[str, str]:
    """The licence statement for a PyPI-shipped image and where it was read."""
    if source.licence_doc:
        module, func = source.licence_doc.split(":")
        doc = getattr(importlib.import_module(module), func).__doc__ or ""
        # Drop numpydoc section underlines ("Notes -----") and directives, keep the
        # first two sentences that state a licence.
        parts = re.split(r"\n\s*([A-Z][A-Za-z ]+)\n\s*-{3,}\n", doc)
        skip = {"Parameters", "Returns", "Examples", "References", "See Also"}
        doc = " ".join([parts[0]] + [body for name, body in zip(parts[1::2], parts[2::2])
                                     if name.strip() not in skip])
        text = re.sub(r"\.\.\s+\w+::\s*[\d.]*", " ", doc)
        text = " ".join(text.split())
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text)
                     if re.search(r"licen[cs]|public domain|copyright|CC0|CC-BY", s, re.I)]
        if sentences:
            return " ".join(sentences[:2])[:300], f"{source.licence_doc} docstring"
        return (f"no per-image statement in {source.licence_doc}'s docstring; see "
                f"{source.package}'s licence file", f"{source.licence_doc} docstring")
    from PIL import Image

    file = importlib.metadata.distribution(source.package).locate_file(source.path)
    with Image.open(file) as im:
        comment = im.info.get("comment", b"")
    comment = comment.decode(errors="replace") if isinstance(comment, bytes) else str(comment)
    statement = (f"file comment: {comment}; " if comment else "") + \
        f"no licence in the file; shipped as {source.package} sample data"
    return statement, f"{source.path} (file comment)"


# --------------------------------------------------------------------------------------
# Packages


def debian_packages(sources: Iterable[Source] = SOURCES) -> list[str]:
    """The Debian packages the corpus reads from, sorted."""
    return sorted({s.package for s in sources if s.origin == "debian"})


def dpkg_version(package: str) -> str | None:
    """The installed version of a Debian package, or None."""
    if shutil.which("dpkg-query") is None:
        return None
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package],
                         capture_output=True, text=True)
    if out.returncode != 0 or "install ok installed" not in out.stdout:
        return None
    return out.stdout.split("\t", 1)[1]


def install_commands(packages: Sequence[str], installed: Callable[[str], bool],
                     is_root: bool) -> list[list[str]]:
    """The apt-get commands that install the missing ``packages`` (none unless root)."""
    missing = [p for p in packages if not installed(p)]
    if not missing or not is_root or shutil.which("apt-get") is None:
        return []
    return [["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]]


def ensure_packages(packages: Sequence[str], *, install: bool) -> list[str]:
    """Install missing Debian packages when allowed and root; return those still missing."""
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if install:
        cmds = install_commands(packages, lambda p: dpkg_version(p) is not None, is_root)
        for cmd in cmds:
            print("+", " ".join(cmd), file=sys.stderr, flush=True)
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run(cmd, check=True, env=env)
    missing = [p for p in packages if dpkg_version(p) is None]
    if missing:
        how = ("run as root (or `sudo make corpus`)" if install else "drop --no-install")
        print(f"warning: Debian packages not installed: {', '.join(missing)}; their images are "
              f"left out ({how}, or apt-get install --no-install-recommends "
              f"{' '.join(missing)})", file=sys.stderr)
    return missing


# --------------------------------------------------------------------------------------
# Building


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_png(rgb: np.ndarray, path: Path) -> str:
    from PIL import Image

    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(rgb, "RGB").save(tmp, format="PNG", compress_level=6)
    os.replace(tmp, path)
    return _sha256(path)


def resolve(source: Source) -> tuple[Path, str | None]:
    """The file of ``source`` on this machine and its package version (None if absent)."""
    if source.origin == "pypi":
        try:
            dist = importlib.metadata.distribution(source.package)
        except importlib.metadata.PackageNotFoundError:
            return Path(source.path), None
        return Path(str(dist.locate_file(source.path))), dist.version
    return Path(source.path), dpkg_version(source.package)


def build(out: Path, *, sources: Sequence[Source] = SOURCES, copies: Sequence[Copy] = COPIES,
          min_per_band: int = 10, doc_root: str = "/usr/share/doc",
          resolver: Callable[[Source], tuple[Path, str | None]] = resolve,
          log=print) -> list[dict]:
    """Write the corpus into ``out`` and return its manifest records.

    Parameters
    ----------
    out : Path
        Output directory; PNG files go to ``out/images``, the manifest to
        ``out/manifest.jsonl``. Stale PNG files of earlier builds are removed.
    sources, copies : sequences
        The native images and the chosen downscaled copies.
    min_per_band : int
        Bands with fewer members get automatic downscaled copies (:func:`plan_fill`).
    doc_root : str
        Where Debian copyright files live.
    resolver : callable
        ``Source -> (path, version or None)``; None marks the source as unavailable.
    log : callable

    Returns
    -------
    list of dict
        The manifest records, in band order then by id.
    """
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = 200_000_000
    out = Path(out)
    (out / IMAGES).mkdir(parents=True, exist_ok=True)
    records: list[dict] = []
    arrays: dict[str, Path] = {}
    for src in sorted(sources, key=lambda s: s.id):
        if src.kind not in KINDS:
            raise ValueError(f"{src.id}: kind must be one of {KINDS}, got {src.kind!r}")
        unknown = sorted(set(src.tags) - set(TAGS))
        if unknown:
            raise ValueError(f"{src.id}: unknown tags {unknown}; add them to TAGS and docs")
        path, version = resolver(src)
        if version is None or not path.is_file():
            log(f"skip {src.id}: {src.package} is not installed ({path})")
            continue
        with Image.open(path) as im:
            im.load()
            rgb, notes = to_rgb8(im)
        h, w = rgb.shape[:2]
        band = size_band(w, h)
        if min(h, w) < MIN_SHORT_SIDE or band is None:
            log(f"skip {src.id}: {w}x{h} is under {MIN_SHORT_SIDE} px on its short side")
            continue
        if src.origin == "debian":
            licence, copyright_, licence_source = debian_licence(src.package, str(path),
                                                                 doc_root=doc_root)
        else:
            licence, licence_source = pypi_licence(src)
            copyright_ = ""
        file = out / IMAGES / f"{src.id}.png"
        records.append({
            "id": src.id, "file": f"{IMAGES}/{file.name}", "source": src.package,
            "origin": src.origin, "source_version": version, "source_path": str(path),
            "source_sha256": _sha256(path), "licence": licence, "copyright": copyright_,
            "licence_source": licence_source, "width": w, "height": h,
            "megapixels": round(megapixels(w, h), 4), "band": band, "kind": src.kind,
            "tags": sorted(set(src.tags)), "derived_from": None, "native": True,
            "notes": notes, "sha256": _write_png(rgb, file),
        })
        arrays[src.id] = file
    by_id = {r["id"]: r for r in records}

    def add_copy(copy: Copy) -> None:
        base = by_id.get(copy.source)
        if base is None:
            log(f"skip copy of {copy.source}: source not in the corpus")
            return
        cid = copy_id(copy.source, copy.megapixels)
        if cid in by_id:
            return
        with Image.open(arrays[copy.source]) as im:
            small = downscale(np.asarray(im.convert("RGB")), copy.megapixels)
        h, w = small.shape[:2]
        file = out / IMAGES / f"{cid}.png"
        rec = {**base, "id": cid, "file": f"{IMAGES}/{file.name}", "width": w, "height": h,
               "megapixels": round(megapixels(w, h), 4), "band": size_band(w, h),
               "derived_from": copy.source, "native": False,
               "notes": base["notes"] + [f"downscaled from {base['width']}x{base['height']} "
                                         f"with cv2.INTER_AREA ({copy.reason})"],
               "sha256": _write_png(small, file)}
        records.append(rec)
        by_id[cid] = rec

    for copy in sorted(copies, key=lambda c: (c.source, c.megapixels)):
        add_copy(copy)
    for copy in plan_fill(records, min_per_band=min_per_band):
        add_copy(copy)
    order = {b: i for i, b in enumerate(BAND_LABELS)}
    records.sort(key=lambda r: (order[r["band"]], r["id"]))
    keep = {Path(r["file"]).name for r in records}
    for stale in (out / IMAGES).glob("*.png"):
        if stale.name not in keep:
            stale.unlink()
    with open(out / MANIFEST, "w") as fh:
        for r in records:
            fh.write(json.dumps(r, sort_keys=True) + "\n")
    return records


def load_manifest(directory: Path) -> list[dict]:
    """The records of ``directory/manifest.jsonl`` (raises with what to run if absent)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: build the corpus first with "
                                f"`make corpus` or `python benchmarks/corpus.py --out {directory}`")
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def table(records: Sequence[dict]) -> str:
    """The corpus as markdown: a summary per band, then one table per band."""
    lines = ["| band | images | native | copies | photo | art | screenshot | text | sources |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label in BAND_LABELS:
        rr = [r for r in records if r["band"] == label]
        kinds = [sum(r["kind"] == k for r in rr) for k in KINDS]
        lines.append(f"| {label} | {len(rr)} | {sum(r['native'] for r in rr)} | "
                     f"{sum(not r['native'] for r in rr)} | " + " | ".join(map(str, kinds)) +
                     f" | {len({r['source'] for r in rr})} |")
    natives = [r for r in records if r["native"]]
    lines.append("")
    lines.append(f"{len(records)} images, {len(natives)} at native size from "
                 f"{len({r['source'] for r in natives})} packages; "
                 f"{sum(r['megapixels'] > 4 for r in natives)} native above 4 MP, "
                 f"{sum(r['megapixels'] < 0.6 for r in natives)} native under 0.6 MP "
                 f"({sum(0.06 <= r['megapixels'] < 0.3 for r in natives)} of them 0.06-0.3 MP).")
    lines += ["", "| tag | " + " | ".join(BAND_LABELS) + " |",
              "|---|" + "---|" * len(BAND_LABELS)]
    for tag in TAGS:
        counts = [sum(tag in r["tags"] for r in records if r["band"] == b) for b in BAND_LABELS]
        if any(counts):
            lines.append(f"| {tag} | " + " | ".join(map(str, counts)) + " |")
    for label in BAND_LABELS:
        rr = [r for r in records if r["band"] == label]
        if not rr:
            continue
        lines += ["", f"### {label} MP ({len(rr)} images)", "",
                  "| id | size | MP | kind | tags | source | derived from |",
                  "|---|---|---|---|---|---|---|"]
        for r in rr:
            lines.append(f"| {r['id']} | {r['width']}x{r['height']} | {r['megapixels']:.2f} | "
                         f"{r['kind']} | {', '.join(r['tags'])} | {r['source']} | "
                         f"{r['derived_from'] or ''} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python benchmarks/corpus.py && python benchmarks/corpus.py --list")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"corpus directory (default: {DEFAULT_OUT.relative_to(REPO)}/)")
    parser.add_argument("--list", action="store_true",
                        help="print the table of an existing corpus per size band and exit")
    parser.add_argument("--no-install", action="store_true",
                        help="do not apt-get install missing Debian packages")
    parser.add_argument("--min-per-band", type=int, default=10,
                        help="add automatic downscaled copies to bands with fewer members")
    args = parser.parse_args(argv)
    if args.list:
        try:
            print(table(load_manifest(args.out)))
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    for module in ("PIL", "cv2", "skimage", "matplotlib"):
        try:
            importlib.import_module(module)
        except ImportError:
            print(f"error: {module} does not import: run `make corpus` (it installs the bench "
                  "extras) or pip install -e '.[bench]'", file=sys.stderr)
            return 2
    ensure_packages(debian_packages(), install=not args.no_install)
    t0 = time.time()
    records = build(args.out, min_per_band=args.min_per_band,
                    log=lambda m: print(m, file=sys.stderr))
    print(table(records))
    print(f"\nwrote {len(records)} images and {args.out / MANIFEST} in {time.time() - t0:.0f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
