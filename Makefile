# runs-fleet agent — every target installs what it needs itself.
SHELL := /bin/bash
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED := true
JEST := NODE_OPTIONS=--experimental-vm-modules node_modules/.bin/jest

.PHONY: all install build typecheck test demo bench diagram clean systemd-analyze

all: build

# npm ci only when the lockfile changed since the last install.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: node_modules/.installed

dist/runs-fleet-agent.cjs: node_modules/.installed $(shell find bin machines services actors -name '*.ts' 2>/dev/null) scripts/build.mjs
	node scripts/build.mjs

build: dist/runs-fleet-agent.cjs

typecheck: node_modules/.installed
	node_modules/.bin/tsc --noEmit

# systemd-analyze verifies the unit; Debian's systemd package brings it when missing.
systemd-analyze:
	@command -v systemd-analyze >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null; }

# Typecheck, build (end-to-end tests run the bundle as a process), then every test.
test: typecheck build systemd-analyze
	$(JEST) $(JEST_ARGS)

demo: build
	node scripts/run-ts.mjs scripts/demo.ts

bench: build
	node scripts/run-ts.mjs bench/run.ts

diagram: node_modules/.installed
	node scripts/run-ts.mjs scripts/update-diagram.ts

clean:
	rm -rf dist .build
