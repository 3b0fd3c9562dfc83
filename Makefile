VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 10s

.PHONY: build run test test-deps fuzz vet

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
	go test -run='^$$' -fuzz='^FuzzWebhookInput$$' -fuzztime=$(FUZZTIME) ./projections
	go test -run='^$$' -fuzz='^FuzzSignVerify$$' -fuzztime=$(FUZZTIME) ./signature
	go test -run='^$$' -fuzz='^FuzzParseSecret$$' -fuzztime=$(FUZZTIME) ./signature

vet:
	go vet ./...
