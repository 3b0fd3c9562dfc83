VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 10s

.PHONY: build run test test-deps fuzz bench bench-full vet

build:
	go build -ldflags "$(LDFLAGS)" -o bin/hooklog ./cmd/hooklog

run:
	go run -ldflags "$(LDFLAGS)" ./cmd/hooklog server

# The tests, with the standardwebhooks npm package that checks signatures.
test: test-deps
	go test -race ./...

test-deps:
	npm ci --prefix test/standardwebhooks --no-audit --no-fund

# A short run of every fuzz target; FUZZTIME=1m make fuzz runs longer.
fuzz:
	go test -run='^$$' -fuzz='^FuzzDecodePublish$$' -fuzztime=$(FUZZTIME) ./api
	go test -run='^$$' -fuzz='^FuzzScanPublish$$' -fuzztime=$(FUZZTIME) ./api
	go test -run='^$$' -fuzz='^FuzzWebhookInput$$' -fuzztime=$(FUZZTIME) ./projections
	go test -run='^$$' -fuzz='^FuzzSignVerify$$' -fuzztime=$(FUZZTIME) ./signature
	go test -run='^$$' -fuzz='^FuzzParseSecret$$' -fuzztime=$(FUZZTIME) ./signature

# The Go benchmarks of the publish, append, read and delivery paths, then a short
# run of the load tool; under two minutes in all.
bench:
	go test -run='^$$' -bench=. -benchtime=2000x ./eventlog ./delivery ./api
	go run ./cmd/hooklog-bench --short

# The load tool with full sizes: a 1,000,000-event backlog, about 15 minutes.
bench-full:
	go run ./cmd/hooklog-bench

vet:
	go vet ./...
