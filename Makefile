# seqattn: `make demo` (fresh machine -> tagged sample text) and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: demo test bench fuzz clean

# torch first (the CPU wheel these machines carry), then the package: pip must never resolve
# another torch, which would pull gigabytes of CUDA packages.
# setup.py builds the C++ kernel (seqattn/nn/csrc) in place; an edit to it re-installs.
$(STAMP): pyproject.toml setup.py seqattn/nn/csrc/banded_attention.cpp
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/seqattn tag data/sample.txt

test: $(STAMP)
	sh scripts/install_test_browser.sh
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[bench]'
	$(PY) benchmarks/run_all.py

# >= 10,000 generated inputs per reader (text, CoNLL-U, audio, graph) and a sample through the CLI;
# JSON on stdout, exit 1 on any error that is not the project's InputError.  Not part of `make test`.
fuzz: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) benchmarks/fuzz.py < /dev/null

clean:
	rm -rf $(VENV) build *.egg-info seqattn/nn/_banded_attention*.so
