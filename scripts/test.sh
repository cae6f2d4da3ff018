#!/usr/bin/env bash
# Runs every check and test of Isthmus; installs what the tests need first (idempotent).
# Exits non-zero if any part fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh test
# shellcheck source=env.sh
source scripts/env.sh

step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }
t0=$(date +%s)

step "rustfmt"
cargo fmt --all --check

step "clippy (all targets, warnings denied)"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "isthmus-shared builds for wasm32-unknown-unknown"
cargo check --locked -p isthmus-shared --target wasm32-unknown-unknown

step "dependency boundaries"
bash scripts/check-boundaries.sh

step "native tests"
cargo build --locked --workspace --bins
cargo test --locked --workspace 2>&1 | tee target/cargo-test.log
rust_passed=$(grep -Eo '^test result: ok\. [0-9]+ passed' target/cargo-test.log | awk '{s+=$4} END {print s+0}')

step "server suite on PostgreSQL (throwaway server on 127.0.0.1)"
eval "$(bash scripts/pg.sh)"
trap 'bash scripts/pg.sh stop "$PG_DIR"' EXIT
cargo test --locked -p isthmus-server --test integration 2>&1 | tee target/cargo-test-pg.log
pg_passed=$(grep -Eo '^test result: ok\. [0-9]+ passed' target/cargo-test-pg.log | awk '{s+=$4} END {print s+0}')
bash scripts/pg.sh stop "$PG_DIR"; trap - EXIT

step "portal (Trunk, release)"
build_portal

step "Playwright (Chromium) against the real server"
(cd e2e && npx playwright test)

echo
echo "all checks passed in $(( $(date +%s) - t0 ))s; Rust tests passed: $rust_passed (+ $pg_passed on PostgreSQL)"
