# runs-fleet agent — every target installs what it needs itself.
SHELL := /bin/bash
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED := true
JEST := NODE_OPTIONS=--experimental-vm-modules node_modules/.bin/jest

.PHONY: all install build typecheck test demo bench diagram clean systemd-analyze graphviz golang orchestrator-mirror nftables nspawn

all: build

# npm ci only when the lockfile changed since the last install.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: node_modules/.installed

dist/runs-fleet-agent.cjs: node_modules/.installed $(shell find bin machines services actors -name '*.ts' 2>/dev/null) scripts/build.mjs scripts/lean-bundle.mjs
	node scripts/build.mjs

build: dist/runs-fleet-agent.cjs

typecheck: node_modules/.installed
	node_modules/.bin/tsc --noEmit

# systemd-analyze verifies the unit; Debian's systemd package brings it when missing.
systemd-analyze:
	@command -v systemd-analyze >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null; }

# The orchestrator's side of the wire (test/contract/orchestrator): a stdlib-only Go program
# built with Debian's golang-go, installed when missing. No module proxy is needed or used.
golang:
	@command -v go >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null; }

# The job is kept off IMDS with an nftables owner match (services/runner/imds-firewall.ts): the tests run
# the agent as root, as on the AMI, so they need nft; Debian's nftables when missing.
nftables:
	@command -v nft >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null; }

# test/nspawn.test.ts boots a real systemd in a systemd-nspawn container (Debian's systemd-container) from a
# base rootfs debootstrap builds once into /var/cache/runs-fleet-test (test/support/nspawn.ts); both when missing.
nspawn:
	@command -v systemd-nspawn >/dev/null && command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container debootstrap >/dev/null; }

ORCHESTRATOR_MIRROR := .build/orchestrator-mirror
$(ORCHESTRATOR_MIRROR): $(wildcard test/contract/orchestrator/*.go) test/contract/orchestrator/go.mod | golang
	@mkdir -p .build/gocache
	cd test/contract/orchestrator && GOCACHE=$(CURDIR)/.build/gocache GOFLAGS=-mod=mod GOPROXY=off CGO_ENABLED=0 go build -o $(CURDIR)/$@ .

orchestrator-mirror: $(ORCHESTRATOR_MIRROR)

# Typecheck, build the bundle, the single binary and the release tarball (end-to-end tests run the first two
# as a process; the nspawn tests install the tarball with its own install.sh) and the orchestrator mirror,
# then every test.
test: typecheck build dist systemd-analyze orchestrator-mirror nftables nspawn
	$(JEST) $(JEST_ARGS)

# Graphviz renders the state diagram picture; Debian's package when missing.
graphviz:
	@command -v dot >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; }

# Its pictures (this run's timeline, the state diagram) go to out/, git-ignored: never over docs/.
demo: build graphviz orchestrator-mirror nftables
	node scripts/run-ts.mjs scripts/demo.ts

bench: build binary orchestrator-mirror nftables
	node scripts/run-ts.mjs bench/run.ts

# The only writer of docs/state-machine.md and docs/state-machine.svg; the SVG only when Graphviz's dot
# is installed (make graphviz), else skipped with a message, so that it works offline.
diagram: node_modules/.installed
	node scripts/run-ts.mjs scripts/update-diagram.ts

clean:
	rm -rf dist .build

# --- Artifacts and deploy (issue 7) ---------------------------------------------------------
# make dist: the bundle, the single executable dist/runs-fleet-agent-linux-{x64|arm64} (Node SEA,
# scripts/sea.mjs) and the release tarball dist/runs-fleet-agent-{version}-linux-{arch}.tar.gz
# with its .sha256 (scripts/release.mjs). make release: the same, checksum verified.
# make publish BUCKET=name [PREFIX=agent]: upload the tarball and checksum to
# s3://BUCKET/PREFIX/{version}/{arch}/ and point PREFIX/latest at the version (scripts/publish.mjs).
.PHONY: dist release publish
DIST_ARCH := $(subst x86_64,x64,$(subst aarch64,arm64,$(shell uname -m)))
DIST_VERSION := $(shell sed -n 's/^  "version": "\(.*\)",$$/\1/p' package.json)
DIST_BIN := dist/runs-fleet-agent-linux-$(DIST_ARCH)
DIST_TARBALL := dist/runs-fleet-agent-$(DIST_VERSION)-linux-$(DIST_ARCH).tar.gz

# The unit's NODE_OPTIONS are the V8 flags the binary's code cache is built with.
$(DIST_BIN): dist/runs-fleet-agent.cjs scripts/sea.mjs deploy/systemd/runs-fleet-agent.service
	node scripts/sea.mjs

.PHONY: binary
binary: $(DIST_BIN)

$(DIST_TARBALL): $(DIST_BIN) scripts/release.mjs deploy/install.sh deploy/systemd/runs-fleet-agent.service deploy/agent.env.example README.md $(wildcard docs/operations.md docs/iam-policy.json)
	node scripts/release.mjs

dist: build $(DIST_TARBALL)

release: dist
	cd dist && sha256sum -c $(notdir $(DIST_TARBALL)).sha256

# Checked before anything is built.
ifneq ($(filter publish,$(MAKECMDGOALS)),)
ifeq ($(strip $(BUCKET)),)
$(error usage: make publish BUCKET=name [PREFIX=agent])
endif
endif

publish: release
	node scripts/publish.mjs --bucket '$(BUCKET)' --prefix '$(or $(PREFIX),agent)' --file $(DIST_TARBALL)
