#!/usr/bin/env bash
# Instructions per request (issue 13), counted by valgrind's callgrind: a figure that does not
# move with the machine's noise (this VM's request rates drift by 10 % between runs; the
# instruction counts of two runs of one build agree to within 1 %), so a change worth 1 % of a
# request can be shown, and the work tongzheng adds to the cryptography can be compared with
# the reference server's (benches/reference) instruction for instruction.
#   benches/instructions.sh [ROW ...]   ROW: cc | intro | health (default: all three)
# For each row, tongzheng and the reference serve the same requests (cc: client_credentials;
# intro: introspection of one token, seen before, against the reference's /introspect-seen;
# health: GET /healthz) and the table gives instructions per request: all of them, those in
# ring (the signature or hash itself; under valgrind ring takes its generic code paths, so
# this part is larger than on the bare CPU and is left out of the comparison), and the rest,
# which is the server's own work, with tongzheng's rest as a multiple of the reference's.
# Counted from the first request after a warm-up to the end (callgrind_control -z / -d), only
# user-space instructions (the kernel's part of a request is not in them). FUNCS=N also prints
# the N most costly functions of tongzheng's rest, by their own instructions, per request.
# Needs valgrind (apt). Bounded: DURATION (default 6) s of requests per server, 127.0.0.1 only;
# every process it starts is stopped on exit. Builds both with symbols in target directories
# of their own (target/symbols, target/reference), so neither replaces the shipped build.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-6}"
ROWS=("$@"); [ ${#ROWS[@]} -gt 0 ] || ROWS=(cc intro health)
command -v valgrind >/dev/null || apt-get install -y -q valgrind >/dev/null || { echo "install valgrind" >&2; exit 1; }
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null || { echo "install wrk" >&2; exit 1; }
export CARGO_PROFILE_RELEASE_STRIP=false
CARGO_TARGET_DIR="$PWD/target/symbols" cargo build --release --locked -q --bin tongzheng
CARGO_TARGET_DIR="$PWD/target/reference" cargo build --release --locked -q --example reference
BIN="$PWD/target/symbols/release/tongzheng"
REF="$PWD/target/reference/release/examples/reference"
# shellcheck source=benches/procs.sh
. benches/procs.sh

# count WHO ROW: runs one server under callgrind and prints "total ring" per request; leaves
# the profile in $WORK/WHO-ROW.out for FUNCS.
count() {
  local who=$1 row=$2 port base out srv url script n
  port="$(free_port)"; base="http://127.0.0.1:$port"; out="$WORK/$who-$row.out"
  local vg=(valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no)
  if [ "$who" = ref ]; then
    (exec env WORKERS=1 "${vg[@]}" "$REF" serve --listen "127.0.0.1:$port" >"$WORK/$who-$row.log" 2>&1) &
  else
    local dir; dir="$(mktemp -d -p "$WORK")"
    (cd "$dir" && exec env TONGZHENG_SERVER__WORKERS=1 TONGZHENG_LOG=warn TONGZHENG_RATE_LIMIT__DEFAULT_PER_SECOND=1000000 \
      TONGZHENG_RATE_LIMIT__DEFAULT_BURST=1000000 "${vg[@]}" "$BIN" serve --dev --listen "127.0.0.1:$port" \
      >"$WORK/$who-$row.log" 2>&1) &
  fi
  srv=$!; PIDS+=("$srv")
  READY_TRIES=1200 ready "$base/healthz"
  url="$base/token"; script="$WORK/cc.lua"
  post_lua "$script" "grant_type=client_credentials" "$ADMIN_BASIC"
  case "$row" in
    intro)
      local at
      at="$(curl -sf -u demo-web:demo-web-secret-0123456789abcdef -d grant_type=client_credentials "$base/token" |
        python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')"
      script="$WORK/intro.lua"; post_lua "$script" "token=$at" "$WEB_BASIC"
      url="$base/introspect"; [ "$who" = ref ] && url="$base/introspect-seen" ;;
    health) script="$WORK/health.lua"; printf 'wrk.method = "GET"\n' >"$script"; url="$base/healthz" ;;
  esac
  wrk -t1 -c4 -d3s -s "$script" "$url" >/dev/null # warm-up: caches, pools, the seen token
  callgrind_control -z "$srv" >/dev/null 2>&1
  n="$(wrk -t1 -c4 -d"${DURATION}s" -s "$script" "$url" | awk '/requests in/{print $1}')"
  callgrind_control -d "$srv" >/dev/null 2>&1
  stop "$srv"
  # The dump taken above is OUT.1 (the one written at exit holds the shutdown).
  callgrind_annotate --auto=no --threshold=100 "$out.1" 2>/dev/null | awk -v n="$n" '
    /PROGRAM TOTALS/ { gsub(",", "", $1); total = $1 }
    /^ *[0-9,]+ +\([ 0-9.]+%\) +/ && !/PROGRAM TOTALS/ {
      c = $1; gsub(",", "", c)
      if ($0 ~ /ring-0\.[0-9.]+\/|[:< ]ring::|ring_core_/) ring += c
    }
    END { printf "%.0f %.0f %d\n", total / n, ring / n, n }'
}

printf '| request | tongzheng: all | ring | rest | reference: all | ring | rest | rest, tongzheng / reference |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for row in "${ROWS[@]}"; do
  read -r tt tr tn < <(count tz "$row")
  read -r rt rr rn < <(count ref "$row")
  python3 -c "
tt, tr, rt, rr = $tt, $tr, $rt, $rr
print(f'| $row | {tt:,} | {tr:,} | {tt - tr:,} | {rt:,} | {rr:,} | {rt - rr:,} | {(tt - tr) / max(rt - rr, 1):.2f} |')"
  echo "($row: $tn requests counted at tongzheng, $rn at the reference)" >&2
  if [ -n "${FUNCS:-}" ]; then
    callgrind_annotate --auto=no --threshold=100 "$WORK/tz-$row.out.1" 2>/dev/null |
      awk -v n="$tn" -v max="$FUNCS" '/^ *[0-9,]+ +\([ 0-9.]+%\) +/ && !/PROGRAM TOTALS/ && !/ring-0\.[0-9.]+\/|[:< ]ring::|ring_core_/ && !/\((100\.0|9[0-9]\.[0-9]+)%\)/ {
        c = $1; gsub(",", "", c); $1 = ""; $2 = ""; sub(/^ +/, "")
        if (++k <= max) printf "%8.0f  %s\n", c / n, substr($0, 1, 140) }' >&2
  fi
done
