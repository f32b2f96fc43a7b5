#!/usr/bin/env bash
# Builds every binary (berthd, berth, berth-shim) into target/<profile>/, with berth-shim linked
# statically: it stays resident beside every running container, and a static binary keeps its
# footprint small (no shared libc pages mapped in; docs/architecture.md, "Process model").
#   scripts/build.sh [--release]
# Cargo has no per-binary link flags on stable, so the static shim is a second build for the host
# target (which keeps proc macros and build scripts dynamic) copied over the dynamic one. Without
# this step berthd still works: it uses whatever berth-shim is beside it, or monitors in the shim.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
args=()
if [ "${1:-}" = "--release" ]; then profile=release; args=(--release); fi
cargo build --bins --locked "${args[@]}"
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build -p shim --bin berth-shim --locked --target "$host" "${args[@]}"
rm -f "target/$profile/berth-shim"
cp "target/$host/$profile/berth-shim" "target/$profile/berth-shim"
