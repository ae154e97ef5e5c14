# Every target creates or refreshes .venv itself (a fresh clone needs nothing else).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# onnx2tf runs the `onnxsim` command it finds on PATH: put the venv first ($(CURDIR), not
# $(abspath): a checkout path with spaces stays one entry).
export PATH := $(CURDIR)/$(BIN):$(PATH)

CKPT ?=
OUT ?=
SIZE ?=
N ?= 200
SEED ?= 0

# A make variable as one shell word, exactly as given: `make tflite CKPT="runs/epoch=3-step=9/my model.ckpt"`
# works (spaces, quotes, '=', '$'; the Python entry points then quote paths for Hydra themselves).
shell_word = '$(subst ','\'',$(value $(1)))'
# ... or the default $(2) when the variable is empty
arg_or = $(if $(value $(1)),$(call shell_word,$(1)),'$(2)')

.PHONY: venv test demo bench bench-levers tflite gpu-adapter data clean

venv: $(STAMP)

# After the editable install, tools/pip_overrides.py installs ai-edge-litert 2.3.0 (LiteRT's GPU
# accelerator) over the 2.1.0 that onnx2tf 1.29.24 pins exactly, and runs `pip check` failing on every
# conflict except that one, which it names (pyproject.toml [tool.bokeh] says why; docs/development.md "Installing").
$(STAMP): pyproject.toml tools/pip_overrides.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python tools/pip_overrides.py install
	$(BIN)/python tools/pip_overrides.py check
	touch $(STAMP)

# The floors of the package first (import-linter's contracts in pyproject.toml), then the tests.
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/python -m bokeh.demo overwrite=true

# One timing table of every runtime (exports once into outputs/bench/, reused): make bench [CKPT=...] [SIZE=256x384]
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_runtimes.py size=$(call arg_or,SIZE,1024x1536) $(if $(value CKPT),ckpt=$(call shell_word,CKPT))
	$(BIN)/python benchmarks/bench_generator.py
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_train_step.py

bench-levers: $(STAMP)
	$(BIN)/python benchmarks/bench_generator.py --levers

tflite: $(STAMP)
	@test -n $(call shell_word,CKPT) || { echo "usage: make tflite CKPT=path/to/model.ckpt [OUT=dir] [SIZE=HxW] [INT8=true] [EXPORT_ARGS=\"key=value ...\"]"; exit 2; }
	$(BIN)/python -m bokeh.export ckpt=$(call shell_word,CKPT) out=$(call arg_or,OUT,outputs/tflite) size=$(call arg_or,SIZE,1024x1536) export.int8.enabled=$(call arg_or,INT8,false) $(EXPORT_ARGS)

# A Vulkan adapter for LiteRT's GPU accelerator (as root on Debian 12: Mesa's software driver from
# bookworm-backports); does nothing when one is there. See docs/export.md "Run on a GPU with LiteRT".
gpu-adapter: $(STAMP)
	PYTHON=$(BIN)/python .ci/vulkan-adapter

# A synthetic pair set in the EBB! layout: make data OUT=outputs/synthetic N=200 SIZE=512x768 SEED=0
data: $(STAMP)
	$(BIN)/python -m bokeh.data.synthesize out=$(call arg_or,OUT,outputs/synthetic) n=$(call shell_word,N) size=$(call arg_or,SIZE,512x768) seed=$(call shell_word,SEED)

clean:
	rm -rf outputs .pytest_cache
