#!/usr/bin/env python3
"""Generates a directory for `tongzheng admin directory import` (issue 12 scale proof): UNITS
units, each a tree of departments 5 levels deep (1 unit, 4 departments, 16 offices, 64 sections,
15 teams under the first sections: 100 organizations), and PEOPLE people spread over them, one
in ten with a second membership. Deterministic (seeded). Writes two CSV files, organizations
first (the import loads them before people anyway; two files let the run time and weigh them
apart).

usage: directory_gen.py OUT_DIR [PEOPLE] [UNITS]
"""
import csv
import os
import random
import sys

FAMILY = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国志文红玉海燕云飞鹏辉斌宇浩凯晨欣怡佳琳雪梅"
BUREAUS = ["发展和改革委员会", "教育局", "公安局", "民政局", "财政局", "人力资源和社会保障局", "卫生健康委员会"]
KINDS = ["unit", "department", "department", "department", "department"]
HEADER = ["type", "external_id", "name", "parent", "code", "kind", "order", "username", "email", "phone", "orgs"]


def main() -> None:
    out = sys.argv[1]
    people = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    units = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    rnd = random.Random(12)
    os.makedirs(out, exist_ok=True)
    orgs = []  # (external id, depth)
    with open(os.path.join(out, "orgs.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)

        def org(ext, name, parent, depth, order):
            code = f"11{ext.upper():0>16}" if depth == 1 else ""
            w.writerow(["org", ext, name, parent, code, KINDS[depth - 1], order, "", "", "", ""])
            orgs.append((ext, depth))

        for u in range(units):
            unit = f"u{u:03d}"
            org(unit, f"第{u + 1}市{rnd.choice(BUREAUS)}", "", 1, u)
            for d in range(4):
                dep = f"{unit}d{d}"
                org(dep, f"{dep}处", unit, 2, d)
                for o in range(4):
                    off = f"{dep}o{o}"
                    org(off, f"{off}科", dep, 3, o)
                    for s in range(4):
                        sec = f"{off}s{s}"
                        org(sec, f"{sec}股", off, 4, s)
                        if d * 16 + o * 4 + s < 15:
                            org(f"{sec}t0", f"{sec}组", sec, 5, 0)
    with open(os.path.join(out, "people.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        # People sit mostly in the deeper levels, as in a real administration.
        weights = [1, 2, 4, 6, 6]
        pick = [ext for ext, depth in orgs for _ in range(weights[depth - 1])]
        for i in range(people):
            name = rnd.choice(FAMILY) + "".join(rnd.choice(GIVEN) for _ in range(rnd.choice([1, 2])))
            first = rnd.choice(pick)
            memberships = [f"{first}:{rnd.choice(['科员', '主任科员', '副处长', '处长', '科长'])}"]
            if i % 10 == 0:
                other = rnd.choice(pick)
                if other != first:
                    memberships.append(f"{other}:兼职")
            w.writerow(["person", f"e{i:06d}", name, "", "", "", "", f"p{i:06d}",
                        f"p{i:06d}@{first[:4]}.example.gov.cn", f"+86 139{i:08d}", ";".join(memberships)])
    print(f"{len(orgs)} organizations, {people} people in {out}")


if __name__ == "__main__":
    main()
