#!/usr/bin/env bash
# The test command of the README: installs what is missing, then runs every
# test of the workspace in release mode (one build profile for everything).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec cargo test --release --workspace --locked "$@"
