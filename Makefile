# Thin wrappers: every target is what you would type by hand.
SHELL := /bin/bash
CARGO ?= cargo
# No incremental state unless asked for (CARGO_INCREMENTAL=1): a whole-suite build from clean
# gains nothing from it, and it took 5.5 GB of a clean `make test`'s disk.
export CARGO_INCREMENTAL ?= 0

.PHONY: run test deps test-deps dashboard lint unit bench bench-socket bench-serve bench-browser bench-aws-cost symbol-order chromium check fmt sam-build fuzz password-hash push-image container-check \
  build-ApiFunction build-SchedulerFunction build-CheckerFunction build-NotifierFunction

## Release builds link a libxml2 built from Debian's source without ICU, zlib and lzma
## (infra/build-libxml2.sh native, ~30 s once, cached in ~/.cache/changewatch): Debian's shared
## one maps ICU and libstdc++ into every process of `serve`. When it cannot be built the build
## links the system's libxml2, with a warning; CW_STATIC_LIBXML2=0 asks for that. Every release
## build goes through it, so the release profile's crates are not rebuilt between targets.
RELEASE_ENV = eval "$$(bash infra/build-libxml2.sh --or-system native)";

## Run the product: embedded mode on http://localhost:5000 (data in ./data), the dashboard at /.
## Installs the build's system packages and builds the dashboard first.
## `make run ARGS="check https://example.com/"` runs another subcommand.
run: deps dashboard
	$(RELEASE_ENV) $(CARGO) run --release -p changewatch -- $(or $(ARGS),serve)

## Everything CI runs: install what the tests need, lint, then the whole test suite.
test: deps test-deps dashboard lint unit

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

## What only the tests need: Debian's Chromium (browser tests drive it with playwright-core),
## the python-socketio client (the Socket.IO contract is checked from Python too), moto's
## server mode (the AWS emulator the aws adapters and functions are tested against),
## schemathesis (the API fuzz), apprise at upstream's pin (notification bytes compared with
## apprise's own), feedparser (the RSS feeds read as a reader would), unshare + ip (the
## API fuzz runs without a route out), and changedetection.io itself at CDIO_VERSION and at
## 0.50.2 in venvs of their own (the datastore import is tested on datastores they write, in
## both layouts; made once, ~1 min each; the CDIO_VERSION venv's openpyxl also writes the .xlsx
## files the import-formats tests read).
test-deps: chromium
	@"$(CDIO_TEST_VENV)/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("changedetection.io") != "$(CDIO_VERSION)")' 2>/dev/null || \
	  { python3 -m venv "$(CDIO_TEST_VENV)" && "$(CDIO_TEST_VENV)/bin/pip" install -q "changedetection.io==$(CDIO_VERSION)"; }
	@"$(CDIO_050_TEST_VENV)/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("changedetection.io") != "0.50.2")' 2>/dev/null || \
	  { python3 -m venv "$(CDIO_050_TEST_VENV)" && "$(CDIO_050_TEST_VENV)/bin/pip" install -q "changedetection.io==0.50.2"; }
	@python3 -c "import socketio, websocket, requests" 2>/dev/null || \
	  python3 -m pip install -q "python-socketio[client]==5.*" websocket-client
	@python3 -c "import moto.server, flask_cors" 2>/dev/null || \
	  python3 -m pip install -q "moto[server]==5.*"
	@python3 -c "import schemathesis" 2>/dev/null || \
	  python3 -m pip install -q "schemathesis==4.*"
	@python3 -c "import apprise; assert apprise.__version__ == '2.0.1'" 2>/dev/null || \
	  python3 -m pip install -q "apprise==2.0.1"
	@python3 -c "import feedparser" 2>/dev/null || \
	  python3 -m pip install -q "feedparser==6.*"
	@{ command -v unshare && command -v ip; } >/dev/null 2>&1 || { \
	  echo "installing: util-linux iproute2"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux iproute2; }

## Debian's Chromium: the browser tests' browser, and the one `serve` launches for browser checks.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing: chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

## The browser dashboard: npm packages from the lock file, then the esbuild bundle in dist/.
dashboard:
	cd dashboard && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; }
	cd dashboard && npm run build

## cargo-machete finds dependencies a Cargo.toml lists and no code uses (installed once).
lint:
	bash infra/lint.sh
	@command -v cargo-machete >/dev/null 2>&1 || $(CARGO) install --locked -q cargo-machete
	cargo machete
	cd dashboard && npm run typecheck
	cd dashboard && npm run test:unit
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## The summary line at the end adds up every test binary's result, so the last line printed is
## the whole suite's count, not the count of whichever binary happened to run last. The
## workspace's binaries are built first: `cargo test` builds another package's binaries only in
## test mode, and the e2e suite (tests/) runs the real function and push-service executables.
unit:
	@mkdir -p target
	$(CARGO) build --workspace --bins --locked
	set -o pipefail; $(CARGO) test --workspace --all-targets --locked 2>&1 | tee target/test.log
	set -o pipefail; $(CARGO) test --workspace --doc --locked 2>&1 | tee -a target/test.log
	@awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($$(i+1) ~ /^passed/) p += $$i; if ($$(i+1) ~ /^failed/) f += $$i; if ($$(i+1) ~ /^ignored/) s += $$i } } \
	     END { printf "\nsummary: %d passed, %d failed, %d skipped\n", p, f, s }' target/test.log

## Criterion benchmarks of the pipeline (filter + text + hash + diff) on 50 KB and 1 MB pages,
## with the same cases on upstream's Python stack run after them as the baseline.
bench:
	bash bench/run.sh

## Socket.IO fan-out (N clients, time until all have one watch_update; memory per connection)
## and latency (recheck of a changed 46 KB page -> the completing watch_update, alone and with N
## clients), changewatch's release build beside upstream changedetection.io in a venv under /tmp.
bench-socket: dashboard
	$(RELEASE_ENV) $(CARGO) build --release -p changewatch
	bash bench/socket_compare.sh

## Checks per CPU-second and memory of `changewatch serve` beside upstream changedetection.io
## (installed from PyPI into a venv under /tmp), the same rounds on the same fixture pages
## (bench/serve_compare.py; N, WORKERS, VALIDATORS, BASELINE_BIN, ONLY change the run).
CDIO_VENV ?= /tmp/cdio-venv
CDIO_VERSION ?= 0.60.10
# Where crates/cli/tests/import_datastore.rs finds upstream (its CDIO_VENV default), and the
# release that still writes the older single-file datastore (url-watches.json; CDIO_050_VENV).
CDIO_TEST_VENV ?= /tmp/cdio-venv-$(CDIO_VERSION)
CDIO_050_TEST_VENV ?= /tmp/cdio-venv-0.50.2
bench-serve:
	$(RELEASE_ENV) $(CARGO) build --release --locked -p changewatch
	@"$(CDIO_VENV)/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("changedetection.io") != "$(CDIO_VERSION)")' 2>/dev/null || \
	  { python3 -m venv "$(CDIO_VENV)" && "$(CDIO_VENV)/bin/pip" install -q "changedetection.io==$(CDIO_VERSION)"; }
	CDIO_VENV="$(CDIO_VENV)" python3 bench/serve_compare.py

## Regenerates crates/cli/symbol-order.txt, the release binary's function layout: the release
## build runs bench-serve's rounds and a short bench-socket under valgrind's callgrind, and the
## functions its processes ran are listed first, children's then the server's, hottest first
## (bench/symbol_order.py). Run it after a dependency or toolchain bump, or when bench-serve's
## RSS says it is due; the next release build links with it (~10 min here).
symbol-order: dashboard
	@command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
	$(RELEASE_ENV) $(CARGO) build --release --locked -p changewatch
	python3 bench/symbol_order.py

## A browser check beside a plain one in the same release build: N watches of the same ~46 KB
## page (one line of it written by a script) checked with fetch_backend html_requests, then
## html_webdriver (the Chromium `serve` launches); wall time, CPU of the process tree (Chromium
## included) per check, checks/s, peak RSS/PSS, browser ÷ plain (bench/browser_compare.py; N,
## WORKERS, SETTLE, SCREENSHOT_MAX_HEIGHT, REPEAT change the run).
bench-browser: chromium
	$(RELEASE_ENV) $(CARGO) build --release --locked -p changewatch
	python3 bench/browser_compare.py

## What a check costs in AWS mode: the release function binaries under the e2e suite's Lambda
## runtime against moto behind bench/aws_cost/pricing_proxy.py; $ per million checks per round.
bench-aws-cost:
	bash bench/aws_cost/run.sh

## Longer fuzzing than `make test` does: the pipeline and templates through the sandbox
## (hostile pages x filters, rules and templates; FUZZ_CASES cases per property), then the REST
## API with schemathesis from /api/v1/full-spec (API_FUZZ_EXAMPLES per operation, random seed,
## printed by the run).
FUZZ_CASES ?= 2000
API_FUZZ_EXAMPLES ?= 300
fuzz: test-deps
	$(RELEASE_ENV) CW_FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test --release -p changewatch --test fuzz_pipeline -- --nocapture
	$(RELEASE_ENV) CW_API_FUZZ_EXAMPLES=$(API_FUZZ_EXAMPLES) CW_API_FUZZ_SEED=random \
	  $(CARGO) test --release -p changewatch --test api_fuzz -- --nocapture

fmt:
	$(CARGO) fmt --all

## AWS mode: `sam build` of the Lambda functions from the repository root (samconfig.toml points
## at infra/template.yaml; cargo-lambda cross-compiles with Zig, no Docker), with libxml2 built
## from source and linked statically into the checker (infra/build-libxml2.sh, cached in
## ~/.cache/changewatch), then a check that every bootstrap needs only what provided.al2023 has
## (glibc <= 2.34). Slow (about 15 min cold): not part of `test`. The architecture is
## samconfig.toml's one `Architecture=` setting (SAM_ARCH overrides it for both the build and the
## check); SAM_ARGS passes more `sam build` arguments; cargo builds into SAM_TARGET_DIR, not the
## workspace's target/, so other builds are not locked out.
SAM ?= sam
SAM_ARCH ?= $(shell sed -n 's/.*Architecture=\(arm64\|x86_64\).*/\1/p' samconfig.toml | head -n 1)
SAM_TARGET_DIR ?= $(CURDIR)/target/sam
sam-build:
	@deployed="$$(sed -n '/^\[default.deploy.parameters\]/,/^\[/p' samconfig.toml | sed -n 's/.*Architecture=\([a-z0-9_]*\).*/\1/p')"; \
	  if [ -n "$$deployed" ] && [ "$$deployed" != "$(SAM_ARCH)" ]; then \
	    echo "samconfig.toml deploys Architecture=$$deployed but builds $(SAM_ARCH): make them one" >&2; exit 2; fi
	SAM_ARCH=$(SAM_ARCH) SAM_TARGET_DIR="$(SAM_TARGET_DIR)" \
	  $(SAM) build --parameter-overrides Architecture=$(SAM_ARCH) $(SAM_ARGS)
	bash infra/check-lambda-binaries.sh .aws-sam/build

## SAM's makefile build method: `sam build` (from the root, in source) runs these with
## ARTIFACTS_DIR set; infra/build-function.sh does the work.
build-ApiFunction build-SchedulerFunction build-CheckerFunction build-NotifierFunction:
	bash infra/build-function.sh $(patsubst build-%,%,$@) "$(ARTIFACTS_DIR)"

## A dashboard password as SALTED_PASS / the stack's DashboardPasswordHash: asks for it without
## echoing it and prints the hash (the password never reaches the command line or a file).
password-hash:
	@$(CARGO) build -q -p changewatch
	@read -rsp "Dashboard password: " pw && echo >&2 && printf '%s' "$$pw" | $(CURDIR)/target/debug/changewatch hash-password

## The push service image for the deployed stack: the binary for SAM_ARCH with libxml2 linked
## statically (cargo-lambda + Zig, as the functions), the dashboard, then infra/push-image.sh
## (Docker's buildx when it works, else skopeo + umoci; PUSH_ARGS passes more options, e.g.
## PUSH_ARGS=--deploy to roll the stack onto the new image).
push-image: dashboard
	set -euo pipefail; eval "$$(bash infra/build-libxml2.sh $(SAM_ARCH))"; \
	  export CARGO_TARGET_DIR="$(SAM_TARGET_DIR)"; \
	  cargo lambda build --release -p changewatch-push-service $(if $(filter arm64,$(SAM_ARCH)),--arm64,--x86-64); \
	  bash infra/push-image.sh --arch $(SAM_ARCH) --method oci \
	    --binary "$(SAM_TARGET_DIR)/lambda/changewatch-push-service/bootstrap" $(PUSH_ARGS)

## The `serve` container image (root Dockerfile), as far as this machine allows: buildah built
## and run when it can, else the release binary run as the image runs it
## (infra/container-check.sh says which; not part of `make test`).
container-check: dashboard
	$(RELEASE_ENV) $(CARGO) build --release -p changewatch
	CW_BINARY=target/release/changewatch bash infra/container-check.sh
