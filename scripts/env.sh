# Sourced by the scripts: puts the pinned tools on PATH.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$root/e2e/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
build_portal() {
  # --offline and the pinned [tools] in Trunk.toml: Trunk never downloads a tool.
  (cd "$root" && trunk --skip-version-check build --release --offline)
}
