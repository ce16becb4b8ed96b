# Thin wrappers: every target is what you would type by hand.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test deps lint unit bench check fmt

## Run the product. (Until embedded mode lands, `changewatch check URL` is what there is to run.)
run:
	$(CARGO) run --release -p changewatch -- $(or $(ARGS),--help)

## Everything CI runs: install what the tests need, lint, then the whole test suite.
test: deps lint unit

## System packages the build needs: libxml2 (XPath) and libclang (the libxml crate generates its
## bindings with bindgen). Installed with apt only when missing.
deps:
	@missing=""; \
	pkg-config --exists libxml-2.0 2>/dev/null || missing="$$missing libxml2-dev pkg-config"; \
	dpkg -s libclang-dev >/dev/null 2>&1 || missing="$$missing libclang-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --workspace --all-targets --locked
	$(CARGO) test --workspace --doc --locked

## Criterion benchmarks of the pipeline (filter + text + hash + diff) on 50 KB and 1 MB pages.
bench:
	$(CARGO) bench -p changewatch-core --bench pipeline

fmt:
	$(CARGO) fmt --all
