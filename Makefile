# README's two commands: `make train` (the main job) and `make test` (the test suite).
# Each creates .venv and installs the package with its extras at the exact versions of
# constraints.txt (when .venv is missing or pyproject.toml or constraints.txt changed), and finds
# the data: $CIFAR10_ROOT if set; else the shared JPEG copy ../shared/data/cifar10-jpeg.tar.gz,
# unpacked once into .cache/; else ./data (downloaded by torchvision on first use: needs internet).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CIFAR10_ARCHIVE ?= ../shared/data/cifar10-jpeg.tar.gz
TRAIN_ARGS ?=
PYTEST_ARGS ?=
# test processes (pytest-xdist): each file's tests stay in one process (--dist loadfile), handed out in collection
# order, where tests/conftest.py puts the longest files first (--no-loadscope-reorder); torch's threads are shared
# among them (tests/conftest.py)
TEST_WORKERS ?= 2

export NO_ALBUMENTATIONS_UPDATE := 1
export MPLBACKEND ?= Agg
export PATH := $(CURDIR)/$(BIN):$(PATH)

ifeq ($(strip $(CIFAR10_ROOT)),)
  ifneq ($(wildcard $(CIFAR10_ARCHIVE)),)
    CIFAR10_ROOT := $(CURDIR)/.cache/cifar10-jpeg
    UNPACK := 1
  endif
endif
# absolute, since the notebooks run in notebooks/ and would miss a relative path
ifneq ($(strip $(CIFAR10_ROOT)),)
  override CIFAR10_ROOT := $(abspath $(CIFAR10_ROOT))
endif
export CIFAR10_ROOT

.PHONY: help install data train test notebooks bench bundle clean

help:
	@echo "make train      train the custom ResNet (24-epoch OneCycle on a GPU, short profile on a CPU)"
	@echo "make test       run the tests (the notebooks run once, headless, checked against the committed ones)"
	@echo "make notebooks  run notebooks 01-07 with papermill into a new runs/<time>-notebooks folder"
	@echo "make bench      print the data-path and training throughput benchmark"
	@echo "make bundle     offline bundle for the GPU node (py3.12, torch preinstalled) in dist/bundle-gpu-node/"
	@echo "variables: CIFAR10_ROOT=<copy>  TRAIN_ARGS='--epochs 5 ...'  PYTEST_ARGS='-k data'"

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,notebooks,tensorboard,sweep,benchmark]'
	@touch $@

data:
ifeq ($(UNPACK),1)
	@test -d $(CIFAR10_ROOT)/train || { echo "unpacking $(CIFAR10_ARCHIVE) into .cache/"; \
	  mkdir -p .cache && tar -xzf $(CIFAR10_ARCHIVE) -C .cache; }
endif
	@echo "CIFAR10_ROOT=$(if $(CIFAR10_ROOT),$(CIFAR10_ROOT),./data (download on first use))"

train: install data
	$(BIN)/cifar-train --download $(TRAIN_ARGS)

# The notebooks execute once, in tests/test_notebooks.py (into pytest's temporary folder, nothing into the
# checkout), and their profile-independent outputs are compared with the committed notebooks' there.
test: install data
	$(BIN)/python -m pytest tests -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

notebooks: install data
	$(BIN)/cifar-notebooks run

bench: install data
	$(BIN)/python benchmarks/bench_data_path.py

# The offline bundle for our GPU node (Python 3.12, torch 2.11 preinstalled, no index; at most 60 MiB):
# wheels of everything else, the project's wheel, the data, the notebooks and run.sh.
# On the node: bash dist/bundle-gpu-node/run.sh gpu-report --out "$OUT". See tools/bundle.py.
BUNDLE_ARGS ?=
bundle: install
	$(BIN)/python tools/bundle.py --target gpu-node --data $(CIFAR10_ARCHIVE) $(BUNDLE_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
