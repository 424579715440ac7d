# GKNet in Swift: set-up, build, tests, fixtures and benchmarks.
# `make test` and `make demo` work on a fresh Debian machine: they install what is missing first.

SWIFT        ?= swift
APT_PACKAGES := libopenblas-openmp-dev libdnnl-dev libturbojpeg0-dev libpng-dev zlib1g-dev pkg-config \
	libopenmpi-dev openmpi-bin
VENV         := .venv-ref
PYTHON       := $(VENV)/bin/python
THREADS      ?= $(shell nproc)
REPLICAS     ?= $(THREADS)

.PHONY: deps build release test format lint demo install uninstall docs example serve serve-tools test-browser fuzz-api bench-serve test-serve-abuse venv fixtures bench-kernels bench-harmonize bench-model clean data fuzz fuzz-smoke test-asan test-isa

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

## test: the whole test suite (debug build), tests running in parallel (they double as a
## concurrency test of the kernels: docs/robustness.md "Concurrent kernels")
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

## demo: the main job: harmonize the bundled sample with the bundled model
## (Models/gknet-default.safetensors, model card Models/README.md), writing the result and a
## comparison sheet (composite, mask, result, real image) to out/demo/.
DEMO_DIR       := out/demo
DEMO_COMPOSITE := Samples/HGCompris/composite_images/solar-cooker_1_1.jpg
DEMO_MASK      := Samples/HGCompris/masks/solar-cooker_1.png
demo: deps
	$(SWIFT) build -c release --product gknet
	@mkdir -p $(DEMO_DIR)
	.build/release/gknet harmonize $(DEMO_COMPOSITE) $(DEMO_MASK) -o $(DEMO_DIR)/solar-cooker_harmonized.png \
		--comparison $(DEMO_DIR)/solar-cooker_comparison.png --target Samples/HGCompris/real_images/solar-cooker.jpg --timings

## install: gknet into PREFIX (default /usr/local; DESTDIR for staging): PREFIX/bin/gknet, the
## default model and the web page in PREFIX/share/gknet/ (where the binary looks, wherever it is
## run from), bash/zsh/fish completions and the man page gknet.1 (argument-parser's
## generate-manual plugin). CONFIGURATION=debug installs the debug build (faster to build).
## uninstall: removes exactly those files.
PREFIX        ?= /usr/local
CONFIGURATION ?= release
INSTALL_ROOT   = $(DESTDIR)$(PREFIX)
INSTALLED      = bin/gknet share/gknet/gknet-default.safetensors share/gknet/model-card.md \
	share/gknet/index.html share/gknet/openapi.yaml share/bash-completion/completions/gknet \
	share/zsh/site-functions/_gknet share/fish/vendor_completions.d/gknet.fish share/man/man1/gknet.1
install: deps
	$(SWIFT) build -c $(CONFIGURATION) --product gknet
	@bin=$$($(SWIFT) build -c $(CONFIGURATION) --show-bin-path) && set -e && \
	install -d $(INSTALL_ROOT)/bin $(INSTALL_ROOT)/share/gknet $(INSTALL_ROOT)/share/man/man1 \
		$(INSTALL_ROOT)/share/bash-completion/completions $(INSTALL_ROOT)/share/zsh/site-functions \
		$(INSTALL_ROOT)/share/fish/vendor_completions.d && \
	install -m 755 $$bin/gknet $(INSTALL_ROOT)/bin/gknet && \
	install -m 644 Models/gknet-default.safetensors $(INSTALL_ROOT)/share/gknet/gknet-default.safetensors && \
	install -m 644 Models/README.md $(INSTALL_ROOT)/share/gknet/model-card.md && \
	install -m 644 Sources/GKNetServe/Resources/index.html Sources/GKNetServe/Resources/openapi.yaml \
		$(INSTALL_ROOT)/share/gknet/ && \
	for shell in bash zsh fish; do \
		case $$shell in bash) to=share/bash-completion/completions/gknet;; zsh) to=share/zsh/site-functions/_gknet;; \
			fish) to=share/fish/vendor_completions.d/gknet.fish;; esac; \
		$$bin/gknet --generate-completion-script $$shell > $(INSTALL_ROOT)/$$to; \
	done && \
	Scripts/make_manual.sh $(CONFIGURATION) $(INSTALL_ROOT)/share/man/man1/gknet.1 && \
	echo "installed gknet into $(INSTALL_ROOT) ($$(GKNET_MODEL= $(INSTALL_ROOT)/bin/gknet --version | sed -n 2p))"

uninstall:
	@for f in $(INSTALLED); do rm -f $(INSTALL_ROOT)/$$f; done; \
	rmdir $(INSTALL_ROOT)/share/gknet 2>/dev/null || true; echo "removed gknet from $(INSTALL_ROOT)"

## docs: the DocC documentation of the library (swift-docc-plugin) into out/docs/GKNetInference.doccarchive;
## fails on any DocC warning
DOCS_DIR    := out/docs
DOCS_TARGET := GKNetInference
docs:
	@mkdir -p $(DOCS_DIR)
	@status=0; $(SWIFT) package --allow-writing-to-directory $(DOCS_DIR) generate-documentation \
		--target $(DOCS_TARGET) --output-path $(DOCS_DIR)/$(DOCS_TARGET).doccarchive --warnings-as-errors \
		> $(DOCS_DIR)/build.log 2>&1 || status=$$?; cat $(DOCS_DIR)/build.log; \
	if [ $$status != 0 ] || grep -q "warning:" $(DOCS_DIR)/build.log; then echo "docs: failed or warned (above)"; exit 1; fi

## example: build Examples/HarmonizeFile (a separate package using the library by path) and harmonize
## the bundled sample with it into out/example/ (its build reuses nothing from the main build)
example: deps
	cd Examples/HarmonizeFile && $(SWIFT) build
	@mkdir -p out/example
	Examples/HarmonizeFile/.build/debug/harmonize-file $(DEMO_COMPOSITE) $(DEMO_MASK) out/example/solar-cooker_harmonized.png

## serve: the harmonization web service and page on http://127.0.0.1:8080/ (gknet serve; README "Serve")
serve: deps
	$(SWIFT) build -c release --product gknet
	.build/release/gknet serve

## The web service's browser test, API fuzzing and load test (test-only tools: Debian's chromium,
## chromedriver and wrk, and selenium/schemathesis in .venv-serve; docs/robustness.md, docs/benchmarks.md)
SERVE_APT   := chromium chromium-driver wrk curl
SERVE_VENV  := .venv-serve
serve-tools: deps
	@missing=""; for p in $(SERVE_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@[ -x $(SERVE_VENV)/bin/python ] || python3 -m venv $(SERVE_VENV)
	@$(SERVE_VENV)/bin/python -c "import selenium, schemathesis, PIL, numpy" 2>/dev/null || \
		$(SERVE_VENV)/bin/pip install -q selenium 'schemathesis>=4' pillow numpy
	$(SWIFT) build -c release --product gknet

## test-browser: the page in headless Chromium: upload tab and compose tab (drag, scale), screenshots to docs/images/
test-browser: serve-tools
	$(SERVE_VENV)/bin/python Scripts/serve/browser_test.py

## fuzz-api: schemathesis over openapi.yaml against a running server (FUZZ_API_EXAMPLES requests per operation)
FUZZ_API_EXAMPLES ?= 1000
fuzz-api: serve-tools
	Scripts/serve/fuzz_api.sh $(FUZZ_API_EXAMPLES)

## test-serve-abuse: gknet serve (release) under abusive clients, each case with a stated bound
## (Scripts/serve/abuse_test.py, Python's standard library only; docs/robustness.md "Abusive clients"):
## boundary-only bodies, 10,000 tiny parts, an oversized urllib upload, trickling connections, a client
## that leaves mid-job, SIGTERM amid it all. The quick sizes run in .ci/run (about a minute after the
## build); ABUSE_HEAVY=1 uses issue 22's sizes (32 MiB bodies, 300 MB upload, 64 trickling connections).
ABUSE_HEAVY ?= 0
test-serve-abuse: deps
	$(SWIFT) build -c release --product gknet
	ABUSE_HEAVY=$(ABUSE_HEAVY) python3 Scripts/serve/abuse_test.py

## bench-serve: wrk against /v1/harmonize at 1, 4, 16 connections with 1 worker x all cores and 2 workers
## (each its own server), then a 10-minute mixed soak on the first
bench-serve: serve-tools
	$(SERVE_VENV)/bin/python Scripts/serve/load_test.py

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

## bench-harmonize: `gknet harmonize` end to end (JPEG decode, network, full-resolution application,
## PNG encode) on 2048x2048 and 4096x4096 composites, paper preset at random weights, release build,
## 2 threads (docs/benchmarks.md, Harmonize)
bench-harmonize: deps
	$(SWIFT) build -c release --product gknet-bench
	GKNET_THREADS=2 .build/release/gknet-bench harmonize --threads 2

## bench-model: the whole network (paper/small inference, small/tiny training step) against the PyTorch
## twin and ONNX Runtime on the same weights and inputs, THREADS=1 or 2, ROUNDS idle-gated rounds
## (docs/benchmarks.md "Model"); ends with the machine-readable `bench-model:` line. Our training steps
## split the batch over REPLICAS model replicas of one thread each (default THREADS: what `"replicas": 0`
## does in training; REPLICAS=1 times the one-model step)
bench-model: deps venv
	$(SWIFT) build -c release --product gknet-bench
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PYTHON) Scripts/bench_model.py \
		--threads $(THREADS) --rounds $(ROUNDS) --replicas $(REPLICAS) --ours .build/release/gknet-bench

## data: the training photos + GrabCut pseudo-masks under data/ (Debian packages, see docs/data.md)
data:
	bash Scripts/prepare_photos.sh data

## fuzz: every fuzz target (Fuzz/<Target>, libFuzzer + AddressSanitizer; Request = gknet serve's upload path) for FUZZ_RUNS iterations
## (default 10^5) or FUZZ_SECONDS seconds each; prints iterations, coverage and crashes per target
## (docs/robustness.md). FUZZ_TARGETS="SafeTensors PNG" picks targets.
FUZZ_RUNS    ?= 100000
FUZZ_TARGETS ?=
fuzz: deps
	FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_SECONDS=$(FUZZ_SECONDS) Fuzz/run.sh $(FUZZ_TARGETS)

## fuzz-smoke: every fuzz target for 10^4 iterations, fixed random seed
fuzz-smoke: deps
	FUZZ_RUNS=10000 FUZZ_SECONDS= FUZZ_SEED=1 Fuzz/run.sh $(FUZZ_TARGETS)

## test-isa: the parity suites (ops, layers, model presets, optimizer trajectories) under every
## instruction-set setting this CPU can run (oneDNN ONEDNN_MAX_CPU_ISA x OpenBLAS OPENBLAS_CORETYPE),
## at 1 and 2 threads, then the table of measured spread per check kind (Scripts/parity_spread.sh;
## docs/robustness.md "Tolerances from measured spread"). Not in .ci/run: 3-12 minutes a setting on 2 shared cores.
test-isa: deps
	Scripts/parity_spread.sh

## test-asan: the whole test suite under AddressSanitizer (+ LeakSanitizer), then under
## ThreadSanitizer (parallel kernels, optimizers, the background loader; TSAN=0 skips it).
## Separate build folders; suppressions are documented in Fuzz/sanitizers/ and docs/robustness.md.
TSAN ?= 1
test-asan: deps
	$(SWIFT) build --build-tests --sanitize=address --scratch-path .build-asan
	LSAN_OPTIONS=suppressions=$(CURDIR)/Fuzz/sanitizers/lsan.supp \
		$(SWIFT) test --skip-build --sanitize=address --scratch-path .build-asan
	if [ "$(TSAN)" = 1 ]; then \
		$(SWIFT) build --build-tests --sanitize=thread --scratch-path .build-tsan && \
		TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/Fuzz/sanitizers/tsan.supp" \
			$(SWIFT) test --skip-build --sanitize=thread --scratch-path .build-tsan; \
	fi

## format: rewrite the Swift sources in place with the toolchain's swift-format (settings in
## .swift-format: 4 spaces, 120 columns)
## lint: fail if `make format` would change a file, a lint rule of .swift-format is broken, a line
## (a long string or comment, which swift format leaves alone) is over 120 characters, or a function in
## Sources/ is over 80 lines without a `Long:` comment saying why (Scripts/check_function_length.py)
FORMAT_PATHS := Package.swift Sources Tests Fuzz Examples
format:
	$(SWIFT) format format --in-place --recursive --parallel $(FORMAT_PATHS)

lint:
	$(SWIFT) format lint --strict --recursive --parallel $(FORMAT_PATHS)
	@long=$$(grep -rn --include='*.swift' '.\{121,\}' $(FORMAT_PATHS) || true); \
	if [ -n "$$long" ]; then echo "lines over 120 characters (swift format leaves strings and comments long):"; \
		echo "$$long"; exit 1; fi
	python3 Scripts/check_function_length.py Sources

clean:
	rm -rf .build .build-fuzz .build-asan .build-tsan
