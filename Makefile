# GKNet in Swift: set-up, build, tests, fixtures and benchmarks.
# `make test` and `make demo` work on a fresh Debian machine: they install what is missing first.

SWIFT        ?= swift
APT_PACKAGES := libopenblas-openmp-dev libdnnl-dev libturbojpeg0-dev libpng-dev pkg-config
VENV         := .venv-ref
PYTHON       := $(VENV)/bin/python
THREADS      ?= $(shell nproc)

.PHONY: deps build release test demo venv fixtures bench-kernels bench-model clean data

## deps: install the Debian packages the build needs (idempotent, quiet when present)
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

## test: the whole test suite (debug build; heavy checks only with GKNET_HEAVY_TESTS=1)
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

## demo: the main job (for now: the CLI help and a one-line tensor demo)
demo: deps
	$(SWIFT) build -c release --product gknet
	.build/release/gknet --help
	.build/release/gknet demo

## venv: the Python reference environment (fixtures and benchmarks only; never needed to build or test)
venv: $(PYTHON)
$(PYTHON):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q 'torch==2.13.0+cpu' numpy onnx onnxruntime onnxscript threadpoolctl safetensors pillow

## fixtures: regenerate every committed PyTorch fixture under Tests/Fixtures
fixtures: venv
	$(PYTHON) Scripts/make_fixtures.py

## bench-kernels: kernel benchmarks (release) side by side with PyTorch, numpy and ONNX Runtime at the
## same thread count, interleaved over ROUNDS idle-gated rounds (THREADS=1 or 2; docs/benchmarks.md)
ROUNDS ?= 3
bench-kernels: deps venv
	$(SWIFT) build -c release --product gknet-bench
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PYTHON) Scripts/bench_reference.py \
		--threads $(THREADS) --rounds $(ROUNDS) --ours .build/release/gknet-bench

## bench-model: the whole network (paper/small inference, small/tiny training step) against the PyTorch
## twin and ONNX Runtime on the same weights and inputs, THREADS=1 or 2, ROUNDS idle-gated rounds
## (docs/benchmarks.md "Model"); ends with the machine-readable `bench-model:` line
bench-model: deps venv
	$(SWIFT) build -c release --product gknet-bench
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PYTHON) Scripts/bench_model.py \
		--threads $(THREADS) --rounds $(ROUNDS) --ours .build/release/gknet-bench

## data: the training photos + GrabCut pseudo-masks under data/ (Debian packages, see docs/data.md)
data:
	bash Scripts/prepare_photos.sh data

clean:
	rm -rf .build
