#!/usr/bin/env bash
# Every check and test berth has. As root with BERTH_TEST_ROOT=1 (what CI does) the root and
# end-to-end tests run too: each starts its own berthd on a temporary socket and data root.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins --locked
cargo test --workspace --locked
