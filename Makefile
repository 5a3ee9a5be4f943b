# Front door for people and CI. `make run` and `make test` do all the set-up
# on a fresh Debian 12 machine: install missing packages, configure, build.
BUILD ?= build
CMAKE_FLAGS ?= -DIPCHUB_WERROR=ON
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build run test clean sanitize fuzz

all: build

deps:
	@./scripts/install-deps

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/broker/ipchubd $(ARGS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300

clean:
	rm -rf $(BUILD)
