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

# The suite runs on TEST_WORKERS pytest-xdist processes (one per core by default; each computes
# on one thread, tests/conftest.py), tests handed out as workers free up (worksteal).
TEST_WORKERS ?= auto
PYTEST = $(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal

# The suite, then the tests marked `draw` (their verdict rests on a training draw, which differs
# by CPU kind) again under a second instruction set, DRAW_ISA: by default AVX2 where the CPU has
# AVX-512, and ATen's default (unvectorised) kernels where AVX2 is already the default (an AMD EPYC
# without AVX-512 draws the same floats under AVX2 and its default; ATen's default kernels give
# another draw at oneDNN's full speed, where SSE4.1 for oneDNN too costs twice the time). Fails if
# either run fails; exit status 5 (PYTEST_ARGS selects no `draw` test) counts as a pass.
DRAW_ISA ?=
SECOND_ISA = $(PY) -c "import torch; print('ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=default' \
	if torch.backends.cpu.get_cpu_capability() == 'AVX2' \
	else 'ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2')"

test: $(VENV)/.installed-$(EXTRAS)
	$(PYTEST) $(PYTEST_ARGS); suite=$$?; \
	isa="$(DRAW_ISA)"; [ -n "$$isa" ] || isa=$$($(SECOND_ISA)); \
	echo "draw tests again under $$isa"; \
	env $$isa $(PYTEST) $(PYTEST_ARGS) -m draw; draw=$$?; [ $$draw -eq 5 ] && draw=0; \
	[ $$suite -eq 0 ] && [ $$draw -eq 0 ]

lint: $(VENV)/.installed-$(EXTRAS)
	$(PY) -m ruff check src tests benchmarks

bench: $(VENV)/.installed-$(EXTRAS)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info
