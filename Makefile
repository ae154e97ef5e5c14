# Every target creates or refreshes .venv itself (a fresh clone needs nothing else).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# onnx2tf runs the `onnxsim` command it finds on PATH: put the venv first.
export PATH := $(abspath $(BIN)):$(PATH)

CKPT ?=
OUT ?= outputs/tflite
SIZE ?= 1024x1536

.PHONY: venv test demo bench tflite clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip check
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/python -m bokeh.demo

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_generator.py

tflite: $(STAMP)
	@test -n "$(CKPT)" || { echo "usage: make tflite CKPT=path/to/model.ckpt [OUT=dir] [SIZE=HxW]"; exit 2; }
	$(BIN)/python -m bokeh.export ckpt=$(CKPT) out=$(OUT) size=$(SIZE)

clean:
	rm -rf outputs .pytest_cache
