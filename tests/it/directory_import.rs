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

per_backend!(csv_and_json_lines);
