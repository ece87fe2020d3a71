"""docs/format.md against the code: every constant the specification states in its
tables and key sentences must be the value the code uses. A change to either side
without the other fails here (and a change to a normative value is a new format
version, see docs/format.md section 9)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from provmark import _codec, _convolutional, _layout, _payload, _template
from provmark._detect import MAX_FALSE_ALARM, SOFT_CLIP, SOFT_RELATIVE, SOFT_SCALE
from provmark._embed import DEFAULT_STRENGTH
from provmark.kernels import ANGLE_PERIOD, DCT8_64

DOC = (Path(__file__).resolve().parents[1] / "docs" / "format.md").read_text(encoding="utf-8")
#: The text with every run of whitespace made one space (sentences wrap).
FLAT = " ".join(DOC.split())
MODULES = {"_layout": _layout, "_codec": _codec, "_payload": _payload,
           "_template": _template, "_convolutional": _convolutional}


def _rows(header: str) -> list[list[str]]:
    """The body rows of every Markdown table whose header row starts with ``header``."""
    rows, inside = [], False
    for line in DOC.splitlines():
        if line.startswith("| " + header + " |"):
            inside = True
            continue
        if inside and line.startswith("|---"):
            continue
        if inside and line.startswith("|"):
            # Cells are separated by " | " (a value may hold "||").
            rows.append([c.strip() for c in line.strip()[1:-1].split(" | ")])
        else:
            inside = False
    return rows


def _numbers(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"(?<![\w.])\d+(?![\w.])", text)}


def test_every_named_constant_in_the_tables_has_its_documented_value():
    """Rows "name | value | defined in": each integer constant named in the last
    column appears among the value's numbers; string constants appear in it."""
    checked = 0
    for name, value, where in _rows("name | value | defined in"):
        module = None
        for ref in re.findall(r"`([\w.]+)`", where):
            if "." in ref:
                mod, ref = ref.split(".", 1)
                module = MODULES.get(mod)
            if module is None or not hasattr(module, ref):
                continue
            code = getattr(module, ref)
            if isinstance(code, (int, np.integer)) and not isinstance(code, bool):
                assert int(code) in _numbers(value), (name, ref, code, value)
                checked += 1
            elif isinstance(code, (bytes, str)):
                text = code.decode() if isinstance(code, bytes) else code
                assert text in value, (name, ref, code, value)
                checked += 1
    assert checked >= 14  # the layout and payload tables, not an empty match


def test_strength_table_matches_the_default_strength():
    rows = _rows("`Strength` field | default | meaning")
    assert len(rows) >= 7
    for fields, defaults, _ in rows:
        names = re.findall(r"`(\w+)`", fields)
        values = [float(v) for v in re.findall(r"\d+(?:\.\d+)?", defaults)]
        assert len(names) == len(values), (fields, defaults)
        for n, v in zip(names, values):
            assert getattr(DEFAULT_STRENGTH, n) == pytest.approx(v), n


def test_coefficient_pairs_table():
    pairs = [tuple(int(x) for x in re.findall(r"\d+", u1v1 + u2v2))
             for _, u1v1, u2v2, _ in _rows("pair | `(u1, v1)` | `(u2, v2)` |")]
    assert pairs == [tuple(int(x) for x in p) for p in _layout.PAIRS]


def test_extension_pairs_table_and_constants():
    """Section 5.8: the extension pairs and the embedder's and reader's constants."""
    from provmark import _detect, _embed

    pairs = [tuple(int(x) for x in re.findall(r"\d+", c1 + c2))
             for _, c1, c2 in _rows("pair | coefficient 1 `(u1, v1)` | coefficient 2 `(u2, v2)`")]
    assert pairs == [tuple(int(x) for x in p) for p in _layout.EXTENSION_PAIRS]
    for name, value in (("EXTENSION_MAX_PIXELS", _embed.EXTENSION_MAX_PIXELS),
                        ("EXTENSION_HEADROOM", _embed.EXTENSION_HEADROOM),
                        ("EXTENSION_CAP_SHARE", _embed.EXTENSION_CAP_SHARE),
                        ("EXTENSION_STRENGTHS", _embed.EXTENSION_STRENGTHS),
                        ("EXTENSION_MIN_Z", _detect.EXTENSION_MIN_Z)):
        assert f"`{name} = {value}`" in FLAT, name


def test_inner_code_and_reed_solomon_parameters():
    conv = dict((k, v) for k, v in _rows("parameter | value"))
    assert f"K = {_convolutional.CONSTRAINT}" in conv["constraint length"]
    assert re.findall(r"\d+", conv["generators (octal)"].split("(")[0]) == [
        format(g, "o") for g in _convolutional.GENERATORS]
    assert f"{_convolutional.TAIL} zero bits" in conv["tail"]
    assert f"{_codec.PARITY_BYTES} (" in conv["parity bytes"]
    assert f"{_codec.CHANNEL_BITS} channel bits" in conv["punctured"]


def test_sentences_that_state_constants():
    assert f"`P0 = {_template.PERIOD}` pixels (`PERIOD`)" in FLAT
    assert f"`N = {_template.N_FREQS}` cosines (`N_FREQS`)" in FLAT
    lo, hi = _template.BAND
    assert f"[{lo} * 64, {hi} * 64]" in FLAT
    assert f"`FACTOR_SIDE = {_template.FACTOR_SIDE}`, `MAX_FACTOR = {_template.MAX_FACTOR}`" in FLAT
    # The DCT matrix formula of section 4.3.
    k, i = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    formula = np.where(k == 0, math.sqrt(1 / 8), math.sqrt(2 / 8) * np.cos(math.pi * (2 * i + 1) * k / 16))
    np.testing.assert_allclose(DCT8_64, formula, atol=1e-15)
    assert ANGLE_PERIOD == pytest.approx(math.pi / 2)
    for name, value in (("SOFT_SCALE", SOFT_SCALE), ("SOFT_RELATIVE", SOFT_RELATIVE),
                        ("SOFT_CLIP", SOFT_CLIP)):
        assert f"`{name} = {value}`" in FLAT, name
    assert MAX_FALSE_ALARM == 1e-9 and "1e-9" in FLAT


def test_false_alarm_terms():
    rows = dict((k, v) for k, v in _rows("term | value"))
    per_attempt = [v for k, v in rows.items() if k.startswith("per attempt")][0]
    assert float(per_attempt) == pytest.approx(_codec.false_alarm_per_channel_attempt(), rel=1e-4)
