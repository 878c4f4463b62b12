#!/usr/bin/env bash
# The README's first command: build trawl, generate the bundled fixture image
# (deterministic, 8 MiB, planted files and features) and scan it with every
# analysis: hashes, carving, features, and YARA with the bundled demo rules.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --locked --bin trawl --bin trawl-fixtures
mkdir -p target/fixtures
./target/release/trawl-fixtures --preset small --out target/fixtures --name small >/dev/null
ANALYSES="${TRAWL_DEMO_ANALYSES:-all}"
rm -rf out/demo
exec ./target/release/trawl scan target/fixtures/small.raw --out out/demo --analyses "$ANALYSES" \
    --rules fixtures/rules/demo.yar "$@"
