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

step "cargo deny: licences, bans and sources (deny.toml)"
cargo deny --locked check licenses bans sources
# The RustSec database is cloned from a git host, which these machines cannot reach, and no
# package registry ships it (deny.toml says more). Checked only where a copy already exists.
if [ -d "$HOME/.cargo/advisory-db" ] && [ -n "$(ls -A "$HOME/.cargo/advisory-db" 2>/dev/null)" ]; then
  cargo deny --locked check --disable-fetch advisories
else
  echo "cargo deny advisories: SKIPPED (no local RustSec advisory database in ~/.cargo/advisory-db;"
  echo "  it is fetched from a git host this machine cannot reach)"
fi

step "unused dependencies (cargo-machete)"
cargo machete --with-metadata

step "rustdoc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --workspace

step "native tests"
cargo build --locked --workspace --bins

step "systemd units (deploy/) verified against the built binaries"
bash deploy/verify.sh "$root/target/debug"
cargo test --locked --workspace 2>&1 | tee target/cargo-test.log
rust_passed=$(grep -Eo '^test result: ok\. [0-9]+ passed' target/cargo-test.log | awk '{s+=$4} END {print s+0}')

step "server suite on PostgreSQL (throwaway server on 127.0.0.1)"
eval "$(bash scripts/pg.sh)"
trap 'bash scripts/pg.sh stop "$PG_DIR"' EXIT
# Run the server's integration binary built above (as `cargo test -p` would re-resolve features
# and rebuild much of the tree).
server_tests=$(cargo test --locked --workspace --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and m.get("executable") and t.get("name") == "integration" \
            and "isthmus-server" in m.get("package_id", ""):
        print(m["executable"])
')
[ -x "$server_tests" ] || { echo "cannot find the server's integration test binary" >&2; exit 1; }
(cd server && "$server_tests") 2>&1 | tee target/cargo-test-pg.log
pg_passed=$(grep -Eo '^test result: ok\. [0-9]+ passed' target/cargo-test-pg.log | awk '{s+=$4} END {print s+0}')
bash scripts/pg.sh stop "$PG_DIR"; trap - EXIT

step "schemathesis: the running server against its OpenAPI document (admin, reader, worker)"
ISTHMUS_BIN="$root/target/debug/isthmus" bash scripts/schemathesis.sh

step "portal (Trunk, release)"
build_portal

step "Playwright (Chromium) against the real server, in a network namespace of its own"
# The e2e worker runs the gateways the tests create, and WireGuard initiates handshakes to the
# site endpoints they name. A namespace with only a loopback keeps every packet on this machine.
[ "$(id -u)" -eq 0 ] || { echo "the browser tests run in a network namespace of their own: run as root" >&2; exit 1; }
ns="isthmus-e2e-$$"
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
ip -n "$ns" link set lo up
ip netns exec "$ns" bash -c 'cd e2e && npx playwright test'
ip netns del "$ns"; trap - EXIT

echo
echo "all checks passed in $(( $(date +%s) - t0 ))s; Rust tests passed: $rust_passed (+ $pg_passed on PostgreSQL)"
