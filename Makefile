VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build run test vet

build:
	go build -ldflags "$(LDFLAGS)" -o bin/hooklog ./cmd/hooklog

run:
	go run -ldflags "$(LDFLAGS)" ./cmd/hooklog server

test:
	go test -race ./...

vet:
	go vet ./...
