#!/usr/bin/env bash
# Rebuilds the bundled sample logs in sample-logs/ (byte-identical on every run).
# The generator is crates/fixtures/ (scrapemeter-fixtures), behind `scrapemeter generate`.
# What is in them is described in docs/sample-logs.md (hand-written: update it if the generator changes).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf sample-logs/fra1 sample-logs/nyc1
cargo run --release --quiet -- generate --preset sample --seed 1 --out sample-logs
