"""The registry: names, families, defaults, severity grids, apply, immutability."""

from __future__ import annotations

import dataclasses
import doctest
import importlib

import numpy as np
import pytest

import provmark.attacks as attacks
from provmark.attacks import (
    ATTACKS,
    FAMILIES,
    Attack,
    AttackUnavailableError,
    apply,
    families,
    get,
    names,
)

EXPECTED = {
    "compression": {"jpeg", "jpeg_pillow", "webp", "avif", "png_quantize"},
    "geometry": {"crop", "resize", "resize_down_up", "rotate", "flip", "perspective"},
    "filtering": {"gaussian_blur", "median_blur", "box_blur", "sharpen", "gaussian_noise",
                  "salt_pepper"},
    "colour": {"brightness", "contrast", "gamma", "hue", "saturation", "grayscale",
               "colour_temperature", "curves"},
    "occlusion": {"occlude", "inpaint", "paste_patch"},
    "chain": {"screenshot", "social_media", "combined"},
}


def test_families_and_members():
    assert families() == FAMILIES == tuple(EXPECTED)
    for family, members in EXPECTED.items():
        assert set(names(family)) == members
    assert set(names()) == set().union(*EXPECTED.values()) == set(ATTACKS)


def test_every_registered_attack_is_exported():
    for name, attack in ATTACKS.items():
        assert getattr(attacks, name) is attack.func
        assert name in attacks.__all__


def test_all_lists_only_existing_names():
    for name in attacks.__all__:
        assert hasattr(attacks, name), name
    assert len(set(attacks.__all__)) == len(attacks.__all__)


def test_records_are_consistent():
    for name, a in ATTACKS.items():
        assert a.name == name
        assert a.description and a.family in FAMILIES
        assert a.severity_key in a.params
        assert len(a.grid) >= 2
        assert all(a.severity_key in g for g in a.grid)
        values = [g[a.severity_key] for g in a.grid]
        assert len(set(map(repr, values))) == len(values), f"{name} grid repeats a value"
        assert set(a.params) <= set(a.parameters)
        assert a.available or a.unavailable_reason


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("jpeg", [90, 75, 50, 30, 20]),
        ("crop", [0.9, 0.75, 0.5, 0.25]),
        ("rotate", [1.0, 2.0, 5.0, 10.0]),
        ("gaussian_blur", [0.5, 1.0, 1.5, 2.0, 3.0]),
        ("gaussian_noise", [2.0, 5.0, 10.0, 20.0]),
        ("occlude", [0.1, 0.25, 0.4]),
    ],
)
def test_grids_cover_typical_benchmark_values(name, values):
    a = get(name)
    assert [g[a.severity_key] for g in a.grid] == values


def test_two_sided_grids_are_ordered_by_distance_from_identity():
    for name, identity in (("brightness", 1.0), ("contrast", 1.0), ("gamma", 1.0),
                           ("hue", 0.0), ("colour_temperature", 0.0)):
        a = get(name)
        dist = [round(abs(g[a.severity_key] - identity), 9) for g in a.grid]
        assert dist == sorted(dist), name
        values = [g[a.severity_key] for g in a.grid]
        assert min(values) < identity < max(values)


def test_get_unknown_name_suggests_close_names():
    with pytest.raises(KeyError, match="did you mean 'jpeg'"):
        get("jpg")
    with pytest.raises(KeyError, match="no attack named"):
        get("zzzzzz")


def test_names_rejects_unknown_family():
    with pytest.raises(ValueError, match="family must be one of"):
        names("noise")


def test_apply_uses_defaults_and_overrides(photo):
    np.testing.assert_array_equal(apply("jpeg", photo), attacks.jpeg(photo, quality=75))
    np.testing.assert_array_equal(apply("jpeg", photo, quality=30), attacks.jpeg(photo, quality=30))
    np.testing.assert_array_equal(
        apply("crop", photo, rng=4, area=0.25), attacks.crop(photo, area=0.25, position="random", rng=4)
    )
    # a parameter that is not among the defaults but is accepted by the function
    src = np.full((10, 10, 3), 7, np.uint8)
    out = apply("paste_patch", photo, rng=0, source=src, position="centre", area=0.25)
    assert (out[24:72, 32:96] == 7).all()


def test_apply_rejects_unknown_parameter(photo):
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['qualty'\].*accepts \['quality'\]"):
        apply("jpeg", photo, qualty=50)


def test_records_are_immutable():
    a = get("jpeg")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        a.params["quality"] = 5  # type: ignore[index]
    with pytest.raises(TypeError):
        a.grid[0]["quality"] = 5  # type: ignore[index]
    with pytest.raises(TypeError):
        ATTACKS["x"] = a  # type: ignore[index]
    assert get("jpeg").params["quality"] == 75


def test_attack_record_validation():
    def fake(image, *, strength=1.0, rng=None):
        return image.copy()

    Attack("fake", fake, "colour", "d", {"strength": 1.0}, ({"strength": 2.0},), "strength")
    with pytest.raises(ValueError, match="family must be one of"):
        Attack("fake", fake, "misc", "d", {"strength": 1.0}, ({"strength": 2.0},), "strength")
    with pytest.raises(ValueError, match="not keyword parameters"):
        Attack("fake", fake, "colour", "d", {"power": 1.0}, ({"power": 2.0},), "power")
    with pytest.raises(ValueError, match="severity_key"):
        Attack("fake", fake, "colour", "d", {"strength": 1.0}, ({"strength": 2.0},), "level")
    with pytest.raises(ValueError, match="grid entry"):
        Attack("fake", fake, "colour", "d", {"strength": 1.0}, ({},), "strength")
    with pytest.raises(ValueError, match="unavailable_reason"):
        Attack("fake", fake, "colour", "d", {"strength": 1.0}, ({"strength": 2.0},), "strength",
               available=False)


def test_unavailable_attack_raises_with_reason(photo):
    def fake(image, *, strength=1.0, rng=None):
        return image.copy()

    a = Attack("fake", fake, "colour", "d", {"strength": 1.0}, ({"strength": 2.0},), "strength",
               available=False, unavailable_reason="needs libfake >= 2")
    with pytest.raises(AttackUnavailableError, match="needs libfake >= 2"):
        a(photo)


def test_names_available_only():
    expected = tuple(n for n in names() if ATTACKS[n].available)
    assert names(available_only=True) == expected


def test_avif_unavailable_path(monkeypatch, photo):
    compression = importlib.import_module("provmark.attacks._compression")
    monkeypatch.setattr(compression, "AVIF_AVAILABLE", False)
    monkeypatch.setattr(compression, "AVIF_UNAVAILABLE_REASON", "Pillow was built without libavif")
    with pytest.raises(AttackUnavailableError, match="without libavif"):
        attacks.avif(photo)


def test_avif_availability_matches_pillow():
    from PIL import features

    try:
        expected = features.check_module("avif")
    except ValueError:
        expected = False
    assert get("avif").available is expected is attacks.AVIF_AVAILABLE


@pytest.mark.parametrize(
    "module",
    ["_registry", "_compression", "_geometry", "_filtering", "_colour", "_occlusion", "_chains"],
)
def test_docstring_examples(module):
    mod = importlib.import_module(f"provmark.attacks.{module}")
    assert mod.__doc__, f"{module} needs a module docstring"
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
