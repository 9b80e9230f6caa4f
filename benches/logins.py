#!/usr/bin/env python3
"""Login storm driver for benches/load.sh (issue 13): N threads, each a fresh browser per login
(GET /authorize -> login page -> POST /login as its own user), for SECONDS. Loopback only.
Prints "ok failed logins_per_second".
Usage: logins.py BASE CLIENT_ID REDIRECT USER_PREFIX PASSWORD THREADS SECONDS"""

import http.client
import re
import sys
import threading
import time
import urllib.parse

base, client_id, redirect, prefix, password, threads, seconds = sys.argv[1:8]
threads, seconds = int(threads), float(seconds)
url = urllib.parse.urlsplit(base)
assert url.hostname in ("127.0.0.1", "localhost", "::1"), "loopback only"
ok = failed = 0
lock = threading.Lock()
deadline = time.monotonic() + seconds


def cookies_of(resp, jar):
    for k, v in resp.getheaders():
        if k.lower() == "set-cookie":
            name, _, rest = v.partition("=")
            jar[name.strip()] = rest.split(";", 1)[0]


def request(conn, method, path, jar, body=None):
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())} if jar else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    cookies_of(resp, jar)
    return resp, data.decode("utf-8", "replace")


def one_login(conn, user):
    jar = {}
    q = urllib.parse.urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect,
                                "scope": "openid", "state": "s"})
    resp, page = request(conn, "GET", f"/authorize?{q}", jar)
    while resp.status in (302, 303) and resp.getheader("Location", "").startswith((base, "/")):
        loc = urllib.parse.urlsplit(resp.getheader("Location"))
        resp, page = request(conn, "GET", loc.path + ("?" + loc.query if loc.query else ""), jar)
    fields = dict(re.findall(r'name="(req|csrf)" value="([^"]*)"', page))
    if "req" not in fields:
        return False
    body = urllib.parse.urlencode({**fields, "username": user, "password": password})
    resp, _ = request(conn, "POST", "/login", jar, body)
    return resp.status in (302, 303) and "code=" in resp.getheader("Location", "")


def worker(i):
    global ok, failed
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    while time.monotonic() < deadline:
        try:
            good = one_login(conn, f"{prefix}{i}")
        except Exception:  # noqa: BLE001 - a broken connection counts as a failed login
            good = False
            conn.close()
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        with lock:
            if good:
                ok += 1
            else:
                failed += 1


start = time.monotonic()
ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(ok, failed, f"{ok / (time.monotonic() - start):.1f}")
