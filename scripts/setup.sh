#!/usr/bin/env bash
# Installs what Isthmus needs on a fresh Debian machine, idempotently.
#   scripts/setup.sh run    tools to build and run the product
#   scripts/setup.sh test   the same, plus what the test suite needs
# Sources: crates.io, npm, PyPI and Debian packages only. Nothing else is downloaded.
set -euo pipefail
mode=${1:-run}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

export PATH="$HOME/.cargo/bin:$PATH"

apt_need=()
want_deb() { dpkg -s "$1" >/dev/null 2>&1 || apt_need+=("$1"); }
want_deb pkg-config
want_deb curl
want_deb nodejs
if [ "$mode" = test ]; then
  for p in chromium fonts-noto-cjk wireguard-go wireguard-tools iperf3 iputils-ping postgresql iproute2 iptables wrk; do want_deb "$p"; done
  # Issue 17: strongSwan 5.9.8 for the IPsec interop lab (worker/tests/integration/strongswan_lab.rs):
  # charon-systemd with the openssl, gcm, kernel-libipsec and vici plugins, and swanctl.
  for p in charon-systemd strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins; do want_deb "$p"; done
  # Schemathesis runs from a virtual environment (below).
  command -v python3 >/dev/null 2>&1 || want_deb python3
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || want_deb python3-venv
fi
# Node may come from elsewhere than Debian (it does on this machine kind): only install if absent.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  apt_need=("${apt_need[@]/nodejs/}")
fi
pkgs=$(printf '%s\n' "${apt_need[@]}" | grep -v '^$' || true)
if [ -n "$pkgs" ]; then
  log "installing Debian packages: $(echo $pkgs)"
  apt-get -o DPkg::Lock::Timeout=600 update -q
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $pkgs
  if ! command -v npm >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends npm
  fi
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

if ! trunk --version 2>/dev/null | grep -q ' 0\.21\.14'; then
  log "installing trunk 0.21.14 (0.22 needs a newer rustc)"
  cargo install trunk --version 0.21.14 --locked
fi

# wasm-bindgen-cli must equal the wasm-bindgen in Cargo.lock.
wb=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q " $wb\$"; then
  log "installing wasm-bindgen-cli $wb"
  if ! cargo install wasm-bindgen-cli --version "$wb" --locked; then
    # Its lock file names a webpki-roots release this registry lacks: pin the one before it.
    src=$(ls -d "$HOME"/.cargo/registry/src/*/wasm-bindgen-cli-"$wb" 2>/dev/null | head -n 1)
    [ -n "$src" ] || { echo "wasm-bindgen-cli $wb source not found in the cargo registry" >&2; exit 1; }
    tmp=$(mktemp -d)
    cp -r "$src" "$tmp/cli"
    (cd "$tmp/cli" && cargo update -p webpki-roots --precise 1.0.10 && cargo install --path . --locked)
    rm -rf "$tmp"
  fi
fi

# npm: wasm-opt (binaryen 132; Debian's 108 makes wasm that crashes) and Playwright (no browser download).
if [ ! -x e2e/node_modules/.bin/wasm-opt ] || { [ "$mode" = test ] && [ ! -d e2e/node_modules/@playwright/test ]; } \
   || [ e2e/package-lock.json -nt e2e/node_modules/.package-lock.json ]; then
  log "installing npm packages in e2e/"
  (cd e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

# Schemathesis (PyPI, pinned) fuzzes the running server against its OpenAPI document.
st_version=4.32.5
if [ "$mode" = test ] && ! target/schemathesis-venv/bin/schemathesis --version 2>/dev/null | grep -q " $st_version\$"; then
  log "installing schemathesis $st_version into target/schemathesis-venv"
  mkdir -p target
  python3 -m venv target/schemathesis-venv
  target/schemathesis-venv/bin/pip install -q --disable-pip-version-check "schemathesis==$st_version"
fi

# CI's dependency checks (scripts/test.sh), from crates.io; each takes minutes to build once,
# then stays in ~/.cargo/bin.
if [ "$mode" = test ]; then
  deny_version=0.20.2
  if ! cargo deny --version 2>/dev/null | grep -q " $deny_version\$"; then
    log "installing cargo-deny $deny_version"
    cargo install cargo-deny --version "$deny_version" --locked
  fi
  machete_version=0.9.2
  if ! cargo machete --version 2>/dev/null | grep -qx "$machete_version"; then
    log "installing cargo-machete $machete_version"
    cargo install cargo-machete --version "$machete_version" --locked
  fi
fi

# Fetch crates once so Trunk's cargo build can run --offline.
cargo fetch --locked >/dev/null 2>&1 || cargo fetch
log "ready ($mode)"
