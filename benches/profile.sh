#!/usr/bin/env bash
# One row of load.sh, measured alone and optionally profiled (issue 13): the release build of
# tongzheng (or the reference server) pinned to core 0 with one worker, wrk on core 1, and the
# requests per CPU-second of the server process, which hold when other work shares the cores.
#   benches/profile.sh ROW   ROW: cc | intro | code | health | redis-cc | redis-intro | redis-code | ref-cc | ref-intro | ref-health
#                            | ref-code | ref-intro-seen (the reference's ceilings: two signatures per
#                            answer; introspection skipping a signature verified before)
#                            (health: GET /healthz, the HTTP floor: a request with no work in it)
#                            (code: redemption of single-use codes with an ES256 ID token; DURATION
#                            at most 4 s, or the codes run out)
#   PERF=1 benches/profile.sh cc     also records `perf record` with call graphs into target/perf-ROW.data
#                                    (CALLGRAPH=dwarf FREQ=499 for stacks through code built without
#                                    frame pointers)
#                                    (read it with `perf report --no-children -i ...`)
#   STAT=1 benches/profile.sh cc     also counts, per request, libc malloc calls (a uprobe:
#                                    `perf probe -x /lib/x86_64-linux-gnu/libc.so.6 malloc` once),
#                                    syscalls and context switches: figures that do not move when
#                                    other work shares the cores (the CPU figure is inflated then);
#                                    STAT_EVENTS=a,b,... counts other events (the malloc uprobe traps
#                                    into the kernel on every call: with it on, the CPU figures of a
#                                    glibc-malloc server such as the reference mean nothing)
#   SHOW=1 benches/profile.sh code   also prints wrk's whole report (latency distribution, slowest)
# DURATION (default 6) seconds; EXTRA_ENV="VAR=value ..." is passed to tongzheng; BIN=path runs
# another tongzheng binary (an earlier build, for before/after); PRELOAD=path sets LD_PRELOAD
# (e.g. /usr/lib/x86_64-linux-gnu/libjemalloc.so.2, to compare allocators). Bounded:
# every process it starts is stopped on exit. Build first with
#   CARGO_PROFILE_RELEASE_STRIP=false cargo build --release --bin tongzheng
#   CARGO_TARGET_DIR=target/reference cargo build --release --example reference
# (symbols for perf, the shipped profile strips them; the reference apart, as load.sh builds it:
# its dev-dependencies would change the server's features).
set -euo pipefail
cd "$(dirname "$0")/.."
ROW="${1:?usage: benches/profile.sh cc|intro|code|health|redis-cc|redis-intro|redis-code|ref-cc|ref-intro|ref-health|ref-code|ref-intro-seen}"
DURATION="${DURATION:-6}"
BIN="${BIN:-$PWD/target/release/tongzheng}"
REF="$PWD/target/reference/release/examples/reference"
# shellcheck source=benches/procs.sh
. benches/procs.sh
post_lua "$WORK/cc.lua" "grant_type=client_credentials" "$ADMIN_BASIC"
PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
STORE=()
case "$ROW" in
  redis-*)
    RPORT="$(free_port)"
    (exec taskset -c 1 redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1) &
    PIDS+=($!)
    for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
    STORE=(TONGZHENG_STORE__BACKEND=redis TONGZHENG_STORE__REDIS_URL="redis://127.0.0.1:$RPORT") ;;
esac
case "$ROW" in
  ref-*) (exec env WORKERS=1 taskset -c 0 "$REF" serve --listen "127.0.0.1:$PORT" >/dev/null 2>&1) & ;;
  *) # shellcheck disable=SC2086
    (cd "$WORK" && exec env TONGZHENG_SERVER__WORKERS=1 TONGZHENG_LOG=warn TONGZHENG_RATE_LIMIT__DEFAULT_PER_SECOND=1000000 \
      TONGZHENG_RATE_LIMIT__DEFAULT_BURST=1000000 "${STORE[@]}" ${EXTRA_ENV:-} taskset -c 0 env ${PRELOAD:+LD_PRELOAD=$PRELOAD} "$BIN" serve --dev \
      --listen "127.0.0.1:$PORT" >server.log 2>&1) & ;;
esac
SRV=$!; PIDS+=("$SRV")
for _ in $(seq 150); do curl -s -o /dev/null "$BASE/" && break; sleep 0.1; done
URL="$BASE/token"; SCRIPT="$WORK/cc.lua"
case "$ROW" in
  *intro|*intro-seen)
    AT="$(curl -sf -u demo-web:demo-web-secret-0123456789abcdef -d grant_type=client_credentials "$BASE/token" |
      python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')"
    post_lua "$WORK/intro.lua" "token=$AT" "$WEB_BASIC"; URL="$BASE/introspect"; SCRIPT="$WORK/intro.lua"
    [ "$ROW" = ref-intro-seen ] && URL="$BASE/introspect-seen" ;;
  ref-code) post_lua "$WORK/refcode.lua" "grant_type=authorization_code&code=any" "$WEB_BASIC"; SCRIPT="$WORK/refcode.lua" ;;
  *health) printf 'wrk.method = "GET"\n' >"$WORK/health.lua"; URL="$BASE/healthz"; SCRIPT="$WORK/health.lua" ;;
  *code)
    ADMIN_AT="$(curl -sf -u admin-cli:admin-cli-secret-0123456789abcdef -d grant_type=client_credentials "$BASE/token" |
      python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')"
    SECRET="$(curl -sf -H "Authorization: Bearer $ADMIN_AT" -H 'content-type: application/json' "$BASE/admin/v1/clients" \
      -d '{"client_id":"bench-es256","grant_types":["authorization_code"],"scope":"openid",
        "redirect_uris":["http://127.0.0.1:9000/callback"],"id_token_signed_response_alg":"ES256"}' |
      python3 -c 'import sys,json;print(json.load(sys.stdin)["client_secret"])')"
    codes "$BASE" bench-es256 "$(printf %s "bench-es256:$SECRET" | base64 -w0)" "$WORK/codes.txt"
    SCRIPT="$WORK/redeem.lua" ;;
esac
TICK_NS=$((1000000000 / $(getconf CLK_TCK)))
cpu_ns() { sed 's/.*) //' /proc/"$1"/stat | awk -v t="$TICK_NS" '{printf "%.0f", ($12 + $13) * t}'; }
user_ns() { sed 's/.*) //' /proc/"$1"/stat | awk -v t="$TICK_NS" '{printf "%.0f", $12 * t}'; }
case "$ROW" in code|redis-code) ;; *) taskset -c 1 wrk -t1 -c16 -d2s -s "$SCRIPT" "$URL" >/dev/null ;; esac # warm-up (codes are single-use)
if [ -n "${STAT:-}" ]; then
  perf stat -x, -e ${STAT_EVENTS:-probe_libc:malloc,raw_syscalls:sys_enter,sched:sched_switch} -p "$SRV" -o "$WORK/stat.txt" \
    -- sleep "$DURATION" >/dev/null 2>&1 &
  PERF_PID=$!
fi
if [ -n "${PERF:-}" ]; then
  perf record -F "${FREQ:-2999}" --call-graph "${CALLGRAPH:-fp}" -p "$SRV" -o "target/perf-$ROW.data" -- sleep "$DURATION" >/dev/null 2>&1 &
  PERF_PID=$!
fi
before="$(cpu_ns "$SRV")"; ubefore="$(user_ns "$SRV")"
out="$(taskset -c 1 wrk -t1 -c16 -d"${DURATION}s" --latency -s "$SCRIPT" "$URL")"
after="$(cpu_ns "$SRV")"; uafter="$(user_ns "$SRV")"
[ -n "${SHOW:-}" ] && echo "$out" # wrk's whole report (latency distribution)
if [ -n "${PERF:-}${STAT:-}" ]; then wait "$PERF_PID" || true; fi
if [ -n "${STAT:-}" ]; then
  awk -F, -v n="$(awk '/requests in/{print $1}' <<<"$out")" '/probe|sys_enter|sched|fault|migrat/{printf "%s per request: %.1f\n", $3, $1 / n}' "$WORK/stat.txt"
fi
n="$(awk '/requests in/{print $1}' <<<"$out")"
rps="$(awk '/Requests\/sec/{print $2}' <<<"$out")"
bad="$(awk '/Non-2xx/{print $5}' <<<"$out")"
# User time apart: the system part holds the loopback's wake-up of the load generator, which
# grows as the server slows (on this VM an idle vCPU halts at once) and drifts the most.
python3 -c "n,ns,us=$n,$after-$before,$uafter-$ubefore; print(f'$ROW: {float(\"$rps\"):.0f} req/s, non-2xx ${bad:-0}, {n/(ns/1e9):.0f} req per server CPU-second, {ns/1e3/n:.1f} us CPU per request ({us/1e3/n:.1f} user)')"
