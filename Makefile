# tsync — see README.md. GNU make.
#
#   make demo    run the demo synchronizer on a local dev stack until every
#                seeded object is in sync; prints where the Web UI is
#   make test    everything CI runs: tools, services, lint, all tests
#   make cluster a production-shaped Temporal cluster (its four services as processes on
#                PostgreSQL, and the Web UI) that keeps running; make cluster-stop stops it

SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin

TEMPORAL_CLI_VERSION := v1.5.1
# The Temporal cluster (internal/cluster): its server and sql tool (keep in
# step with cluster.ServerVersion) and the Web UI server.
TEMPORAL_SERVER_VERSION := v1.29.1
TEMPORAL_UI_VERSION     := v2.42.1
STATICCHECK_VERSION  := v0.8.2

# Extra flags for `bin/tsync demo`, e.g. make demo DEMO_FLAGS='--sites 5 --stay'.
DEMO_FLAGS ?=

.PHONY: all tools dev-tools system-tools test-system-tools cluster-tools build demo dev dev-stop cluster cluster-stop services lint test bench bench-cluster clean fuzz fuzz-corpus soak

all: build

## tools: everything the tests need: dev-tools, staticcheck and the cluster's binaries (see
##        cluster-tools), built into bin/ when missing
tools: dev-tools bin/staticcheck cluster-tools test-system-tools

## dev-tools: what the demo and the dev stack need: the temporal CLI (dev server + Web UI) and the
##            system tools (see system-tools)
dev-tools: bin/temporal system-tools

## system-tools: ansible-playbook, ssh and sshd (Debian's ansible-core and openssh), installed
##               with apt-get when missing and root; otherwise says what to install
system-tools:
	bash scripts/ensure-tools.sh

## test-system-tools: the system tools and, for the tests only, chromium (the object view's browser test)
test-system-tools:
	bash scripts/ensure-tools.sh --test

# Building the temporal CLI takes minutes the first time; it is never rebuilt
# while bin/temporal exists.
bin/temporal:
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

bin/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## cluster-tools: the Temporal server, its sql tool and the Web UI server, built into bin/ from the
##                Go module proxy when missing (about 5 minutes the first time; never rebuilt)
cluster-tools: bin/temporal-server bin/temporal-sql-tool bin/temporal-ui-server

# go install names a binary after its package's directory (server, sql and
# server again): $(call go-install-as,PACKAGE@VERSION,NAME,TARGET) installs
# into a temporary GOBIN of its own and moves NAME to TARGET.
define go-install-as
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "GOBIN=$$tmp $(GO) install $(1) && mv $$tmp/$(2) $(3)"; \
	GOBIN="$$tmp" $(GO) install $(1); mkdir -p $(BIN); mv "$$tmp/$(2)" $(3)
endef

bin/temporal-server:
	$(call go-install-as,go.temporal.io/server/cmd/server@$(TEMPORAL_SERVER_VERSION),server,$@)

bin/temporal-sql-tool:
	$(call go-install-as,go.temporal.io/server/cmd/tools/sql@$(TEMPORAL_SERVER_VERSION),sql,$@)

bin/temporal-ui-server:
	$(call go-install-as,github.com/temporalio/ui-server/v2/cmd/server@$(TEMPORAL_UI_VERSION),server,$@)

## build: bin/tsync
build:
	$(GO) build -o bin/tsync ./cmd/tsync

## demo: run the demo end to end (starts what is missing of the dev stack)
demo: dev-tools build
	bin/tsync demo $(DEMO_FLAGS)

## dev: start the local Temporal dev server with its Web UI (reuses a running one)
dev: dev-tools build
	bin/tsync dev start

## dev-stop: stop the dev server `make dev` started
dev-stop: build
	bin/tsync dev stop

## cluster: start a Temporal cluster that keeps running (reuses the one running): the server's four
##          services as processes on the configured PostgreSQL, and the Web UI; frontend
##          127.0.0.1:7333, UI 8333, state in var/cluster (CLUSTER_FLAGS='--port 7433 --ui-port 8433')
CLUSTER_FLAGS ?=
cluster: cluster-tools services build
	bin/tsync dev cluster start $(CLUSTER_FLAGS)

## cluster-stop: stop the cluster `make cluster` started, by its pid files
cluster-stop: build
	bin/tsync dev cluster stop

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
##        with -json, stdout holds only the JSON record (the set-up's lines go to stderr)
BENCH_FLAGS ?=
bench:
	@$(MAKE) --no-print-directory tools services >&2
	@TSYNC_TEMPORAL_BIN=$(BIN)/temporal $(GO) run ./bench $(BENCH_FLAGS)

## bench-cluster: the same ratios and pickup against raw on the production-shaped cluster (`make
##                cluster`, started when not running, left running), with 1 and then 2 worker
##                processes; BENCH_CLUSTER_FLAGS adds flags to both runs
BENCH_CLUSTER_FLAGS ?=
bench-cluster: cluster
	@set -e; for w in 1 2; do \
		echo "== make bench-cluster: $$w worker process(es) on the cluster at 127.0.0.1:7333"; \
		$(GO) run ./bench -temporal 127.0.0.1:7333 -workers $$w -skip fetch,rss,cost,restart $(BENCH_CLUSTER_FLAGS); \
	done; echo "the cluster keeps running: make cluster-stop stops it"

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

## soak: a bounded run (SOAK_FLAGS='-duration 30m') of creates, updates, deletes, step failures,
##       deferrals and random faults (worker SIGKILLs, network faults, PostgreSQL sessions cut),
##       then an audit with memory and goroutine counts; exits 1 when any object is lost
SOAK_FLAGS ?=
soak: tools services
	TSYNC_TEMPORAL_BIN=$(BIN)/temporal $(GO) run ./soak $(SOAK_FLAGS)

## clean: remove what build makes (keeps the tools in bin/, and var/: the dev server's and cluster's state)
clean:
	rm -f bin/tsync coverage.out
