# Every target creates or refreshes .venv itself (a fresh clone needs nothing else).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# onnx2tf runs the `onnxsim` command it finds on PATH: put the venv first.
export PATH := $(abspath $(BIN)):$(PATH)

CKPT ?=
OUT ?=
SIZE ?=
N ?= 200
SEED ?= 0

.PHONY: venv test demo bench bench-levers tflite data clean

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
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_train_step.py

bench-levers: $(STAMP)
	$(BIN)/python benchmarks/bench_generator.py --levers

tflite: $(STAMP)
	@test -n "$(CKPT)" || { echo "usage: make tflite CKPT=path/to/model.ckpt [OUT=dir] [SIZE=HxW] [INT8=true]"; exit 2; }
	$(BIN)/python -m bokeh.export ckpt=$(CKPT) out=$(or $(OUT),outputs/tflite) size=$(or $(SIZE),1024x1536) export.int8.enabled=$(or $(INT8),false)

# A synthetic pair set in the EBB! layout: make data OUT=outputs/synthetic N=200 SIZE=512x768 SEED=0
data: $(STAMP)
	$(BIN)/python -m bokeh.data.synthesize out=$(or $(OUT),outputs/synthetic) n=$(N) size=$(or $(SIZE),512x768) seed=$(SEED)

clean:
	rm -rf outputs .pytest_cache
