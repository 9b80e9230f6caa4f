//! `tongzheng admin directory import` (issue 12, SH-6.2.4a): a CSV and a JSON-lines file loaded
//! through SCIM Bulk, idempotent by external id, bad rows reported without stopping. Both stores.

use crate::support::server::*;

async fn import(s: &TestServer, file: &std::path::Path) -> (u8, String, String) {
    let argv = vec![
        "--server",
        s.base.as_str(),
        "--client-id",
        ADMIN_CLIENT,
        "--client-secret",
        ADMIN_SECRET,
        "directory",
        "import",
        file.to_str().unwrap(),
        "--batch",
        "3",
    ];
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = tongzheng::cli::run(argv, &mut out, &mut err).await;
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

// SH-6.2.4a: organizations and people imported; a second run changes instead of duplicating.
async fn csv_and_json_lines(b: Backend) {
    let s = TestServer::start(b).await;
    let dir = std::env::temp_dir().join(format!("tz-import-{}", tongzheng::crypto::random_token(6)));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("dir.csv");
    std::fs::write(
        &csv,
        "type,external_id,name,parent,code,kind,order,username,email,phone,orgs\n\
         org,g1,市政府,,C-G1,unit,1,,,,\n\
         org,g2,办公厅,g1,,department,2,,,,\n\
         org,g3,孤儿部门,nope,,department,,,,,\n\
         person,p1,张三,,,,,zhang.san,zs@example.gov.cn,+86 138 0000 0001,g2:主任\n\
         person,p2,李四,,,,,li si,,,g2\n\
         person,p3,王五,,,,,wang.wu,,,g1;g2:科员\n\
         alien,x,,,,,,,,,\n",
    )
    .unwrap();
    let (code, out, err) = import(&s, &csv).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("7 rows") || out.contains("6 rows"), "{out}");
    assert!(out.contains("4 created"), "{out} {err}");
    assert!(err.contains("line 4") && err.contains("nope"), "parent missing: {err}");
    assert!(err.contains("line 6"), "bad username reported: {err}");
    assert!(err.contains("line 8"), "bad type reported: {err}");
    assert!(err.contains("imported "), "progress line: {err}");
    // The data is there, as the directory sees it.
    let store = &s.state.store;
    let zs = tongzheng::users::by_username(store, "zhang.san").await.unwrap().unwrap();
    assert_eq!(zs.orgs.len(), 1);
    let dept = tongzheng::directory::tree::get(store, &zs.orgs[0]).await.unwrap().unwrap();
    assert_eq!((dept.name.as_str(), dept.ancestors.len()), ("办公厅", 1));
    let ww = tongzheng::users::by_username(store, "wang.wu").await.unwrap().unwrap();
    assert_eq!(ww.orgs.len(), 2);

    // Again, with a changed name, as JSON lines: updated, not duplicated.
    let jl = dir.join("dir.jsonl");
    std::fs::write(
        &jl,
        "{\"type\":\"org\",\"external_id\":\"g2\",\"name\":\"办公厅（新）\",\"parent\":\"g1\",\"kind\":\"department\"}\n\
         not json\n\
         {\"type\":\"org\",\"external_id\":\"g1\",\"name\":\"市政府\"}\n",
    )
    .unwrap();
    let (code, out, err) = import(&s, &jl).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 created, 2 updated"), "{out} {err}");
    assert!(err.contains("line 2"), "{err}");
    let dept = tongzheng::directory::tree::get(store, &zs.orgs[0]).await.unwrap().unwrap();
    assert_eq!(dept.name, "办公厅（新）");
    let zs = tongzheng::users::by_username(store, "zhang.san").await.unwrap().unwrap();
    assert_eq!(zs.orgs.len(), 1, "the re-imported organization kept its people");
    let (code, out, _) = import(&s, &csv).await;
    assert_eq!(code, 0);
    assert!(out.contains("0 created"), "idempotent: {out}");
    std::fs::remove_dir_all(&dir).ok();
}

// RFC 7644 s3.7.3 (each Bulk operation fails alone), s3.12; SH-6.2.4a: bad rows (a cycle in
// the tree, over-long values, a row over the Bulk payload limit, bytes that are not UTF-8,
// broken quoting) are reported by line and the others load; nothing answers 5xx.
async fn bad_rows(b: Backend) {
    let s = TestServer::start(b).await;
    let dir = std::env::temp_dir().join(format!("tz-import-bad-{}", tongzheng::crypto::random_token(6)));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("bad.csv");
    let mut text = Vec::new();
    // A spreadsheet's byte-order mark before the header.
    text.extend_from_slice(b"\xEF\xBB\xBFtype,external_id,name,parent,code,kind,order,username,email,phone,orgs\n");
    text.extend_from_slice("org,c1,根单位,,,unit,1,,,,\n".as_bytes()); // 2
    text.extend_from_slice("org,c2,下级,c1,,department,1,,,,\n".as_bytes()); // 3
    text.extend_from_slice("org,s1,自己的上级是自己,s1,,department,,,,,\n".as_bytes()); // 4: cycle
    text.extend_from_slice(format!("org,long1,{},,,unit,,,,,\n", "名".repeat(10_000)).as_bytes()); // 5
    text.extend_from_slice(format!("org,{},长编号,,,unit,,,,,\n", "x".repeat(5_000)).as_bytes()); // 6
    text.extend_from_slice(format!("person,big1,{},,,,,big.one,,,c1\n", "大".repeat(600_000)).as_bytes()); // 7: > 1 MiB
    text.extend_from_slice(b"person,bin1,\xFF\xFEnot utf8,,,,,bin.one,,,c1\n"); // 8
    text.extend_from_slice("person,q1,\"未闭合的引号,,,,,q.one,,,c1\n".as_bytes()); // 9
    text.extend_from_slice(format!("person,p1,张三,,,,,{},,,c1\n", "u".repeat(500)).as_bytes()); // 10
    text.extend_from_slice("person,p2,李四,,,,,li.si,,,c2:科员\n".as_bytes()); // 11
    text.extend_from_slice("org,c3,第三,c2,,department,abc,,,,\n".as_bytes()); // 12: order not a number
    std::fs::write(&csv, &text).unwrap();
    let (code, out, err) = import(&s, &csv).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("3 created"), "c1, c2, li.si: {out} {err}");
    for line in [4, 5, 6, 7, 8, 9, 10, 12] {
        assert!(err.contains(&format!("line {line}:")), "line {line} reported: {err}");
    }
    assert!(!err.contains(" 500 ") && !err.contains(" 503 ") && !err.contains("error 5"), "no 5xx: {err}");
    let store = &s.state.store;
    let li = tongzheng::users::by_username(store, "li.si").await.unwrap().expect("the good person loaded");
    assert_eq!(li.orgs.len(), 1);
    assert!(tongzheng::users::by_username(store, "big.one").await.unwrap().is_none());

    // A cycle through a re-import: the root moved under its own department is refused, per row.
    let again = dir.join("cycle.jsonl");
    std::fs::write(
        &again,
        "{\"type\":\"org\",\"external_id\":\"c1\",\"name\":\"根单位\",\"parent\":\"c2\",\"kind\":\"unit\"}\n\
         {\"type\":\"org\",\"external_id\":\"c4\",\"name\":\"第四\",\"parent\":\"c2\",\"kind\":\"department\"}\n",
    )
    .unwrap();
    let (code, out, err) = import(&s, &again).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("line 1:"), "the cycle reported: {err}");
    assert!(out.contains("1 created"), "{out} {err}");
    let c2 = tongzheng::directory::tree::get(store, &li.orgs[0]).await.unwrap().unwrap();
    let c1 = tongzheng::directory::tree::get(store, &c2.ancestors[0]).await.unwrap().unwrap();
    assert!(c1.parent.is_none() && c1.ancestors.is_empty(), "the tree is unchanged: {c1:?}");
    std::fs::remove_dir_all(&dir).ok();
}

per_backend!(csv_and_json_lines, bad_rows);
