# Every target creates .venv and installs what it needs first (idempotent, stamped).
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is installed first and explicitly: on the project's CI machines these exact wheels lie on disk.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
EXTRAS ?= test
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install demo test lint bench clean

$(VENV)/.installed-$(EXTRAS): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed-$(EXTRAS)

demo: $(VENV)/.installed-$(EXTRAS)
	$(VENV)/bin/fermixnet demo $(DEMO_ARGS)

test: $(VENV)/.installed-$(EXTRAS)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-$(EXTRAS)
	$(PY) -m ruff check src tests benchmarks

bench: $(VENV)/.installed-$(EXTRAS)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info
