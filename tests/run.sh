#!/usr/bin/env bash
# The README's test command: installs what the tests need when it is missing (redis-server,
# Chromium and ChromeDriver, a C compiler for `ring`; Debian packages), then runs every test
# target. Extra arguments go to `cargo test`, e.g. `tests/run.sh --test it store`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
# A CJK font, so the browser test's screenshots of the zh-CN pages are readable.
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)

if [ "${#missing[@]}" -gt 0 ]; then
  echo "tests/run.sh: installing ${missing[*]}"
  # sudo resets the environment, so DEBIAN_FRONTEND goes through `env` (no prompts, no stdin).
  apt=(env DEBIAN_FRONTEND=noninteractive apt-get)
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "tests/run.sh: need root or sudo to install ${missing[*]}; install them and rerun" >&2
      exit 1
    fi
    apt=(sudo "${apt[@]}")
  fi
  "${apt[@]}" update -q
  "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi

# Every temporary file of the run (the servers' data, the redis-servers', the browsers' profiles)
# goes under one directory, removed when the run ends; left in /tmp, a day of runs made 25,000.
scratch="$(mktemp -d "${TMPDIR:-/tmp}/tongzheng-tests.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
TMPDIR="$scratch" cargo test --locked "$@"
