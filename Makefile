# Conventions live here, not in heads. `make help` lists the targets.
.DEFAULT_GOAL := help

PKGS := ./...

help: ## list the targets
	@grep -E '^[a-zA-Z/_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

test: ## run every test with the race detector (the README's test command)
	go test -race $(PKGS)

test/short: ## run the tests without the race detector
	go test $(PKGS)

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	go vet $(PKGS)

bench: ## run the benchmarks of both drivers beside their baselines (see BENCHMARKS.md)
	go test -run '^$$' -bench . -benchtime=3s -count=6 ./driver/sqlite/ ./driver/postgres/ | tee bench/results.txt
	benchstat -col /impl bench/results.txt

ci: ## what CI runs: start PostgreSQL if needed, then the tests, failing on skips
	bash .ci/run

.PHONY: help test test/short lint bench ci
