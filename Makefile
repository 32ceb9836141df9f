# tsync — see README.md. GNU make.
#
#   make demo    run the demo synchronizer on a local dev stack until every
#                seeded object is in sync; prints where the Web UI is
#   make test    everything CI runs: tools, services, lint, all tests

SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin

TEMPORAL_CLI_VERSION := v1.5.1
STATICCHECK_VERSION  := v0.8.2

# Extra flags for `bin/tsync demo`, e.g. make demo DEMO_FLAGS='--sites 5 --stay'.
DEMO_FLAGS ?=

.PHONY: all tools system-tools build demo dev dev-stop services lint test bench clean fuzz fuzz-corpus soak

all: build

## tools: the temporal CLI (dev server + Web UI) and staticcheck, built into bin/ when missing,
##        and the system tools (see system-tools)
tools: bin/temporal bin/staticcheck system-tools

## system-tools: ansible-playbook, ssh and sshd (Debian's ansible-core and openssh), installed
##               with apt-get when missing and root; otherwise says what to install
system-tools:
	bash scripts/ensure-tools.sh

# Building the temporal CLI takes minutes the first time; it is never rebuilt
# while bin/temporal exists.
bin/temporal:
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

bin/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## build: bin/tsync
build:
	$(GO) build -o bin/tsync ./cmd/tsync

## demo: run the demo end to end (starts what is missing of the dev stack)
demo: tools build
	bin/tsync demo $(DEMO_FLAGS)

## dev: start the local Temporal dev server with its Web UI (reuses a running one)
dev: tools build
	bin/tsync dev start

## dev-stop: stop the dev server `make dev` started
dev-stop: build
	bin/tsync dev stop

## services: make sure PostgreSQL and Redis are up (starts them when it can)
services:
	bash scripts/ensure-services.sh

## lint: gofmt, go vet, staticcheck
lint: bin/staticcheck
	@files=$$(gofmt -l .); if [[ -n "$$files" ]]; then echo "gofmt -l: these files need gofmt:"; echo "$$files"; exit 1; fi
	$(GO) vet ./...
	bin/staticcheck ./...

## test: what CI runs
test: tools services lint
	TSYNC_TEMPORAL_BIN=$(BIN)/temporal $(GO) test -count=1 -timeout 25m ./...

## bench: tsync against raw Temporal on one dev server (figures, not asserts);
## BENCH_FLAGS='-n 2000 -json' changes sizes (see go run ./bench -h)
BENCH_FLAGS ?=
bench: tools services
	TSYNC_TEMPORAL_BIN=$(BIN)/temporal $(GO) run ./bench $(BENCH_FLAGS)

## fuzz: run every fuzz target for FUZZTIME (50000x: executions) each; `make test` runs only their
##       seed corpora. A count, not a duration: with a duration, go1.26's fuzz coordinator can fail
##       a target with "context deadline exceeded" as time runs out (go.dev/issue/75804).
FUZZTIME ?= 50000x
FUZZ_TARGETS := FuzzParse:./config FuzzParseDepsFile:./models FuzzCheck:./models FuzzParseEntry:./internal/watchers \
	FuzzParseChange:./models FuzzVarsRoundTrip:./internal/ansible
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "$(GO) test -run=^\$$ -fuzz=^$${t%%:*}\$$ -fuzztime=$(FUZZTIME) $${t#*:}"; \
		$(GO) test -run='^$$' -fuzz="^$${t%%:*}\$$" -fuzztime=$(FUZZTIME) $${t#*:}; \
	done

## fuzz-corpus: `make fuzz`, then copy the inputs the fuzzers found interesting into each
##              package's testdata/fuzz/<target>/ (committed; `make test` runs them as seeds)
fuzz-corpus: fuzz
	@set -e; cache=$$($(GO) env GOCACHE)/fuzz/$$($(GO) list -m); for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; src=$$cache/$${pkg#./}/$$name; dst=$$pkg/testdata/fuzz/$$name; \
		mkdir -p $$dst; if [[ -d $$src ]]; then cp -n $$src/* $$dst/ 2>/dev/null || true; fi; \
		echo "$$dst: $$(ls $$dst | wc -l) inputs"; \
	done

## soak: a bounded run (SOAK_FLAGS='-duration 5m') of creates, updates, deletes, step failures,
##       deferrals and a worker process SIGKILLed, then an audit; exits 1 when any object is lost
SOAK_FLAGS ?=
soak: tools services
	TSYNC_TEMPORAL_BIN=$(BIN)/temporal $(GO) run ./soak $(SOAK_FLAGS)

## clean: remove what build makes (keeps bin/temporal and var/, the dev server's state)
clean:
	rm -f bin/tsync coverage.out
