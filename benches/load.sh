#!/usr/bin/env bash
# Loopback load test of a release build: client_credentials, code redemption and introspection
# with wrk, the server pinned to core 0 (one worker thread), wrk pinned to core 1. Each figure
# is also given as a ratio to the raw single-core ES256 signing rate measured in the same run.
# Bounded: DURATION seconds per endpoint (default 10), 127.0.0.1 only. Writes benches/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10}"
CONNS="${CONNS:-16}"
command -v wrk >/dev/null || { apt-get install -y -q wrk >/dev/null || { echo "install wrk" >&2; exit 1; }; }
cargo build --release -q
BIN="$PWD/target/release/tongzheng"
WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
cleanup() { [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# start_server [VAR=value ...]: (re)starts the server on core 0 with extra environment.
start_server() {
  if [ -n "${SERVER:-}" ]; then kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; fi
  (cd "$WORK" && exec env TONGZHENG_SERVER__WORKERS=1 TONGZHENG_LOG=warn "$@" taskset -c 0 "$BIN" serve --dev --listen "127.0.0.1:$PORT" >>server.log 2>&1) &
  SERVER=$!
  for _ in $(seq 100); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.1; done
}

SIGN_RATE="$(taskset -c 0 "$BIN" bench-sign --seconds 3)"
# Auditing on and a rate limit that is checked on every request but never binds (the GCRA
# runs; nobody is refused): the configuration the main figures are measured with.
ON=(TONGZHENG_RATE_LIMIT__DEFAULT_PER_SECOND=1000000 TONGZHENG_RATE_LIMIT__DEFAULT_BURST=1000000)
OFF=(TONGZHENG_AUDIT__ENABLED=false TONGZHENG_RATE_LIMIT__ENABLED=false)
start_server "${ON[@]}"

ADMIN_BASIC="$(printf %s 'admin-cli:admin-cli-secret-0123456789abcdef' | base64 -w0)"
WEB_BASIC="$(printf %s 'demo-web:demo-web-secret-0123456789abcdef' | base64 -w0)"
REDIRECT="http://127.0.0.1:9000/callback"

# Log in once (cookie jar), so /authorize answers with a code at once (SSO).
JAR="$WORK/jar"
AUTHZ="$BASE/authorize?response_type=code&client_id=demo-web&redirect_uri=$REDIRECT&scope=openid"
LOGIN="$(curl -s -c "$JAR" -b "$JAR" -o /dev/null -w '%{redirect_url}' "$AUTHZ")"
PAGE="$(curl -s -c "$JAR" -b "$JAR" "$LOGIN")"
REQ="$(sed -n 's/.*name="req" value="\([^"]*\)".*/\1/p' <<<"$PAGE")"
CSRF="$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' <<<"$PAGE")"
curl -s -c "$JAR" -b "$JAR" -o /dev/null --data-urlencode "req=$REQ" --data-urlencode "csrf=$CSRF" -d username=demo -d password=demo-password "$BASE/login"
COOKIE="$(awk '$6=="tz_session"{print "tz_session="$7}' "$JAR")"

cat >"$WORK/cc.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $ADMIN_BASIC"
LUA
AT="$(curl -s -u demo-web:demo-web-secret-0123456789abcdef -d grant_type=client_credentials "$BASE/token" | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')"
cat >"$WORK/introspect.lua" <<LUA
wrk.method = "POST"
wrk.body = "token=$AT"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $WEB_BASIC"
LUA
# Token exchange (RFC 8693): a client allowed to exchange this platform's tokens for one API.
ADMIN_AT="$(curl -s -u admin-cli:admin-cli-secret-0123456789abcdef -d grant_type=client_credentials "$BASE/token" | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')"
EXCH_SECRET="$(curl -s -H "Authorization: Bearer $ADMIN_AT" -H 'content-type: application/json' "$BASE/admin/v1/clients" -d "{
  \"client_id\":\"exchanger\",\"grant_types\":[\"urn:ietf:params:oauth:grant-type:token-exchange\"],\"scope\":\"api.read\",
  \"token_exchange\":{\"issuers\":[\"$BASE\"],\"audiences\":[\"https://api.example.gov.cn\"]}}" | python3 -c 'import sys,json;print(json.load(sys.stdin)["client_secret"])')"
EXCH_BASIC="$(printf %s "exchanger:$EXCH_SECRET" | base64 -w0)"
cat >"$WORK/exchange.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=$AT&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&audience=https%3A%2F%2Fapi.example.gov.cn"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $EXCH_BASIC"
LUA
# Phase 1 collects single-use codes from SSO redirects; phase 2 redeems each once.
cat >"$WORK/codes.lua" <<LUA
wrk.headers["Cookie"] = "$COOKIE"
local out = io.open("$WORK/codes.txt", "a")
function response(status, headers, body)
  local loc = headers["Location"] or headers["location"] or ""
  local code = loc:match("code=([^&]+)")
  if code then out:write(code, "\n") end
end
LUA
cat >"$WORK/redeem.lua" <<LUA
local codes = {}
for line in io.lines("$WORK/codes.txt") do codes[#codes + 1] = line end
local i = 0
request = function()
  i = i + 1
  local code = codes[i] or "exhausted"
  return wrk.format("POST", "/token", {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "Basic $WEB_BASIC"},
    "grant_type=authorization_code&redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcallback&code=" .. code)
end
LUA

run() { # name url script -> "rps p50 p99 non2xx"
  local out
  out="$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$2" --latency -s "$4" "$3")"
  local rps p50 p99 bad
  rps="$(awk '/Requests\/sec/{print $2}' <<<"$out")"
  p50="$(awk '$1=="50%"{print $2}' <<<"$out")"
  p99="$(awk '$1=="99%"{print $2}' <<<"$out")"
  bad="$(awk '/Non-2xx/{print $5}' <<<"$out")"
  echo "$1|$rps|$p50|$p99|${bad:-0}"
}

ROWS=()
ROWS+=("$(run "client_credentials POST /token" "${DURATION}s" "$BASE/token" "$WORK/cc.lua")")
ROWS+=("$(run "introspection POST /introspect" "${DURATION}s" "$BASE/introspect" "$WORK/introspect.lua")")
ROWS+=("$(run "token exchange (RFC 8693) POST /token" "${DURATION}s" "$BASE/token" "$WORK/exchange.lua")")
: >"$WORK/codes.txt"
taskset -c 1 wrk -t1 -c"$CONNS" -d3s -s "$WORK/codes.lua" "$AUTHZ" >/dev/null
NCODES="$(wc -l <"$WORK/codes.txt")"
# Redeem for a bit less time than the pool lasts at the measured authorize rate.
ROWS+=("$(run "code redemption POST /token ($NCODES codes)" "2s" "$BASE/token" "$WORK/redeem.lua")")
# Issue 4's budget: auditing and rate limiting cost at most 10 % of token throughput. Off and on
# alternate twice so drift between runs shows; each is a fresh server.
CMP=()
for round in 1 2; do
  start_server "${OFF[@]}"
  CMP+=("$(run "client_credentials, audit + rate limit OFF (run $round)" "${DURATION}s" "$BASE/token" "$WORK/cc.lua")")
  start_server "${ON[@]}"
  CMP+=("$(run "client_credentials, audit + rate limit ON (run $round)" "${DURATION}s" "$BASE/token" "$WORK/cc.lua")")
done

{
  echo "# Load test results"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)."
  echo "Server: release build, dev mode (memory store), one worker thread pinned to core 0; wrk on core 1,"
  echo "$CONNS connections, loopback. Raw single-core ES256 signing rate (same run): **$SIGN_RATE/s**."
  echo
  echo "| endpoint | requests/s | ratio to raw ES256 signing | p50 | p99 | non-2xx |"
  echo "|---|---|---|---|---|---|"
  for r in "${ROWS[@]}" "${CMP[@]}"; do
    IFS='|' read -r name rps p50 p99 bad <<<"$r"
    ratio="$(python3 -c "print(f'{float(\"$rps\")/float(\"$SIGN_RATE\"):.2f}')")"
    echo "| $name | $rps | $ratio | $p50 | $p99 | $bad |"
  done
  echo
  python3 - "${CMP[@]}" <<'PY'
import sys
rows = [r.split("|") for r in sys.argv[1:]]
off = [float(r[1]) for r in rows if "OFF" in r[0]]
on = [float(r[1]) for r in rows if " ON " in r[0]]
o, n = sum(off) / len(off), sum(on) / len(on)
print(f"Audit + rate limiting: {n:.0f} req/s on vs {o:.0f} req/s off (mean of two runs each): "
      f"{(n / o - 1) * 100:+.1f} % (budget: within 10 %).")
PY
} | tee benches/RESULTS.md
