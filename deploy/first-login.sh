#!/usr/bin/env bash
# A scripted first login through the example application of `tongzheng serve --dev` (HL-5.3):
# open the protected page, follow the redirects to the platform's login page, post the demo
# credentials, follow the code back to the application, and check it greets the demo user.
# Usage: deploy/first-login.sh [APP_URL]   (default http://127.0.0.1:9000)
set -euo pipefail
app=${1:-http://127.0.0.1:9000}
jar=$(mktemp); trap 'rm -f "$jar"' EXIT
# 1. The protected page -> /authorize -> the login page (curl follows the 303s, keeps cookies).
page=$(curl -sS -L -c "$jar" -b "$jar" -w '\n%{url_effective}' "$app/protected")
login_url=$(tail -n1 <<<"$page")
case $login_url in */login*) ;; *) echo "expected the login page, got $login_url" >&2; exit 1;; esac
field() { grep -o "name=\"$1\" value=\"[^\"]*\"" <<<"$page" | head -n1 | sed 's/.*value="//; s/"$//; s/&amp;/\&/g'; }
origin=${login_url%%/login*}
# 2. Post the credentials; the platform redirects with a code to the application's callback,
#    whose backend redeems it and sends the browser back to the remembered page.
done_page=$(curl -sS -L -c "$jar" -b "$jar" -w '\n%{url_effective}' \
  --data-urlencode "req=$(field req)" --data-urlencode "csrf=$(field csrf)" \
  --data-urlencode "username=${TZ_USER:-demo}" --data-urlencode "password=${TZ_PASSWORD:-demo-password}" \
  "$origin/login")
final=$(tail -n1 <<<"$done_page")
if [[ $final == "$app/protected" ]] && grep -q 'id="user"' <<<"$done_page"; then
  echo "logged in: $(grep -o '<b id="user">[^<]*' <<<"$done_page" | sed 's/.*>//') at $final"
else
  echo "login did not finish (at $final)" >&2; exit 1
fi
