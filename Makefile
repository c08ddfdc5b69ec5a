# Entry points: make demo | make test | make bench-train | make asan
BUILD ?= build
JOBS ?= $(shell nproc)
EPOCHS ?= 1

.PHONY: all deps build demo test bench-train asan clean

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
	python3 bench/bench_train.py --soma $(BUILD)/soma
	python3 bench/bench_train.py --soma $(BUILD)/soma --models

clean:
	rm -rf $(BUILD) build-asan
