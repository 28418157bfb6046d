#!/usr/bin/env bash
# Runs every check and test of the workspace, installing what is missing.
#
#   ./scripts/test-all.sh
#
# On a fresh Debian/Ubuntu machine with only Rust, it installs capnproto via
# apt-get when the `capnp` compiler is absent (needed to prove that the
# committed bindings in schema/generated/ are fresh), postgresql when its
# server binaries are absent (the anchor's PostgreSQL tests start a throwaway
# cluster of their own) and chromium when no headless browser is found (the
# conformance HTML report test) and cargo-machete (with cargo install) when
# absent, then runs: rustfmt check, the file-size check
# (scripts/file-sizes.sh), clippy with -D warnings (including the sans-IO
# lint of protocol/clippy.toml), rustdoc with warnings denied, the
# unused-dependency check, all tests (cargo-nextest when available, else cargo
# test), doc tests, and a check that the build did not regenerate bindings.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

step "tools"
if ! command -v capnp >/dev/null; then
  echo "capnp not found: installing capnproto"
  apt_install capnproto
fi
capnp --version
# PostgreSQL server binaries for the anchor's storage tests (the tests start
# their own throwaway cluster on a unix socket; nothing is configured here).
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "PostgreSQL server binaries not found: installing postgresql"
  apt_install postgresql
fi
# A headless browser for the conformance HTML report test (it opens the
# report and checks what a person would see).
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null \
  && ! command -v google-chrome >/dev/null; then
  echo "no headless browser found: installing chromium"
  apt_install chromium || apt_install chromium-browser
fi
cargo --version
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# Unused dependencies (cargo-machete reads the manifests and sources; false
# positives are listed with a reason under [package.metadata.cargo-machete]).
if ! command -v cargo-machete >/dev/null; then
  echo "cargo-machete not found: installing it"
  cargo install cargo-machete --locked --quiet
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "no hand-written file over 1,200 lines of non-test code"
./scripts/file-sizes.sh --self-test
./scripts/file-sizes.sh

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "unused dependencies (cargo machete)"
cargo machete

# The conformance suite against our anchor (SQLite, PostgreSQL) and our node
# runs in its own step with its console report shown in the log.
suite='binary(suite_anchor) | binary(suite_node)'
step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast -E "not ($suite)"
  step "conformance suite: our anchor (SQLite, PostgreSQL) and our node"
  cargo nextest run -p distsoc-conformance --locked --no-fail-fast --no-capture -E "$suite"
  step "doc tests"
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast -- --skip anchor_passes_every_must_case \
    --skip anchor_on_postgres_passes_every_must_case --skip node_passes_every_must_case
  step "conformance suite: our anchor (SQLite, PostgreSQL) and our node"
  cargo test -p distsoc-conformance --locked --test suite_anchor --test suite_node -- \
    --nocapture --test-threads 1
fi

step "committed Cap'n Proto bindings are up to date"
if ! git diff --quiet -- schema/generated 2>/dev/null; then
  echo "the build regenerated schema/generated/: the committed bindings are stale" >&2
  git --no-pager diff --stat -- schema/generated >&2
  exit 1
fi

step "fuzz targets build"
if [ -f fuzz/Cargo.toml ]; then
  cargo check --manifest-path fuzz/Cargo.toml --quiet
fi

echo
echo "all checks passed"
