# lkl: the Linux kernel as a library, driven from Python.
#
#   make setup   install what the build needs (apt + pip)
#   make build   the kernel library (build/lib/liblkl.a, cached) + package
#   make lint    ruff and mypy
#   make test    set-up, lint, then every test
#   make demo    set-up, then boot a kernel and move data through its stack
#   make conformance  the kernel's packetdrill selftests on lkl and the host

PYTHON ?= python3
export LKL_JOBS ?= $(shell nproc)

.PHONY: setup build lib lint test demo bench conformance clean
setup:
	@bash native/scripts/setup.sh

lib:
	@$(MAKE) --no-print-directory -C native BUILD=$(CURDIR)/build

build: lib
	@if [ -f setup.py ]; then $(PYTHON) -m pip install -q --no-build-isolation -e . ; fi

# ruff over the Python, mypy over the package (its stubs included).
lint:
	$(PYTHON) -m ruff check lkl tests bench harness
	$(PYTHON) -m mypy lkl

test: setup build lint
	@$(MAKE) --no-print-directory -C tests/native BUILD=$(CURDIR)/build
	$(PYTHON) -m pytest -q -ra tests

# Benchmarks (root: they build network namespaces).  JSON in bench/results/.
bench: setup build
	@$(PYTHON) -m pip install -q --disable-pip-version-check matplotlib || echo "(no matplotlib: tables only)"
	@$(MAKE) --no-print-directory -C bench/native BUILD=$(CURDIR)/build
	$(PYTHON) bench/syscall_latency.py
	$(PYTHON) bench/tcp_rr.py
	$(PYTHON) bench/connect.py
	@if [ -f bench/getpid.py ]; then $(PYTHON) bench/getpid.py; fi
	@if [ -f bench/tcp_stream.py ]; then $(PYTHON) bench/tcp_stream.py --repeat 3; fi
	$(PYTHON) bench/python_net.py --repeat 3 --c10k
	$(PYTHON) bench/proxy.py
	@if command -v iperf3 >/dev/null; then $(PYTHON) bench/iperf3.py --repeat 3; fi
	@if [ -f bench/attach.py ]; then $(PYTHON) bench/attach.py; fi
	$(PYTHON) bench/zerocopy.py
	$(PYTHON) bench/report.py

# The kernel's packetdrill selftests (IPv4 and IPv6) on lkl through
# build/lib/liblkl-packetdrill.so and on this host's kernel in a throw-away
# namespace (root).  packetdrill is built from ../shared/vendor/packetdrill
# into build/.  Table: bench/results/packetdrill.md (+ .json).
conformance: lib
	$(PYTHON) bench/packetdrill.py --build

# Boot a kernel inside this process and move data through its TCP stack.
demo: setup build
	$(PYTHON) -m lkl

clean:
	rm -rf build
