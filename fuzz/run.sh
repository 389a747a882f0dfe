#!/bin/bash
# Fuzz parse + validate + plan for SECONDS (default 60) with cargo fuzz (libFuzzer). The
# stable toolchain is enough: RUSTC_BOOTSTRAP lets it take the flags cargo fuzz passes.
# Seeds: the example topologies and the good and bad files of the test catalog.
# usage: fuzz/run.sh [SECONDS]      (installs cargo-fuzz from crates.io if missing)
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p corpus/parse_plan
cp ../topologies/*.yaml ../tests/good/*.yaml ../tests/bad/*.yaml corpus/parse_plan/ 2>/dev/null || true
export RUSTC_BOOTSTRAP=1
exec cargo fuzz run parse_plan --sanitizer none -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536
