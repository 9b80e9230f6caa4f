#!/usr/bin/env bash
# Times what a new integrator does first: git clone -> cargo build --release -> serve --dev ->
# a scripted login through the example application (deploy/first-login.sh), and reports each
# step and the release binary's size. Needs git, cargo, curl; ports 8080 and 9000 free.
# Usage: deploy/clone-to-login.sh [REPOSITORY [BRANCH]]   (default: this checkout's repository)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
repo=${1:-$here}
branch=${2:-$(git -C "$here" rev-parse --abbrev-ref HEAD)}
work=$(mktemp -d)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
now() { date +%s.%N; }
t0=$(now)
git clone -q --branch "$branch" "$repo" "$work/tongzheng"
t1=$(now)
cd "$work/tongzheng"
cargo build --release --locked --bin tongzheng 2>"$work/build.log" || { tail -20 "$work/build.log"; exit 1; }
t2=$(now)
./target/release/tongzheng serve --dev >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null http://127.0.0.1:9000/ 2>/dev/null && curl -fsS -o /dev/null http://127.0.0.1:8080/healthz 2>/dev/null && break
  sleep 0.1
done
t3=$(now)
deploy/first-login.sh http://127.0.0.1:9000
t4=$(now)
size=$(stat -c %s target/release/tongzheng)
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
echo "clone:         $(secs "$t0" "$t1") s"
echo "release build: $(secs "$t1" "$t2") s"
echo "start:         $(secs "$t2" "$t3") s"
echo "login:         $(secs "$t3" "$t4") s"
echo "total:         $(secs "$t0" "$t4") s (git clone to a finished login)"
echo "binary:        $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }') MiB, stripped: $(file -b target/release/tongzheng | grep -o 'stripped\|not stripped' || echo '?'))"
