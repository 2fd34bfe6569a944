# Every target creates .venv and installs what it needs first (idempotent, stamped).
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is installed first and explicitly: on the project's CI machines these exact wheels lie on disk.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
# Extras of pyproject.toml installed for test, lint and bench; the demo needs the base
# dependencies only (DEMO_EXTRAS=base: no extra), so no optional package can block it.
EXTRAS ?= test
DEMO_EXTRAS ?= base
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install demo test lint bench clean

# One stamp per installed set, $(VENV)/.installed-<extras>; the sets add up in one .venv, so
# `make demo` and `make test` work in either order.
.PRECIOUS: $(VENV)/.installed-%
$(VENV)/.installed-%: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.$(if $(filter base,$*),,[$*])'
	touch $@

install: $(VENV)/.installed-$(EXTRAS)

demo: $(VENV)/.installed-$(DEMO_EXTRAS)
	$(VENV)/bin/fermixnet demo $(DEMO_ARGS)

test: $(VENV)/.installed-$(EXTRAS)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-$(EXTRAS)
	$(PY) -m ruff check src tests benchmarks

bench: $(VENV)/.installed-$(EXTRAS)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info
