"""The examples in the public API's docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

#: Every module whose docstrings hold examples (``>>>``).
MODULES = ("provmark._embed", "provmark._payload", "provmark._bytes", "provmark._label",
           "provmark._inspect", "provmark._tamper", "provmark.metadata",
           "provmark.metadata._model", "provmark.explicit", "provmark.c2pa",
           "provmark.integrations.diffusers", "provmark.bench.metrics",
           "provmark.bench.peers", "provmark.attacks._registry", "provmark.attacks._geometry",
           "provmark.attacks._compression")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             report=True)
    assert result.attempted > 0, f"{name} holds no example any more: update MODULES"
    assert result.failed == 0
