# linf-tf. A fresh clone needs only `make demo` and `make test`: both create .venv,
# install the pinned dependencies from setup.py and build the C extension. `make demo` installs the
# base package (codec + CLI + LiteRT restoration, no TensorFlow); `make test` installs everything
# (".[dev]"), runs pytest and the sanitized C tests, and checks the base package alone in a fresh venv.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BASE_STAMP := $(VENV)/.installed-base
# Anything that changes the extension or the pins triggers a re-install (and a C rebuild).
INSTALL_DEPS := setup.py pyproject.toml $(wildcard csrc/include/*.h csrc/src/*.c csrc/src/*.h linf_tf/_linfcodec.c)
CORE_SOURCES := $(wildcard csrc/src/*.c)
CORE_HEADERS := $(wildcard csrc/include/*.h csrc/src/*.h)

BUILD := csrc/build
CLANG ?= clang
FUZZ_CFLAGS := -std=c99 -g -O1 -pthread -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-Icsrc/include -Icsrc/src
# codec.c's per-sample loops and levelmap.c's per-symbol loop are built without libFuzzer's
# comparison tracing (3.7x and about 4x faster; it does not help mutate entropy-coded data). The header
# parser and the harnesses keep it.
FUZZ_FAST_SOURCES := $(filter csrc/src/codec.c csrc/src/levelmap.c,$(CORE_SOURCES))
FUZZ_FAST_OBJECTS := $(patsubst csrc/src/%.c,$(BUILD)/fuzz-%.o,$(FUZZ_FAST_SOURCES))
FUZZ_HARNESSES := $(BUILD)/fuzz_decode $(BUILD)/fuzz_roundtrip $(BUILD)/fuzz_levelmap
FUZZ_RUNS ?= 1000000
FUZZ_ROUNDTRIP_RUNS ?= 300000
FUZZ_LEVELMAP_RUNS ?= 300000
FUZZ_TIME ?= 1800
CORPUS := fuzz-corpus

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

.PHONY: help install demo test pytest base-smoke sanitize tsan fuzz fuzz-decode fuzz-roundtrip fuzz-levelmap lint bench \
	clean distclean

help:
	@echo "make demo       create .venv, build the codec, run the demo"
	@echo "make test       create .venv, build the codec, run pytest, the sanitized C tests and the base-install smoke test"
	@echo "make base-smoke pip install . (no extras) in a fresh /tmp venv: codec + LiteRT restore, no TensorFlow"
	@echo "make sanitize   C unit tests under AddressSanitizer + UBSan (gcc)"
	@echo "make tsan       C unit tests under ThreadSanitizer (gcc): the threaded stripe coding"
	@echo "make fuzz       libFuzzer harnesses (clang); FUZZ_RUNS=$(FUZZ_RUNS), make -j2 fuzz for 2 cores"
	@echo "make lint       ruff check"
	@echo "make bench      codec benchmark on ../shared/data"
	@echo "make clean      remove build outputs (distclean also removes .venv)"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Everything (tests, training, serving, arrays); it also satisfies the base install.
$(STAMP): $(INSTALL_DEPS) | $(PY)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	touch $@ $(BASE_STAMP)

# The base package only: what the demo needs.
$(BASE_STAMP): $(INSTALL_DEPS) | $(PY)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e .
	touch $@

install: $(STAMP)

demo: $(BASE_STAMP)
	$(PY) -m linf_tf.demo

# pytest exit code 5 means "no tests collected": that is a broken suite, never a pass.
pytest: $(STAMP)
	$(PY) -m pytest -q || { rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; exit $$rc; }

test: pytest sanitize base-smoke

base-smoke:
	PYTHON=$(PYTHON) bash scripts/base_smoke.sh

sanitize:
	bash csrc/tests/run_sanitized.sh

tsan:
	bash csrc/tests/run_tsan.sh

$(FUZZ_FAST_OBJECTS): $(BUILD)/fuzz-%.o: csrc/src/%.c $(CORE_HEADERS)
	@mkdir -p $(BUILD)
	$(CLANG) $(FUZZ_CFLAGS) -fno-sanitize-coverage=trace-cmp -c $< -o $@

$(FUZZ_HARNESSES): $(BUILD)/%: csrc/fuzz/%.c $(CORE_SOURCES) $(CORE_HEADERS) $(FUZZ_FAST_OBJECTS)
	$(CLANG) $(FUZZ_CFLAGS) $< $(filter-out $(FUZZ_FAST_SOURCES),$(CORE_SOURCES)) $(FUZZ_FAST_OBJECTS) -o $@

$(BUILD)/make_corpus: csrc/fuzz/make_corpus.c $(CORE_SOURCES) $(CORE_HEADERS)
	@mkdir -p $(BUILD)
	$(CC) -std=c99 -O2 -pthread -Wall -Wextra -Icsrc/include $< $(CORE_SOURCES) -o $@

fuzz: fuzz-decode fuzz-roundtrip fuzz-levelmap

fuzz-decode: $(BUILD)/fuzz_decode $(BUILD)/make_corpus
	@mkdir -p $(CORPUS)/decode $(CORPUS)/artifacts
	$(BUILD)/make_corpus $(CORPUS)/decode
	$(BUILD)/fuzz_decode -runs=$(FUZZ_RUNS) -max_total_time=$(FUZZ_TIME) -max_len=2048 \
		-print_final_stats=1 -artifact_prefix=$(CORPUS)/artifacts/decode- $(CORPUS)/decode

fuzz-roundtrip: $(BUILD)/fuzz_roundtrip
	@mkdir -p $(CORPUS)/roundtrip $(CORPUS)/artifacts
	$(BUILD)/fuzz_roundtrip -runs=$(FUZZ_ROUNDTRIP_RUNS) -max_total_time=$(FUZZ_TIME) -max_len=2048 \
		-print_final_stats=1 -artifact_prefix=$(CORPUS)/artifacts/roundtrip- $(CORPUS)/roundtrip

fuzz-levelmap: $(BUILD)/fuzz_levelmap $(BUILD)/make_corpus
	@mkdir -p $(CORPUS)/levelmap $(CORPUS)/artifacts
	$(BUILD)/make_corpus --levelmap $(CORPUS)/levelmap
	$(BUILD)/fuzz_levelmap -runs=$(FUZZ_LEVELMAP_RUNS) -max_total_time=$(FUZZ_TIME) -max_len=2048 \
		-print_final_stats=1 -artifact_prefix=$(CORPUS)/artifacts/levelmap- $(CORPUS)/levelmap

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) benchmarks/codec_bench.py ../shared/data/eval/* ../shared/data/highbit/* --luma --repeats 2
	$(PY) benchmarks/bench_table.py out/codec_bench/summary.json

clean:
	rm -rf build dist *.egg-info $(BUILD) $(CORPUS) .pytest_cache .ruff_cache .hypothesis
	rm -f linf_tf/*.so $(STAMP) $(BASE_STAMP)
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
