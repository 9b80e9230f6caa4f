#!/usr/bin/env python3
"""Latency of directory reads at scale (issue 12), against a running tongzheng on Redis: each row
sends N requests one at a time on one keep-alive connection and reports p50/p99, the Redis store
calls per request (the server's own /metrics counters) and the bytes Redis sent per request
(INFO stats): a filter or a page that read the whole directory would show megabytes there.

usage: directory_scale.py BASE REDIS_PORT N OUT_JSON
"""
import http.client
import json
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.parse

BASE, REDIS_PORT, N, OUT = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
HOST = urllib.parse.urlparse(BASE).netloc
TZG = "urn:tongzheng:params:scim:schemas:extension:directory:2.0:Group"
rnd = random.Random(7)
conn = http.client.HTTPConnection(HOST, timeout=60)


def call(method, path, body=None, headers=None):
    h = dict(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    return r.status, data


def token():
    import base64
    basic = base64.b64encode(b"admin-cli:admin-cli-secret-0123456789abcdef").decode()
    st, data = call("POST", "/token", "grant_type=client_credentials",
                    {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"})
    assert st == 200, data
    return json.loads(data)["access_token"]


TOKEN = token()
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def scim(path, **q):
    qs = urllib.parse.urlencode(q)
    return call("GET", f"/scim/v2/{path}" + (f"?{qs}" if qs else ""), headers=AUTH)


def redis_out_bytes():
    info = subprocess.run(["redis-cli", "-p", REDIS_PORT, "INFO", "stats"], capture_output=True, text=True).stdout
    return int(re.search(r"total_net_output_bytes:(\d+)", info).group(1))


def store_calls():
    st, data = call("GET", "/metrics")
    total = 0
    for line in data.decode().splitlines():
        if line.startswith("tongzheng_store_operation_duration_seconds_count"):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def one_id(path, **q):
    st, data = scim(path, count=1, attributes="id", **q)
    assert st == 200, data
    return json.loads(data)["Resources"][0]["id"]


# Fixtures, found through the API itself.
people = int(json.loads(scim("Users", count=0)[1])["totalResults"])
orgs = int(json.loads(scim("Groups", count=0)[1])["totalResults"])
units = [one_id("Groups", filter=f'externalId eq "u{u:03d}"') for u in range(min(50, orgs // 100 or 1))]
sections = [one_id("Groups", filter=f'externalId eq "u{rnd.randrange(len(units)):03d}d{rnd.randrange(4)}o{rnd.randrange(4)}s{rnd.randrange(4)}"')
            for _ in range(20)]
first = scim("Changes", count=1)
rows = []


def row(name, make, expect=200):
    calls0, bytes0 = store_calls(), redis_out_bytes()
    lat, bad, sizes = [], 0, []
    for i in range(N):
        path = make(i)
        t = time.perf_counter()
        st, data = call("GET", path, headers=AUTH)
        lat.append((time.perf_counter() - t) * 1000)
        sizes.append(len(data))
        if st != expect:
            bad += 1
            if bad == 1:
                print(f"  {name}: {st} {data[:200]!r}", file=sys.stderr)
    calls1, bytes1 = store_calls(), redis_out_bytes()
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    r = {"row": name, "n": N, "p50_ms": round(statistics.median(lat), 2), "p99_ms": round(p99, 2),
         "unexpected": bad, "status": expect,
         # /metrics itself makes no store call; the scrape between rows is outside the window.
         "store_calls_per_req": round((calls1 - calls0) / N, 1),
         "redis_kib_per_req": round((bytes1 - bytes0) / N / 1024, 1),
         "response_kib": round(statistics.mean(sizes) / 1024, 1)}
    rows.append(r)
    print(f"  {name}: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, {r['store_calls_per_req']} store calls, "
          f"{r['redis_kib_per_req']} KiB from Redis per request", file=sys.stderr)


def q(path, **params):
    return f"/scim/v2/{path}?" + urllib.parse.urlencode(params)


row("Users filter userName eq (random person)",
    lambda i: q("Users", filter=f'userName eq "p{rnd.randrange(people):06d}"'))
row("Users filter externalId eq (random person)",
    lambda i: q("Users", filter=f'externalId eq "e{rnd.randrange(people):06d}"'))
row("Users filter displayName sw (2 characters), count=50",
    lambda i: q("Users", filter=f'displayName sw "{rnd.choice("王李张刘陈")}{rnd.choice("伟芳娜秀英")}"', count=50))
row("Users filter name.familyName sw (not indexed): refused tooMany", lambda i: q("Users", filter='name.familyName sw "王"'), 400)
row("Users filter emails co (not indexed) and userName sw (indexed)",
    lambda i: q("Users", filter=f'userName sw "p0{rnd.randrange(10)}{rnd.randrange(10)}{rnd.randrange(10)}" and emails.value co "u00"'))
row("Groups/{id} (a section with its members)", lambda i: f"/scim/v2/Groups/{rnd.choice(sections)}")
row("Groups/{id} excludedAttributes=members", lambda i: q(f"Groups/{rnd.choice(sections)}", excludedAttributes="members"))
row("Groups children of a unit (parent eq)", lambda i: q("Groups", filter=f'{TZG}:parent eq "{rnd.choice(units)}"'))
row("Users of an organization (groups.value eq), count=50",
    lambda i: q("Users", filter=f'groups.value eq "{rnd.choice(sections)}"', count=50))
row("Users page deep in the list (startIndex ~90%), count=50",
    lambda i: q("Users", startIndex=int(people * 0.9) + rnd.randrange(1000), count=50))
row("Users page sorted by userName deep (startIndex ~50%), count=50",
    lambda i: q("Users", startIndex=int(people * 0.5) + rnd.randrange(1000), count=50, sortBy="userName"))
row("Groups page deep (startIndex ~80%), count=50",
    lambda i: q("Groups", startIndex=int(orgs * 0.8) + rnd.randrange(100), count=50))
cursors = []
c = None
for _ in range(300):  # the whole feed in pages of 1000, keeping each cursor
    st, data = scim("Changes", count=1000, **({"cursor": c} if c else {}))
    page = json.loads(data)
    c = page["cursor"]
    cursors.append(c)
    if not page.get("more"):
        break
row("Changes page (count=100, cursors across the feed)", lambda i: q("Changes", count=100, cursor=rnd.choice(cursors)))
json.dump({"people": people, "orgs": orgs, "rows": rows}, open(OUT, "w"), ensure_ascii=False, indent=1)
