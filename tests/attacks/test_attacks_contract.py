"""The contract every registered attack must keep: HxWx3 uint8 in, a new HxWx3
uint8 array out, input untouched, randomness only from ``rng``, clear errors."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from provmark.attacks import ATTACKS, Attack

ALL = sorted(ATTACKS)
GRID_CASES = [(name, i) for name in ALL for i in range(len(ATTACKS[name].grid))]


def _runnable(name: str) -> Attack:
    attack = ATTACKS[name]
    if not attack.available:
        pytest.skip(f"{name} unavailable here: {attack.unavailable_reason}")
    return attack


@pytest.mark.parametrize("name", ALL)
def test_output_contract(name, photo):
    attack = _runnable(name)
    out = attack(photo, rng=0)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.uint8
    assert out.ndim == 3 and out.shape[2] == 3 and out.shape[0] >= 1 and out.shape[1] >= 1
    assert out.flags.c_contiguous and out.flags.writeable
    assert not np.shares_memory(out, photo)


@pytest.mark.parametrize("name", ALL)
def test_input_not_modified(name, texture):
    attack = _runnable(name)
    image = texture.copy()  # writable, so an in-place write would go unnoticed by numpy
    before = image.copy()
    attack(image, rng=3)
    np.testing.assert_array_equal(image, before)
    attack(texture, rng=3)  # read-only input must be accepted too


@pytest.mark.parametrize("name", ALL)
def test_non_contiguous_input_is_accepted(name, photo):
    attack = _runnable(name)
    view = photo[:, ::-1]  # negative strides
    np.testing.assert_array_equal(attack(view, rng=5), attack(np.ascontiguousarray(view), rng=5))


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_output(name, photo):
    attack = _runnable(name)
    a = attack(photo, rng=11)
    b = attack(photo, rng=11)
    c = attack(photo, rng=np.random.default_rng(11))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("name", ALL)
def test_seed_dependence_matches_stochastic_flag(name, photo):
    attack = _runnable(name)
    a = attack(photo, rng=1)
    b = attack(photo, rng=2)
    same = a.shape == b.shape and np.array_equal(a, b)
    if attack.stochastic:
        assert not same, f"{name} is flagged stochastic but ignores its seed"
    else:
        assert same, f"{name} is flagged deterministic but depends on its seed"
        np.testing.assert_array_equal(a, attack(photo))  # rng=None too


@pytest.mark.parametrize(("name", "index"), GRID_CASES)
def test_every_grid_entry_runs(name, index, photo):
    attack = _runnable(name)
    out = attack(photo, rng=0, **attack.grid[index])
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


@pytest.mark.parametrize("name", ALL)
def test_attack_changes_the_image(name, photo):
    """Every default and every strongest grid setting actually does something."""
    attack = _runnable(name)
    for params in ({}, attack.grid[-1]):
        out = attack(photo, rng=0, **params)
        assert out.shape != photo.shape or not np.array_equal(out, photo), (name, params)


BAD_INPUTS = [
    pytest.param(np.zeros((32, 32), np.uint8), r"2-D array.*HxWx3", id="2d"),
    pytest.param(np.zeros((32, 32, 3), np.float32), r"dtype float32.*uint8", id="float"),
    pytest.param(np.zeros((32, 32, 3), np.uint16), r"dtype uint16.*uint8", id="uint16"),
    pytest.param(np.zeros((32, 32, 4), np.uint8), r"RGBA.*img\[\.\.\., :3\]", id="rgba"),
    pytest.param(np.zeros((3, 32, 32), np.uint8), r"channels first", id="chw"),
    pytest.param(np.zeros((2, 32, 32, 3), np.uint8), r"HxWx3", id="4d"),
    pytest.param(np.zeros((0, 32, 3), np.uint8), r"at least one pixel", id="empty"),
    pytest.param([[[0, 0, 0]]], r"numpy array.*np\.asarray", id="list"),
]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(("bad", "message"), BAD_INPUTS)
def test_invalid_image_raises_helpful_valueerror(name, bad, message):
    attack = ATTACKS[name]
    with pytest.raises(ValueError, match=message):
        attack.func(bad, **attack.params)


@pytest.mark.parametrize("name", ALL)
def test_signature_and_docstring(name):
    attack = ATTACKS[name]
    assert attack.func.__name__ == name
    params = list(inspect.signature(attack.func).parameters.values())
    assert params[0].name == "image"
    assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    for p in params[1:]:
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, f"{name}: {p.name} must be keyword-only"
        assert p.default is not inspect.Parameter.empty, f"{name}: {p.name} needs a default"
        assert not isinstance(p.default, (list, dict, set)), f"{name}: mutable default {p.name}"
    assert params[-1].name == "rng" and params[-1].default is None
    doc = inspect.getdoc(attack.func) or ""
    for section in ("Parameters\n----------", "Returns\n-------", "rng :"):
        assert section in doc, f"{name} docstring lacks {section!r}"
    for p in params[1:]:
        assert f"{p.name} :" in doc, f"{name} docstring does not document {p.name}"
