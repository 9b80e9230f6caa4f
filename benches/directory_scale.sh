#!/usr/bin/env bash
# Directory at scale (issue 12): generates PEOPLE people in 5,000 organizations (50 units, each a
# tree 5 levels deep), imports them with `tongzheng admin directory import` into a fresh
# tongzheng on its own redis-server (loopback, spare port, no persistence), and reports the import
# time (rows/s), the Redis memory per organization and per person (INFO memory used_memory before
# and after each file), and the latency of list/filter/page reads at that size
# (benches/directory_scale.py: p50/p99, store calls and bytes read from Redis per request).
# Bounded: the import stops after IMPORT_TIMEOUT s (default 480), each read row sends N requests
# (default 100). Starts and stops every process it starts. Not part of `cargo test`.
#   PEOPLE=100000 N=100 PROFILE=release benches/directory_scale.sh   (figures on stdout and in $OUT)
set -euo pipefail
cd "$(dirname "$0")/.."
PEOPLE="${PEOPLE:-100000}"
N="${N:-100}"
PROFILE="${PROFILE:-release}"
BATCH="${BATCH:-1000}"
IMPORT_TIMEOUT="${IMPORT_TIMEOUT:-480}"
OUT="${OUT:-$(mktemp -d)/directory_scale.json}"
command -v redis-server >/dev/null || { echo "install redis-server" >&2; exit 1; }
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$PROFILE" = release ]; then
  cargo build --release --locked -q --bin tongzheng
else
  cargo build --locked -q --bin tongzheng
fi
BIN="$PWD/target/$([ "$PROFILE" = release ] && echo release || echo debug)/tongzheng"
READY_TRIES=300
# shellcheck source=benches/procs.sh
. benches/procs.sh

python3 benches/directory_gen.py "$WORK/data" "$PEOPLE" 50 >&2

RPORT="$(free_port)"
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
mem() { redis-cli -p "$RPORT" INFO memory | awk -F: '/^used_memory:/{print $2+0}'; }

PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
(cd "$WORK" && exec env TONGZHENG_LOG=warn TONGZHENG_STORE__BACKEND=redis \
  TONGZHENG_STORE__REDIS_URL="redis://127.0.0.1:$RPORT" \
  TONGZHENG_RATE_LIMIT__DEFAULT_PER_SECOND=1000000 TONGZHENG_RATE_LIMIT__DEFAULT_BURST=1000000 \
  "$BIN" serve --dev --listen "127.0.0.1:$PORT" >server.log 2>&1) &
PIDS+=("$!")
ready "$BASE/readyz"
export TONGZHENG_ADMIN_URL="$BASE" TONGZHENG_ADMIN_CLIENT_ID=admin-cli
export TONGZHENG_ADMIN_CLIENT_SECRET=admin-cli-secret-0123456789abcdef

# import FILE -> "rows seconds errors" (the summary of --json), bounded in time.
import() {
  timeout "$IMPORT_TIMEOUT" "$BIN" admin --json directory import "$1" --batch "$BATCH" \
    2>"$WORK/import-$(basename "$1").err" >"$WORK/import-$(basename "$1").out" || {
    echo "import of $1 failed:" >&2; tr '\r' '\n' <"$WORK/import-$(basename "$1").err" | tail -5 >&2; }
  python3 -c \
    'import sys,json; s=json.load(open(sys.argv[1])); print(s["rows"], round(s["seconds"],2), s["errors"], s["created"])' \
    "$WORK/import-$(basename "$1").out"
}
M0="$(mem)"
read -r OROWS OSECS OERR OCREATED < <(import "$WORK/data/orgs.csv")
M1="$(mem)"
read -r PROWS PSECS PERR PCREATED < <(import "$WORK/data/people.csv")
M2="$(mem)"
head -3 "$WORK/import-orgs.csv.err" "$WORK/import-people.csv.err" | tr '\r' '\n' | grep -v '^imported' >&2 || true
FEED_BYTES="$(redis-cli -p "$RPORT" MEMORY USAGE 'tz:log:{dir:feed}' SAMPLES 0 || echo 0)"
KEYS="$(redis-cli -p "$RPORT" DBSIZE)"
LOAD_MID="$(cut -d' ' -f1-3 /proc/loadavg)"
python3 benches/directory_scale.py "$BASE" "$RPORT" "$N" "$OUT.reads"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$OUT" <<PY
import json, sys
reads = json.load(open("$OUT.reads"))
s = {"profile": "$PROFILE", "load_before": "$LOAD_BEFORE", "load_after_import": "$LOAD_MID", "load_after": "$LOAD_AFTER",
     "orgs": {"rows": $OROWS, "seconds": $OSECS, "errors": $OERR, "created": $OCREATED, "rows_per_s": round($OROWS / max($OSECS, 1e-9)),
              "bytes_each": round(($M1 - $M0) / max($OCREATED, 1))},
     "people": {"rows": $PROWS, "seconds": $PSECS, "errors": $PERR, "created": $PCREATED, "rows_per_s": round($PROWS / max($PSECS, 1e-9)),
                "bytes_each": round(($M2 - $M1) / max($PCREATED, 1))},
     "feed_bytes": $FEED_BYTES, "redis_used_memory": $M2, "redis_keys": $KEYS, "batch": $BATCH, "reads": reads}
json.dump(s, open(sys.argv[1], "w"), ensure_ascii=False, indent=1)
o, p = s["orgs"], s["people"]
print(f"load average before / after import / after reads: {s['load_before']} / {s['load_after_import']} / {s['load_after']} ({s['profile']} build)")
print(f"organizations: {o['rows']} rows in {o['seconds']} s = {o['rows_per_s']} rows/s, {o['errors']} errors, {o['bytes_each']} bytes of Redis memory each")
print(f"people: {p['rows']} rows in {p['seconds']} s = {p['rows_per_s']} rows/s, {p['errors']} errors, {p['bytes_each']} bytes of Redis memory each (change feed: {s['feed_bytes']} bytes in all)")
print(f"Redis: {s['redis_used_memory']} bytes used, {s['redis_keys']} keys")
print()
print("| read (" + str(reads["people"]) + " people, " + str(reads["orgs"]) + " organizations) | status | p50 ms | p99 ms | store calls / request | KiB from Redis / request | response KiB |")
print("|---|---|---|---|---|---|---|")
for r in reads["rows"]:
    print(f"| {r['row']} | {r['status']}{' (' + str(r['unexpected']) + ' other)' if r['unexpected'] else ''} | {r['p50_ms']} | {r['p99_ms']} | {r['store_calls_per_req']} | {r['redis_kib_per_req']} | {r['response_kib']} |")
PY
echo "figures: $OUT" >&2
