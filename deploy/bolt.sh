#!/usr/bin/env bash
# The release binary laid out by BOLT (issue 13): target/bolt/tongzheng. Same source, same
# compiler output, same instructions; only the order of the machine code changes. A request runs
# through code of many crates (tokio, hyper, axum, serde, ring, our own) spread over a 16 MB
# binary, and callgrind's cache model counted 3,376 instruction-cache misses in a
# client_credentials request against the reference server's 2,094. BOLT (LLVM's post-link
# optimizer) counts which blocks a run of the load rows executes and places the hot ones
# together, cold paths apart: 2,395 misses, and 4-13 % more requests per core (README,
# Performance).
#   deploy/bolt.sh                 build, instrument, train, lay out, check: writes
#                                  target/bolt/tongzheng (stripped; the image ships it when
#                                  built with LAYOUT=bolt) and target/bolt/tongzheng.symbols (for perf)
# Steps, each of which stops the script if it fails:
#   1. `cargo build --release` with relocations kept (`--emit-relocs`, which BOLT needs to move
#      functions) into target/bolt, so the plain release build is not replaced;
#   2. `llvm-bolt -instrument`: a copy that counts its own branches;
#   3. training: benches/profile.sh's rows (client_credentials, introspection, code redemption
#      after a browser login, /healthz, and the Redis store's rows when redis-server is here), the
#      instrumented copy serving, each process writing its counts when it exits;
#   4. `llvm-bolt` with the merged counts: hot code first, blocks in the order they run, cold
#      blocks and landing pads split off, identical functions folded;
#   5. a check: the laid-out binary serves the same rows, and every answer must be 2xx.
# The tests run on it too (`TONGZHENG_TEST_BIN=target/bolt/tongzheng`, .ci/run does it).
# Needs: llvm-bolt and merge-fdata (Debian's bolt-19, installed when missing), wrk, curl,
# python3, taskset and two cores (the rows pin the server to core 0 and wrk to core 1).
# Bounded: about 6 minutes for the build (fat LTO), one for the rest; 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

apt_install() {
  local apt=(apt-get)
  [ "$(id -u)" -eq 0 ] || apt=(sudo apt-get)
  "${apt[@]}" install -y -q --no-install-recommends "$@" >/dev/null 2>&1 ||
    { "${apt[@]}" update -q >/dev/null && "${apt[@]}" install -y -q --no-install-recommends "$@" >/dev/null; }
}
bolt_bin() { # the directory holding llvm-bolt and merge-fdata, the newest LLVM's
  local d
  for d in $(printf '%s\n' /usr/lib/llvm-*/bin | sort -t- -k2 -n -r); do
    [ -x "$d/llvm-bolt" ] && [ -x "$d/merge-fdata" ] && { echo "$d"; return 0; }
  done
  return 1
}
BOLT_DIR="$(bolt_bin || { apt_install bolt-19 && bolt_bin; })" || { echo "deploy/bolt.sh: install bolt-19" >&2; exit 1; }
for c in wrk:wrk curl:curl python3:python3 taskset:util-linux strip:binutils; do
  command -v "${c%%:*}" >/dev/null || apt_install "${c#*:}"
done
[ "$(nproc)" -ge 2 ] || { echo "deploy/bolt.sh: needs two cores (server on one, load on the other)" >&2; exit 1; }

OUT="$PWD/target/bolt"
mkdir -p "$OUT"
# 1. The release build, with relocations: functions can then be moved, not only their blocks.
RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,--emit-relocs" CARGO_PROFILE_RELEASE_STRIP=false CARGO_TARGET_DIR="$OUT" \
  cargo build --release --locked -q --bin tongzheng
BUILT="$OUT/release/tongzheng"

TRAIN="$(mktemp -d)"
trap 'rm -rf "$TRAIN"' EXIT
# 2. The counting copy; each process it runs writes TRAIN/prof.PID.fdata when it exits.
"$BOLT_DIR/llvm-bolt" "$BUILT" -o "$TRAIN/tongzheng.inst" -instrument \
  -instrumentation-file="$TRAIN/prof" -instrumentation-file-append-pid >"$TRAIN/instrument.log" 2>&1 ||
  { cat "$TRAIN/instrument.log" >&2; exit 1; }

ROWS=(cc intro code health)
command -v redis-server >/dev/null && ROWS+=(redis-cc redis-intro)
# rows BIN: benches/profile.sh's rows served by BIN, 3 s each; fails on any answer that is not 2xx.
rows() {
  local row line
  for row in "${ROWS[@]}"; do
    line="$(BIN="$1" DURATION=3 benches/profile.sh "$row" 2>&1 | tail -1)"
    echo "  $line"
    [[ "$line" == *"non-2xx 0,"* ]] || { echo "deploy/bolt.sh: $row: not every answer was 2xx" >&2; return 1; }
  done
}
# 3. Training.
echo "deploy/bolt.sh: training (the counting copy serves the load rows)"
rows "$TRAIN/tongzheng.inst"
ls "$TRAIN"/prof.*.fdata >/dev/null 2>&1 || { echo "deploy/bolt.sh: no profile was written" >&2; exit 1; }
"$BOLT_DIR/merge-fdata" "$TRAIN"/prof.*.fdata >"$TRAIN/all.fdata" 2>"$TRAIN/merge.log"

# 4. The layout (the options LLVM's and rustc's own BOLT builds use).
"$BOLT_DIR/llvm-bolt" "$BUILT" -o "$OUT/tongzheng.symbols" -data="$TRAIN/all.fdata" \
  -reorder-blocks=ext-tsp -reorder-functions=cdsort -split-functions -split-strategy=cdsplit \
  -split-all-cold -split-eh -icf=1 -use-gnu-stack -dyno-stats >"$TRAIN/bolt.log" 2>&1 ||
  { cat "$TRAIN/bolt.log" >&2; exit 1; }
grep -E "BOLT-INFO: (basic block reordering|[0-9]+ out of [0-9]+ functions in the binary)" "$TRAIN/bolt.log" | sed 's/^/  /' || true
strip -o "$OUT/tongzheng" "$OUT/tongzheng.symbols"

# 5. The check.
echo "deploy/bolt.sh: checking target/bolt/tongzheng"
rows "$OUT/tongzheng"
echo "deploy/bolt.sh: wrote target/bolt/tongzheng"
