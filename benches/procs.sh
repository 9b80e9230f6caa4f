# Sourced by the bench scripts (load.sh, profile.sh, directory_scale.sh): a scratch directory
# ($WORK) and the processes they start ($PIDS), stopped and removed on exit (KEEP=1 keeps the
# directory); a free loopback port; stopping one process; waiting until a URL answers
# (READY_TRIES x 0.1 s, default 15 s).
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
