# posefix-bench: every target creates the environment in .venv/ first if it is missing (see `setup`).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
UV := .tools/uv/bin/uv
VENV := .venv
STAMP := $(VENV)/.posefix-setup
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/posefix-bench

# uv: use this machine's Python, never download one
export UV_PYTHON_DOWNLOADS := never

PROFILE ?= quick
COCO_ROOT ?=
BENCH_ARGS ?=
PYTEST_ARGS ?=

.PHONY: help setup test test-fast bench bench-throughput throughput scale clean-venv

help:
	@echo "make setup             create .venv/ from uv.lock (cold: builds mmcv once, then reuses the uv cache)"
	@echo "make test              setup + the whole test suite (what CI runs)"
	@echo "make test-fast         setup + the test suite without the cases marked slow"
	@echo "make bench             setup + the quick profile on the generated sandbox data -> reports/quick/"
	@echo "make bench PROFILE=coco-mini | PROFILE=coco COCO_ROOT=/data/coco"
	@echo "make bench-throughput  setup + pytest-benchmark throughput tests"
	@echo "make throughput        setup + posefix-bench throughput -> reports/throughput/"
	@echo "make scale             setup + bench stages at up to COCO-val scale (25k persons) -> reports/scale/"

setup: $(STAMP)

$(UV):
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
		--target .tools/uv uv==$(UV_VERSION)

# Offline first: with a warm uv cache this reuses the mmcv wheel built earlier on this machine (this network's
# proxy strips caching headers, so an online sync may re-download the sdist and rebuild mmcv for 11+ minutes).
$(STAMP): pyproject.toml uv.lock | $(UV)
	@start=$$(date +%s); \
	if ! $(UV) sync --locked --offline --python "$(PYTHON)" --quiet 2>/dev/null; then \
		echo "setup: building the environment in $(VENV)/ (cold: ~13 min, mostly compiling mmcv's ops once)"; \
		$(UV) sync --locked --python "$(PYTHON)" || exit 1; \
	fi; \
	$(PY) -c "import torch, torchvision, mmcv.ops, mmpose.apis, mediapipe, pycocotools" || exit 1; \
	echo "setup: environment ready in $$(( $$(date +%s) - start )) s"
	@touch $@

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(CLI) bench --profile $(PROFILE) $(if $(COCO_ROOT),--coco-root $(COCO_ROOT)) $(BENCH_ARGS)

bench-throughput: $(STAMP)
	$(PY) -m pytest tests --benchmark-enable --benchmark-only --benchmark-columns=min,median,mean,ops,rounds $(PYTEST_ARGS)

throughput: $(STAMP)
	$(CLI) throughput --out reports/throughput

scale: $(STAMP)
	$(CLI) scale --out reports/scale

clean-venv:
	rm -rf $(VENV)
