"""The packaging configuration in pyproject.toml ships every file of the package and
builds without setuptools warnings: every directory of ``src/provmark`` (data
directories included), ``kernels/`` and ``attacks/`` is a listed package, every
non-Python file in them matches a ``package-data`` pattern, and the licence is an
SPDX string. A missing entry makes ``pip install`` print a page of warnings
("Package 'provmark.data' is absent from the `packages` configuration") and, for a
wheel, leaves the files out.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def _package_dirs(pyproject) -> dict[str, Path]:
    """Every directory that installs as a package, by dotted name, found on disk."""
    mapping = pyproject["tool"]["setuptools"]["package-dir"]
    roots = {"provmark": ROOT / mapping[""] / "provmark"}
    roots.update({name: ROOT / path for name, path in mapping.items() if name})
    found = {}
    for name, root in roots.items():
        for d in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
            rel = d.relative_to(root).parts
            if "__pycache__" in rel or any(part.startswith(".") for part in rel):
                continue
            dotted = ".".join((name, *rel))
            # A remapped package (kernels/ -> provmark.kernels) owns its own tree.
            if dotted not in found:
                found[dotted] = d
    return found


def test_every_directory_is_a_listed_package(pyproject):
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    on_disk = set(_package_dirs(pyproject))
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages"
    assert listed - on_disk == set(), "listed packages without a directory"


def test_every_data_file_matches_package_data(pyproject):
    # setuptools globs each package's patterns relative to its directory, so a file
    # ships if a pattern of its package or of an enclosing package reaches it.
    patterns = pyproject["tool"]["setuptools"].get("package-data", {})
    dirs = _package_dirs(pyproject)
    shipped = {f for name, d in dirs.items() for pat in patterns.get(name, [])
               for f in d.glob(pat)}
    missing = [str(f.relative_to(ROOT)) for d in dirs.values() for f in d.iterdir()
               if f.is_file() and f.suffix not in (".py", ".pyc") and f not in shipped]
    assert missing == []


def test_licence_is_an_spdx_string_with_a_setuptools_that_reads_it(pyproject):
    # A table ({text = ...}) is deprecated and warns on every build since
    # setuptools 77, the first version that reads the SPDX string.
    assert pyproject["project"]["license"] == "Apache-2.0"
    requires = pyproject["build-system"]["requires"]
    setuptools = [r for r in requires if r.startswith("setuptools")]
    assert len(setuptools) == 1
    m = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", setuptools[0].replace(" ", ""))
    assert m and int(m.group(1)) >= 77, setuptools


def test_the_repository_kernels_directory_does_not_pass_for_a_top_level_package():
    """kernels/ is installed as provmark.kernels; found as a top-level ``kernels`` (the
    repository's root on sys.path, as ``python -m pytest`` puts it) it would shadow
    Hugging Face's ``kernels`` distribution, which transformers 5.25 imports when it is
    installed (the diffusers integration then failed to import)."""
    import importlib.util

    spec = importlib.util.find_spec("kernels")
    assert spec is None or spec.origin is None or \
        Path(spec.origin).resolve().parent != ROOT / "kernels"
    import provmark.kernels

    assert Path(provmark.kernels.__file__).resolve().parent.name == "kernels"
