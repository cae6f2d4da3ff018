#!/usr/bin/env bash
# Checks the systemd units with `systemd-analyze verify`, pointed at the binaries built in
# TARGET (default target/debug) instead of /usr/local/bin, and at empty environment files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/target/debug}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for u in isthmus-server isthmus-worker; do
  sed -e "s#/usr/local/bin/#$bin/#" -e "s#/etc/isthmus/#$tmp/#" "$root/deploy/$u.service" >"$tmp/$u.service"
done
touch "$tmp/server.env" "$tmp/worker.env"
# verify prints problems and exits non-zero on errors; warnings are printed too: fail on any output.
out=$(cd "$tmp" && systemd-analyze verify ./isthmus-server.service ./isthmus-worker.service 2>&1) || {
  printf '%s\n' "$out" >&2
  exit 1
}
if [ -n "$out" ]; then
  printf '%s\n' "$out" >&2
  exit 1
fi
echo "systemd units verified: deploy/isthmus-server.service deploy/isthmus-worker.service"
