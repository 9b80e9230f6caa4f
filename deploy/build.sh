#!/usr/bin/env bash
# The release binary the image ships (issue 13): target/optimized/tongzheng, the same source
# compiled with profile-guided optimization (PGO) from a profile of the load rows. A request runs
# through code of many crates (tokio, hyper, axum, serde, ring, our own); a plain `cargo build`
# decides what to inline and how to order each function's blocks without knowing which paths
# run, and the request's code ends up spread out (callgrind's cache model: 3,376
# instruction-cache misses in a client_credentials request against the reference server's
# 2,094). With the counts of a run, LLVM inlines along the hot paths, lays their blocks out in
# the order they run and moves cold code aside: a median 1.19x the plain build's
# client_credentials requests per core in six alternating runs (1.15-1.21; README, Performance).
#   deploy/build.sh              build, train, rebuild, check: writes target/optimized/tongzheng
#                                (stripped) and target/optimized/tongzheng.symbols (for perf)
# Steps, each of which stops the script if it fails:
#   1. an instrumented release build (`-Cprofile-generate`) into target/optimized/gen;
#   2. training: benches/profile.sh's rows (client_credentials, introspection, code redemption
#      after a browser login, /healthz, and the Redis store's rows when redis-server is here),
#      served by the instrumented build, each server writing its counts when it exits;
#   3. `llvm-profdata merge`, then the release build with the counts (`-Cprofile-use`) into
#      target/optimized/use;
#   4. a check: the result serves the same rows, and every answer must be 2xx.
# The plain `cargo build --release` is untouched (target/release). The tests run on the result
# too (`TONGZHENG_TEST_BIN=target/optimized/tongzheng`, .ci/run does it).
# BOLT (LLVM's post-link layout, stop 25's build) is not applied on top: after PGO it gained
# nothing (client_credentials 0.95-1.00x, seen introspection 0.92-0.94x of the PGO build alone).
# Needs: llvm-profdata (rustup's llvm-tools when installed, else Debian's llvm-19, installed when
# missing), wrk, curl, python3, taskset and two cores (the rows pin the server to core 0, wrk to 1).
# Bounded: two release builds (about 6 minutes each with fat LTO), one minute of rows; 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

apt_install() {
  local apt=(apt-get)
  [ "$(id -u)" -eq 0 ] || apt=(sudo apt-get)
  "${apt[@]}" install -y -q --no-install-recommends "$@" >/dev/null 2>&1 ||
    { "${apt[@]}" update -q >/dev/null && "${apt[@]}" install -y -q --no-install-recommends "$@" >/dev/null; }
}
# llvm-profdata reads the raw counts rustc's LLVM writes: rustup's own copy matches it exactly;
# Debian's LLVM 19 read those of rustc 1.95 (LLVM 22) here. A newer raw format than it knows
# fails the merge, and the script with it.
debian_profdata() {
  local d
  for d in $(printf '%s\n' /usr/lib/llvm-*/bin | sort -t- -k2 -n -r); do
    [ -x "$d/llvm-profdata" ] && { echo "$d/llvm-profdata"; return 0; }
  done
  return 1
}
PROFDATA="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-profdata"
if [ ! -x "$PROFDATA" ]; then
  PROFDATA="$(debian_profdata || { apt_install llvm-19 && debian_profdata; })" ||
    { echo "deploy/build.sh: install llvm-19 (or rustup component add llvm-tools)" >&2; exit 1; }
fi
for c in wrk:wrk curl:curl python3:python3 taskset:util-linux strip:binutils nm:binutils; do
  command -v "${c%%:*}" >/dev/null || apt_install "${c#*:}"
done
[ "$(nproc)" -ge 2 ] || { echo "deploy/build.sh: needs two cores (server on one, load on the other)" >&2; exit 1; }

OUT="$PWD/target/optimized"
mkdir -p "$OUT"
TRAIN="$(mktemp -d)"
trap 'rm -rf "$TRAIN"' EXIT

ROWS=(cc intro code health)
command -v redis-server >/dev/null && ROWS+=(redis-cc redis-intro)
# rows BIN: benches/profile.sh's rows served by BIN, 3 s each; fails on any answer that is not 2xx.
rows() {
  local row line
  for row in "${ROWS[@]}"; do
    line="$(BIN="$1" DURATION=3 benches/profile.sh "$row" 2>&1 | tail -1)"
    echo "  $line"
    [[ "$line" == *"non-2xx 0,"* ]] || { echo "deploy/build.sh: $row: not every answer was 2xx" >&2; return 1; }
  done
}

# The two builds must name every function alike: the counts are looked up by symbol name, and a
# symbol's hash follows the cargo profile's settings (a stripped counting build and an unstripped
# final one matched 5 of 26,459 functions, and the result ran no faster than the plain build).
# Both keep their symbols; the result is stripped at the end.
export CARGO_PROFILE_RELEASE_STRIP=false

# 1. The counting build. Its build scripts write counts too, into gen/counts (unused); the
# server's go where LLVM_PROFILE_FILE says during training, one file per process.
echo "deploy/build.sh: instrumented build"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$OUT/gen/counts" CARGO_TARGET_DIR="$OUT/gen" \
  cargo build --release --locked -q --bin tongzheng
# 2. Training.
echo "deploy/build.sh: training (the instrumented build serves the load rows)"
LLVM_PROFILE_FILE="$TRAIN/%p.profraw" rows "$OUT/gen/release/tongzheng"
ls "$TRAIN"/*.profraw >/dev/null 2>&1 || { echo "deploy/build.sh: no profile was written" >&2; exit 1; }
# 3. The build with the counts (rustc lists the profile among each crate's inputs: new counts,
# new build).
"$PROFDATA" merge -o "$OUT/tongzheng.profdata" "$TRAIN"/*.profraw
echo "deploy/build.sh: profile-guided build"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$OUT/tongzheng.profdata" CARGO_TARGET_DIR="$OUT/use" \
  cargo build --release --locked -q --bin tongzheng
# The counts applied: most functions of the result carry the names the counting build gave them
# (93 % here; with the two builds' settings apart, the profile's names matched 5 of 26,459).
symbols() { nm --defined-only "$1" | awk '$3 ~ /^_ZN/ { print $3 }' | sort -u; }
symbols "$OUT/gen/release/tongzheng" >"$TRAIN/gen.syms"
symbols "$OUT/use/release/tongzheng" >"$TRAIN/use.syms"
same="$(comm -12 "$TRAIN/gen.syms" "$TRAIN/use.syms" | wc -l)"
all="$(wc -l <"$TRAIN/use.syms")"
echo "  $same of $all functions named as in the counting build"
[ $((same * 2)) -gt "$all" ] ||
  { echo "deploy/build.sh: the profile does not match the build (its functions are named otherwise)" >&2; exit 1; }
cp "$OUT/use/release/tongzheng" "$OUT/tongzheng.symbols"
strip -o "$OUT/tongzheng" "$OUT/tongzheng.symbols"

# 4. The check.
echo "deploy/build.sh: checking target/optimized/tongzheng"
rows "$OUT/tongzheng"
echo "deploy/build.sh: wrote target/optimized/tongzheng"
