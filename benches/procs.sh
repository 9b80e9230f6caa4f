# Sourced by the bench scripts (load.sh, profile.sh, instructions.sh, directory_scale.sh): a
# scratch directory ($WORK) and the processes they start ($PIDS), stopped and removed on exit
# (KEEP=1 keeps the directory); a free loopback port; stopping one process; waiting until a URL
# answers (READY_TRIES x 0.1 s, default 15 s); wrk scripts that post a form with Basic
# credentials, and the demo clients' credentials.
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
ready() {
  for _ in $(seq "${READY_TRIES:-150}"); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "not ready: $1" >&2
  exit 1
}
# codes BASE CLIENT_ID BASIC OUT: logs the demo user in once (SSO cookie), collects single-use
# codes from /authorize for CLIENT_ID for 3 s into OUT (one per line, wrk on core 1, CONNS
# connections), and writes $WORK/redeem.lua, which redeems each of them once at /token.
codes() {
  local base=$1 client=$2 basic=$3 out=$4 jar="$WORK/jar" redirect="http://127.0.0.1:9000/callback"
  local login page req csrf cookie
  login="$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' \
    "$base/authorize?response_type=code&client_id=demo-web&redirect_uri=$redirect&scope=openid")"
  page="$(curl -s -c "$jar" -b "$jar" "$login")"
  req="$(sed -n 's/.*name="req" value="\([^"]*\)".*/\1/p' <<<"$page")"
  csrf="$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' <<<"$page")"
  curl -s -c "$jar" -b "$jar" -o /dev/null --data-urlencode "req=$req" --data-urlencode "csrf=$csrf" \
    -d username=demo -d password=demo-password "$base/login"
  cookie="$(awk '$6=="tz_session"{print "tz_session="$7}' "$jar")"
  : >"$out"
  printf 'wrk.headers["Cookie"] = "%s"\nlocal out = io.open("%s", "a")\nfunction response(status, headers, body)\n  local loc = headers["Location"] or headers["location"] or ""\n  local code = loc:match("code=([^&]+)")\n  if code then out:write(code, "\\n") end\nend\n' "$cookie" "$out" >"$WORK/codes.lua"
  taskset -c 1 wrk -t1 -c"${CONNS:-16}" -d3s -s "$WORK/codes.lua" \
    "$base/authorize?response_type=code&client_id=$client&redirect_uri=$redirect&scope=openid" >/dev/null
  cat >"$WORK/redeem.lua" <<LUA
local codes = {}
for line in io.lines("$out") do codes[#codes + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/token", {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "Basic $basic"},
    "grant_type=authorization_code&redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcallback&code=" .. (codes[i] or "exhausted"))
end
LUA
}
# post_lua FILE BODY BASIC: a wrk script that posts BODY as a form with Basic credentials BASIC.
post_lua() { # FILE BODY BASIC
  printf 'wrk.method = "POST"\nwrk.body = "%s"\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\nwrk.headers["Authorization"] = "Basic %s"\n' "$2" "$3" >"$1"
}
# The Basic credentials of two clients `serve --dev` seeds.
ADMIN_BASIC="$(printf %s 'admin-cli:admin-cli-secret-0123456789abcdef' | base64 -w0)"
WEB_BASIC="$(printf %s 'demo-web:demo-web-secret-0123456789abcdef' | base64 -w0)"
