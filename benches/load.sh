#!/usr/bin/env bash
# Loopback load test (issue 13): tongzheng's release build against benches/reference (the least
# axum + ring code that authenticates a client and signs an ES256 RFC 9068 JWT), each server
# pinned to core 0 with one worker thread, wrk on core 1. Every figure is a ratio to a rate
# measured in the same run, so it holds across machines. Self-contained and bounded: builds what
# it needs, starts and stops every process it starts, 127.0.0.1 only, DURATION s per row
# (default 6; the whole run takes under 3 minutes). Writes benches/RESULTS.md.
# OPTIMIZED=1 also measures the build the image ships (deploy/build.sh: target/optimized/tongzheng,
# the same code built with profile-guided optimization) in the same run: it takes its turn in the
# alternating client_credentials runs and serves the introspection, code, /healthz and Redis
# client_credentials rows again.
# Building it takes about 13 more minutes (two fat-LTO builds and their training);
# OPTIMIZED=reuse measures the build already there.
# wrk, not oha: code redemption needs a different single-use code in every request (wrk's Lua
# `request()` does it; oha sends one fixed body), and wrk is one small Debian package.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-6}"
CONNS="${CONNS:-16}"
need() { command -v "$1" >/dev/null || apt-get install -y -q "$2" >/dev/null || { echo "install $2" >&2; exit 1; }; }
need wrk wrk
need redis-server redis-server
need taskset util-linux
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
# The plain release build (`--bin tongzheng` alone). Built in the same command, the example would
# add the dev-dependencies' features to the shared ones (tokio's test-util: a lock on every
# clock read), so the measured binary would not be the one `cargo build --release` makes, and the two builds would
# replace each other's crate on every run; the reference gets a target directory of its own.
cargo build --release --locked -q --bin tongzheng
CARGO_TARGET_DIR="$PWD/target/reference" cargo build --release --locked -q --example reference
BIN="$PWD/target/release/tongzheng"
OPT_BIN="$PWD/target/optimized/tongzheng"
case "${OPTIMIZED:-}" in
  "") OPT_BIN="" ;;
  reuse) [ -x "$OPT_BIN" ] || { echo "OPTIMIZED=reuse: no $OPT_BIN (run deploy/build.sh)" >&2; exit 1; } ;;
  *) bash deploy/build.sh >&2 ;;
esac
REF="$PWD/target/reference/release/examples/reference"
# shellcheck source=benches/procs.sh
. benches/procs.sh

# start_tz CORES WORKERS [VAR=value ...]: a fresh tongzheng in dev mode; sets TZ and BASE.
start_tz() {
  local cores=$1 workers=$2; shift 2
  local port dir; port="$(free_port)"; dir="$(mktemp -d -p "$WORK")"
  (cd "$dir" && exec env TONGZHENG_SERVER__WORKERS="$workers" TONGZHENG_LOG=warn "${ON[@]}" "$@" \
    taskset -c "$cores" "${TZ_BIN:-$BIN}" serve --dev --listen "127.0.0.1:$port" >server.log 2>&1) &
  TZ=$!; SRV=$TZ; PIDS+=("$TZ"); BASE="http://127.0.0.1:$port"
  ready "$BASE/readyz"
}

# CPU time the process PID has used so far, ns: utime + stime of /proc/PID/stat, which keep the
# time of threads that have exited (the blocking pool's threads come and go). %.0f: mawk's %d stops at 2^31.
TICK_NS=$((1000000000 / $(getconf CLK_TCK)))
cpu_ns() { sed 's/.*) //' /proc/"$1"/stat | awk -v t="$TICK_NS" '{printf "%.0f", ($12 + $13) * t}'; }

# run NAME URL SCRIPT [SECONDS] -> "NAME|rps|p50|p99|non2xx|requests per CPU-second of $SRV"
# The per-CPU-second figure does not fall when other work shares the core (a loaded machine).
run() {
  local before after out; before="$(cpu_ns "$SRV")"
  out="$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${4:-$DURATION}s" --latency -s "$3" "$2")"
  after="$(cpu_ns "$SRV")"
  local rps p50 p99 bad n
  rps="$(awk '/Requests\/sec/{print $2}' <<<"$out")"
  p50="$(awk '$1=="50%"{print $2}' <<<"$out")"
  p99="$(awk '$1=="99%"{print $2}' <<<"$out")"
  bad="$(awk '/Non-2xx/{print $5}' <<<"$out")"
  n="$(awk '/requests in/{print $1}' <<<"$out")"
  echo "$1|$rps|$p50|$p99|${bad:-0}|$(python3 -c "print(f'{$n / max(($after - $before) / 1e9, 1e-9):.0f}')")"
}

REDIRECT="http://127.0.0.1:9000/callback"
post_lua "$WORK/cc.lua" "grant_type=client_credentials" "$ADMIN_BASIC"
json() { python3 -c "import sys,json;print(json.load(sys.stdin)$1)"; }
token() { curl -sf -u "$1" -d grant_type=client_credentials "$BASE/token" | json '["access_token"]'; }

# Auditing on and a rate limit checked on every request that never binds: the configuration
# every tongzheng figure is measured with.
# Password hashing at the production default priority (SCHED_IDLE; `--dev` picks normal).
ON=(TONGZHENG_RATE_LIMIT__DEFAULT_PER_SECOND=1000000 TONGZHENG_RATE_LIMIT__DEFAULT_BURST=1000000
  TONGZHENG_SECURITY__PASSWORD_HASH_PRIORITY=idle)

# --- Raw rates, one core (the denominators).
RAW_SIGN="$(taskset -c 0 "$REF" rate es256-sign --seconds 2)"
RAW_VERIFY="$(taskset -c 0 "$REF" rate es256-verify --seconds 2)"
RAW_RS256="$(taskset -c 0 "$REF" rate rs256-sign --seconds 2)"
RAW_ARGON="$(taskset -c 0 "$REF" rate argon2id --seconds 3)"

declare -A R # row name -> "rps|p50|p99|non2xx"
row() { local r; r="$(run "$@")"; R[$1]="${r#*|}"; }
rps() { cut -d"|" -f1 <<<"${R[$1]:-}"; }
cpu() { cut -d"|" -f5 <<<"${R[$1]:-}"; }

# --- The reference server.
PORT="$(free_port)"
(exec env WORKERS=1 taskset -c 0 "$REF" serve --listen "127.0.0.1:$PORT" >/dev/null 2>&1) &
REF_PID=$!; SRV=$REF_PID; PIDS+=("$REF_PID")
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.05; done
REF_AT="$(curl -sf -u admin-cli:admin-cli-secret-0123456789abcdef -d grant_type=client_credentials "http://127.0.0.1:$PORT/token" | json '["access_token"]')"
post_lua "$WORK/ref_introspect.lua" "token=$REF_AT" "$WEB_BASIC"
row "reference introspection" "http://127.0.0.1:$PORT/introspect" "$WORK/ref_introspect.lua"
# The HTTP floor: GET /healthz, a request with no work in it (3 s).
printf 'wrk.method = "GET"\n' >"$WORK/health.lua"
row "reference /healthz" "http://127.0.0.1:$PORT/healthz" "$WORK/health.lua" 3
REF_URL="http://127.0.0.1:$PORT"
# The ceilings of two targets on this stack (3 s each): the reference skipping a signature it
# verified before, and answering with two ES256 signatures and nothing else (no code looked up).
row "reference introspection, seen before" "$REF_URL/introspect-seen" "$WORK/ref_introspect.lua" 3
post_lua "$WORK/ref_code.lua" "grant_type=authorization_code&code=any" "$WEB_BASIC"
row "reference, two ES256 signatures" "$REF_URL/token" "$WORK/ref_code.lua" 3

# --- tongzheng, memory store, one core.
start_tz 0 1
AT="$(token demo-web:demo-web-secret-0123456789abcdef)"
ADMIN_AT="$(token admin-cli:admin-cli-secret-0123456789abcdef)"
post_lua "$WORK/introspect.lua" "token=$AT" "$WEB_BASIC"
admin() { curl -sf -H "Authorization: Bearer $ADMIN_AT" -H 'content-type: application/json' "$BASE/admin/v1/$1" -d "$2"; }
EXCH_SECRET="$(admin clients "{\"client_id\":\"exchanger\",\"grant_types\":[\"urn:ietf:params:oauth:grant-type:token-exchange\"],
  \"scope\":\"api.read\",\"token_exchange\":{\"issuers\":[\"$BASE\"],\"audiences\":[\"https://api.example.gov.cn\"]}}" | json '["client_secret"]')"
post_lua "$WORK/exchange.lua" "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=$AT&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&audience=https%3A%2F%2Fapi.example.gov.cn" "$(printf %s "exchanger:$EXCH_SECRET" | base64 -w0)"
es_client() { admin clients "{\"client_id\":\"bench-es256\",\"grant_types\":[\"authorization_code\"],\"scope\":\"openid\",
  \"redirect_uris\":[\"$REDIRECT\"],\"id_token_signed_response_alg\":\"ES256\"}" | json '["client_secret"]'; }
ES_SECRET="$(es_client)"

# The headline pair, client_credentials against the reference: both servers up (the idle one
# costs nothing), PAIRS alternating runs of each (default 5, DURATION/2 s each), the median
# kept, so a drift of the VM's speed between two rows a minute apart (10-15 % seen) does not
# make the ratio. The idle server shares core 0 but gets no requests.
median_row() { # NAME RUN_NAMES...: the run with the median requests/s becomes NAME
  local name=$1; shift
  local pick; pick="$(for r in "$@"; do echo "$(rps "$r") $r"; done | sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}' | cut -d' ' -f2-)"
  R[$name]="${R[$pick]}"
}
TZ_PID=$SRV; TZ_BASE=$BASE; CC_RUNS=(); REF_RUNS=(); OPT_RUNS=()
if [ -n "$OPT_BIN" ]; then TZ_BIN=$OPT_BIN start_tz 0 1; OPT_PID=$SRV; OPT_BASE=$BASE; BASE=$TZ_BASE; TZ=$TZ_PID; fi
for i in $(seq "${PAIRS:-5}"); do
  SRV=$REF_PID; row "reference client_credentials #$i" "$REF_URL/token" "$WORK/cc.lua" $(( (DURATION + 1) / 2 )); REF_RUNS+=("reference client_credentials #$i")
  SRV=$TZ_PID; row "client_credentials #$i" "$BASE/token" "$WORK/cc.lua" $(( (DURATION + 1) / 2 )); CC_RUNS+=("client_credentials #$i")
  if [ -n "$OPT_BIN" ]; then
    SRV=$OPT_PID; row "shipped client_credentials #$i" "$OPT_BASE/token" "$WORK/cc.lua" $(( (DURATION + 1) / 2 )); OPT_RUNS+=("shipped client_credentials #$i")
  fi
done
SRV=$TZ_PID
if [ -n "$OPT_BIN" ]; then stop "$OPT_PID"; median_row "shipped client_credentials" "${OPT_RUNS[@]}"; fi
stop "$REF_PID"
median_row "reference client_credentials" "${REF_RUNS[@]}"
median_row "client_credentials" "${CC_RUNS[@]}"
spread() { for r in "$@"; do rps "$r"; done | sort -n | paste -sd/ -; }
CC_SPREAD="$(spread "${CC_RUNS[@]}")"
REF_SPREAD="$(spread "${REF_RUNS[@]}")"
OPT_SPREAD="$([ ${#OPT_RUNS[@]} -eq 0 ] || spread "${OPT_RUNS[@]}")"
row "introspection (token seen before)" "$BASE/introspect" "$WORK/introspect.lua"
row "token exchange (RFC 8693)" "$BASE/token" "$WORK/exchange.lua"
row "/healthz" "$BASE/healthz" "$WORK/health.lua" 3

# Code redemption: collect single-use codes from /authorize for 3 s (procs.sh `codes`), then
# redeem each once for 2 s (less time than the pool lasts).
redeem() { # ROW CLIENT_ID BASIC
  local out="$WORK/codes-$2.txt"
  codes "$BASE" "$2" "$3" "$out"
  CODES[$1]="$(wc -l <"$out")"
  row "$1" "$BASE/token" "$WORK/redeem.lua" 2
}
declare -A CODES
redeem "code redemption, ES256 ID token" bench-es256 "$(printf %s "bench-es256:$ES_SECRET" | base64 -w0)"
redeem "code redemption, RS256 ID token" demo-web "$WEB_BASIC"

# Login storm: 64 users log in at once, over and over, while client_credentials load runs.
# Each user is made with a retry (making one hashes its password, and a full hashing queue answers
# 503): a user that is missing fails every one of its logins and trips the guessing guard.
storm_user() {
  for _ in 1 2 3 4 5; do admin users "{\"username\":\"storm$1\",\"password\":\"storm-password\"}" >/dev/null && return 0; sleep 0.5; done
  echo "storm$1 could not be made" >&2
}
MADE=()
for i in $(seq 0 63); do storm_user "$i" & MADE+=($!); done
for p in "${MADE[@]}"; do wait "$p" || true; done
# The login driver is load generation: it runs on wrk's core, never on the server's (unpinned, its
# 64 threads took CPU from the server they were measuring), niced so that wrk, which times the
# token requests, is not kept waiting behind it on that core.
taskset -c 1 nice -n 10 python3 benches/logins.py "$BASE" demo-web "$REDIRECT" storm storm-password 64 "$DURATION" >"$WORK/storm.txt" &
STORM=$!
row "client_credentials during the login storm" "$BASE/token" "$WORK/cc.lua"
wait "$STORM"
read -r LOGIN_OK LOGIN_FAILED LOGIN_RATE <"$WORK/storm.txt"
stop "$TZ"

# Every introspection verifies (the cache off): what a never-seen token costs.
start_tz 0 1 TONGZHENG_TOKENS__VERIFIED_CACHE_ENTRIES=0
AT="$(token demo-web:demo-web-secret-0123456789abcdef)"
post_lua "$WORK/introspect.lua" "token=$AT" "$WEB_BASIC"
row "introspection (cache off: every token verified)" "$BASE/introspect" "$WORK/introspect.lua"
stop "$TZ"
# Issue 4's budget: auditing and rate limiting cost at most 10 % of token throughput.
start_tz 0 1 TONGZHENG_AUDIT__ENABLED=false TONGZHENG_RATE_LIMIT__ENABLED=false
row "client_credentials, audit + rate limit off" "$BASE/token" "$WORK/cc.lua"
stop "$TZ"
# Two cores (wrk shares the second).
start_tz 0,1 2
row "client_credentials, server on two cores" "$BASE/token" "$WORK/cc.lua"
stop "$TZ"

# --- tongzheng, Redis store (a real redis-server on loopback, on wrk's core).
RPORT="$(free_port)"
(exec taskset -c 1 redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1) &
REDIS=$!; PIDS+=("$REDIS")
for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
start_tz 0 1 TONGZHENG_STORE__BACKEND=redis TONGZHENG_STORE__REDIS_URL="redis://127.0.0.1:$RPORT"
AT="$(token demo-web:demo-web-secret-0123456789abcdef)"
post_lua "$WORK/introspect.lua" "token=$AT" "$WEB_BASIC"
row "client_credentials, Redis store" "$BASE/token" "$WORK/cc.lua"
row "introspection (token seen before), Redis store" "$BASE/introspect" "$WORK/introspect.lua"
stop "$TZ"
if [ -n "$OPT_BIN" ]; then
  # An empty store: a dev-mode server seals its key set under a key-encryption key of its own
  # working directory, and refuses one sealed under another's.
  redis-cli -p "$RPORT" flushall >/dev/null
  TZ_BIN=$OPT_BIN start_tz 0 1 TONGZHENG_STORE__BACKEND=redis TONGZHENG_STORE__REDIS_URL="redis://127.0.0.1:$RPORT"
  row "shipped client_credentials, Redis store" "$BASE/token" "$WORK/cc.lua"
  stop "$TZ"
fi
stop "$REDIS"

# --- The shipped build (OPTIMIZED=1), memory store, one core: the rows it is for, on a server of its own.
if [ -n "$OPT_BIN" ]; then
  TZ_BIN=$OPT_BIN start_tz 0 1
  AT="$(token demo-web:demo-web-secret-0123456789abcdef)"
  ADMIN_AT="$(token admin-cli:admin-cli-secret-0123456789abcdef)"
  post_lua "$WORK/introspect.lua" "token=$AT" "$WEB_BASIC"
  ES_SECRET="$(es_client)"
  row "shipped introspection (token seen before)" "$BASE/introspect" "$WORK/introspect.lua"
  row "shipped /healthz" "$BASE/healthz" "$WORK/health.lua" 3
  redeem "shipped code redemption, ES256 ID token" bench-es256 "$(printf %s "bench-es256:$ES_SECRET" | base64 -w0)"
  stop "$TZ"
fi
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

ratio() { python3 -c "a,b=float('$1' or 0),float('$2' or 0); print(f'{a/b:.2f}' if b else 'n/a')"; }
line() { # NAME VALUE DENOM_NAME DENOM TARGET [VALUE_PER_CPU DENOM_PER_CPU]
  echo "| $1 | $2 | $3 | $4 | **$(ratio "$2" "$4")** | $(ratio "${6:-}" "${7:-}") | $5 |"
}
# A row against a row (both per CPU-second too), and a row against a raw rate (already per CPU-second).
rr() { line "$1" "$(rps "$2")" "$3" "$(rps "$4")" "$5" "$(cpu "$2")" "$(cpu "$4")"; }
rw() { line "$1" "$(rps "$2")" "$3" "$4" "$5" "$(cpu "$2")" "$4"; }
{
  echo "# Load test results"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)."
  echo "Load average before / after the run: $LOAD_BEFORE / $LOAD_AFTER (anything well above 0 means other work shared the cores)."
  echo "Each server: release build, one worker thread pinned to core 0; wrk (1 thread, $CONNS connections) on core 1;"
  echo "$DURATION s per row, loopback. tongzheng: \`serve --dev\`, auditing on, rate limit checked on every request."
  echo "The per-CPU-second ratios divide requests by the CPU time the server process used, and the raw rates are per"
  echo "second of CPU time too: they hold when other work shares the cores; on a quiet machine the two ratios agree."
  echo "Raw single-core rates, same run: ES256 sign $RAW_SIGN/s, ES256 verify $RAW_VERIFY/s, RS256 sign $RAW_RS256/s, argon2id (19 MiB, t=2) $RAW_ARGON/s."
  echo
  echo "| figure | requests/s | divided by | of | ratio | ratio per server CPU-second | target |"
  echo "|---|---|---|---|---|---|---|"
  rr "client_credentials (memory store)" "client_credentials" "reference server" "reference client_credentials" ">= 0.9"
  rw "introspection, token seen before" "introspection (token seen before)" "raw ES256 verify" "$RAW_VERIFY" ">= 3"
  rw "ceiling: the reference's introspection, signature verified before" "reference introspection, seen before" "raw ES256 verify" "$RAW_VERIFY" "(bounds the 3)"
  rr "introspection, every token verified (cache off)" "introspection (cache off: every token verified)" "reference introspection" "reference introspection" "(a never-seen token)"
  rr "client_credentials, Redis store" "client_credentials, Redis store" "memory store" "client_credentials" ">= 0.8"
  rw "introspection, Redis store, seen before" "introspection (token seen before), Redis store" "raw ES256 verify" "$RAW_VERIFY" ""
  rw "code redemption, ES256 ID token (${CODES["code redemption, ES256 ID token"]:-0} codes)" "code redemption, ES256 ID token" "raw ES256 sign" "$RAW_SIGN" ">= 0.4"
  rw "ceiling: the reference answering with two ES256 signatures" "reference, two ES256 signatures" "raw ES256 sign" "$RAW_SIGN" "(bounds the 0.4)"
  rw "code redemption, RS256 ID token (${CODES["code redemption, RS256 ID token"]:-0} codes)" "code redemption, RS256 ID token" "raw RS256 sign" "$RAW_RS256" "(reported)"
  rr "client_credentials during 64 concurrent logins" "client_credentials during the login storm" "client_credentials alone" "client_credentials" ">= 0.5"
  line "logins/s during the storm ($LOGIN_OK ok, $LOGIN_FAILED failed)" "$LOGIN_RATE" "raw argon2id" "$RAW_ARGON" "(reported)"
  rr "client_credentials, server on two cores" "client_credentials, server on two cores" "one core" "client_credentials" "(per-core figure)"
  rr "client_credentials, audit + rate limit on" "client_credentials" "both off" "client_credentials, audit + rate limit off" ">= 0.9 (issue 4)"
  rr "HTTP floor: /healthz" "/healthz" "reference /healthz" "reference /healthz" "(reported)"
  if [ -n "$OPT_BIN" ]; then
    rr "shipped build: client_credentials" "shipped client_credentials" "reference server" "reference client_credentials" ">= 0.9"
    rr "shipped build: client_credentials, against the cargo build" "shipped client_credentials" "cargo build" "client_credentials" "(PGO's gain)"
    rr "shipped build: client_credentials, Redis store" "shipped client_credentials, Redis store" "shipped, memory store" "shipped client_credentials" ">= 0.8"
    rw "shipped build: introspection, token seen before" "shipped introspection (token seen before)" "raw ES256 verify" "$RAW_VERIFY" ">= 3"
    rw "shipped build: code redemption, ES256 ID token (${CODES["shipped code redemption, ES256 ID token"]:-0} codes)" "shipped code redemption, ES256 ID token" "raw ES256 sign" "$RAW_SIGN" ">= 0.4"
    rr "shipped build: HTTP floor: /healthz" "shipped /healthz" "reference /healthz" "reference /healthz" "(reported)"
  fi
  echo
  echo "client_credentials runs (requests/s, sorted; the median is the row): tongzheng $CC_SPREAD, reference $REF_SPREAD${OPT_SPREAD:+, shipped build $OPT_SPREAD}."
  [ -z "$OPT_BIN" ] || echo "The shipped build's rows: deploy/build.sh's build of the same commit (target/optimized/tongzheng: profile-guided from a run of the load rows), what the image ships; the other tongzheng rows are the plain cargo build."
  echo
  echo "Token endpoint p99 during the login storm: $(cut -d'|' -f3 <<<"${R["client_credentials during the login storm"]:-}") (target < 5 ms)."
  echo
  echo "| row | requests/s | p50 | p99 | non-2xx | requests per server CPU-second |"
  echo "|---|---|---|---|---|---|"
  for k in "reference client_credentials" "reference introspection" "reference introspection, seen before" \
    "reference, two ES256 signatures" "reference /healthz" "client_credentials" "/healthz" "introspection (token seen before)" \
    "introspection (cache off: every token verified)" "token exchange (RFC 8693)" "code redemption, ES256 ID token" \
    "code redemption, RS256 ID token" "client_credentials during the login storm" "client_credentials, audit + rate limit off" \
    "client_credentials, server on two cores" "client_credentials, Redis store" "introspection (token seen before), Redis store" \
    ${OPT_BIN:+"shipped client_credentials" "shipped client_credentials, Redis store" "shipped introspection (token seen before)" "shipped /healthz" "shipped code redemption, ES256 ID token"}; do
    IFS='|' read -r r p50 p99 bad c <<<"${R[$k]:-||||}"
    echo "| $k | $r | $p50 | $p99 | $bad | $c |"
  done
} | tee benches/RESULTS.md
