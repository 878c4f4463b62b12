#!/usr/bin/env bash
# The README's first command: build trawl, generate the bundled fixture image
# (deterministic, 8 MiB, planted files and features) and scan it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --locked --bin trawl --bin trawl-fixtures
mkdir -p target/fixtures
[ -f target/fixtures/small.raw ] || ./target/release/trawl-fixtures --preset small --out target/fixtures --name small
ANALYSES="${TRAWL_DEMO_ANALYSES:-hash}"
exec ./target/release/trawl scan target/fixtures/small.raw --out out/demo --analyses "$ANALYSES" "$@"
