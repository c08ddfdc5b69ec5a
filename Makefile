# Entry points: make demo | make test | make bench-train | make bench-sim | make asan
BUILD ?= build
JOBS ?= $(shell nproc)
EPOCHS ?= 1
# The benchmarks' references (python3-torch, python3-brian) are Debian
# packages: run them with Debian's interpreter, not another python3 on PATH.
PYTHON ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)

.PHONY: all deps build demo test bench-train bench-sim asan fuzz clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/soma train examples/fmnist-lif.yaml --epochs $(EPOCHS) --out runs/fmnist-lif

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSOMA_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

bench-train: build
	@scripts/deps.sh --bench
	$(PYTHON) bench/bench_train.py --soma $(BUILD)/soma
	$(PYTHON) bench/bench_train.py --soma $(BUILD)/soma --models

# Simulator benchmarks (several minutes; the scale-1 microcircuit needs ~3 GB):
# BENCH_SIM_ARGS=--quick runs the microcircuit at scale 0.1.
bench-sim: build
	@scripts/deps.sh --bench-sim
	$(PYTHON) bench/bench_sim.py --soma $(BUILD)/soma $(BENCH_SIM_ARGS)

# libFuzzer harnesses (fuzz/fuzz_*.c) for FUZZ_SECONDS each, seeded from the
# examples; a crash lands in fuzz/regress/<harness>/ once minimised by hand,
# where tests/test_fuzz_regress.c replays it on every make test.
FUZZ_SECONDS ?= 60
fuzz: deps
	@scripts/deps.sh --fuzz
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DSOMA_FUZZ=ON -DSOMA_OPENMP=OFF >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) build-asan build-fuzz
