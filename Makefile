# provmark — the two-command quick start: `make demo` and `make test`.
# Everything installs into .venv from the package registry; nothing else is needed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PIPQ   := $(PIP) install --quiet --disable-pip-version-check

.PHONY: help install install-test demo test test-fast bench bench-speed bench-robustness bench-fp peers bench-quick corpus fuzz clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIPQ) --upgrade pip

# setuptools reports every editable install of a remapped layout (kernels/ and attacks/
# install as provmark.kernels and provmark.attacks) with an "Editable installation."
# notice in warning form; it is information, not a problem, so the installs hide it.
$(VENV)/.installed $(VENV)/.installed-test $(VENV)/.installed-bench: \
  export PYTHONWARNINGS = ignore:Editable installation

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	$(PIPQ) -e .
	touch $@

# The CPU build of torch first (the diffusers tests need it; a bare `torch` requirement
# would pull a CUDA build of several GB), then every optional part, then Debian's
# chromium (the browser tests of the service's page: Playwright cannot download its own
# browser here) and exiftool (the C2PA tests), see scripts/install-test-tools.sh.
TORCH_CPU ?= torch==2.13.0

# Three things at once, since pip keeps one core busy: pip installs torch and the test
# extras; scripts/warm-kernels.py compiles the Numba kernels into their cache
# (otherwise each test process of a fresh clone that starts before the cache exists
# compiles them again: 48 s of a fresh-clone make test); apt-get installs chromium and
# exiftool. The test extras install without byte-compiling (--no-compile): pip would
# compile every module of torch, ray and the rest (63 of their 148 s here), and the
# tests import a small part of them, which Python compiles on first import (the test
# targets allow it to write the .pyc files, see PYTHONDONTWRITEBYTECODE below).
$(VENV)/.installed-test: $(VENV)/.installed
	@$(PY) scripts/warm-kernels.py > $(VENV)/warm-kernels.log 2>&1 & warm=$$!; \
	scripts/install-test-tools.sh & tools=$$!; \
	$(PIPQ) --no-compile $(TORCH_CPU) && $(PIPQ) --no-compile -e '.[test]'; \
	status=$$?; wait $$tools || status=1; \
	wait $$warm || echo "warm-kernels.py failed (the tests compile instead): $(VENV)/warm-kernels.log"; \
	exit $$status
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(PIPQ) -e '.[bench]'
	touch $@

install: $(VENV)/.installed  ## create .venv and install provmark

install-test: $(VENV)/.installed-test  ## install with the test extras

demo: install  ## embed, JPEG-compress and detect on the bundled sample photo
	$(VENV)/bin/provmark demo

# Test processes (pytest-xdist): 2 halves the suite's time on the 2-core CI machine.
# --dist loadfile gives each test file to one worker: with the default (load), a file's
# tests can be split between the two, and both then compute its module fixtures; the
# false-positive module's (3000 detections, 160 s of one core) was computed twice in one
# run of two (suite 7:28 against 6:11). xdist_group with --dist loadgroup would be finer,
# but xdist 3.8 does not group under pytest 9.2 (its group never reaches the node IDs).
# The kernels' pure-Python bodies (NUMBA_DISABLE_JIT=1) are tested by one test of the
# suite, tests/kernels/test_modulation.py::test_kernel_bodies_without_jit, in parallel
# with the rest.
TEST_WORKERS ?= 2

# An environment that sets PYTHONDONTWRITEBYTECODE (some CI images do) would make every
# test process compile again what it imports from the packages installed with
# --no-compile above: the test targets let Python cache the .pyc files in .venv.
test test-fast: export PYTHONDONTWRITEBYTECODE =

test: install-test  ## the full test suite, slow tests included (< 10 min on 2 cores with the installs)
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile

test-fast: install-test  ## the inner loop (2-3 min on 2 cores): the suite without the tests marked slow
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow"

peers: $(VENV)/.installed-bench  ## install the peer baselines (CPU torch first; --no-deps, see pyproject)
	$(PIPQ) $(TORCH_CPU)
	$(PIPQ) --no-deps invisible-watermark==0.2.0 blind-watermark==0.4.4
	$(PIPQ) "onnxruntime>=1.16"

bench-speed: peers  ## pytest-benchmark speed runs, provmark next to invisible-watermark
	$(PY) -m pytest benchmarks/test_speed.py --benchmark-enable -q -p no:cacheprovider \
	  --benchmark-columns=min,median,iqr,rounds --benchmark-sort=name

bench-robustness: $(VENV)/.installed-bench  ## robustness table of the core bar
	$(PY) benchmarks/robustness.py

bench-fp: $(VENV)/.installed-bench  ## false positives over >= 10,000 detections
	$(PY) benchmarks/false_positives.py

bench-quick: peers  ## provmark bench --quick (< 5 min): tables and plots in bench-output/quick
	$(VENV)/bin/provmark bench --quick --out bench-output/quick

bench: bench-speed bench-robustness bench-fp  ## all benchmarks

corpus: $(VENV)/.installed-bench  ## build the real test corpus in .corpus/ (apt-get installs its image packages when root)
	$(PY) benchmarks/corpus.py

# Fuzzing (issue 11): every reader of untrusted bytes, one harness after another, for
# FUZZ_MINUTES each (the short run is part of `make test`). Corpora, failures and the
# summary table go to FUZZ_OUT; see tests/fuzz/run.py.
FUZZ_MINUTES ?= 10
FUZZ_HARNESSES ?=
FUZZ_OUT ?= fuzz-output

$(VENV)/.installed-fuzz: export PYTHONWARNINGS = ignore:Editable installation
$(VENV)/.installed-fuzz: $(VENV)/.installed-test
	$(PIPQ) -e '.[fuzz]'
	touch $@

fuzz: $(VENV)/.installed-fuzz  ## fuzz each reader FUZZ_MINUTES (10) in turn; e.g. make fuzz FUZZ_MINUTES=1 FUZZ_HARNESSES="xmp json"
	$(PY) tests/fuzz/run.py --minutes $(FUZZ_MINUTES) --out $(FUZZ_OUT) $(FUZZ_HARNESSES)

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .benchmarks .hypothesis demo-output bench-output
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
