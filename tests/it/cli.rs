//! `tongzheng admin` against a real server (DC-8): the CLI run as a library call walks an
//! application through its lifecycle (AY-8) the way an operator would, problems are printed from
//! their RFC 7807 fields with a failing exit status, and the auditor reads the result back
//! (AY-8.5.2.1). One case runs the compiled binary to prove its wiring.

use serde_json::Value;

use crate::lifecycle::application;
use crate::support::server::*;

/// What one CLI run printed.
struct Run {
    code: u8,
    out: String,
    err: String,
}

/// Runs `tongzheng admin --server <s> --client-id <id> --client-secret <secret> <args>`.
async fn run_as(s: &TestServer, id: &str, secret: &str, args: &[&str]) -> Run {
    let mut argv = vec!["--server", s.base.as_str(), "--client-id", id, "--client-secret", secret];
    argv.extend_from_slice(args);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = tongzheng::cli::run(argv, &mut out, &mut err).await;
    Run { code, out: String::from_utf8(out).unwrap(), err: String::from_utf8(err).unwrap() }
}

/// Runs the CLI with the admin's credentials and insists it succeeds.
async fn admin(s: &TestServer, args: &[&str]) -> String {
    let r = run_as(s, ADMIN_CLIENT, ADMIN_SECRET, args).await;
    assert_eq!(r.code, 0, "{args:?} failed: {}{}", r.out, r.err);
    r.out
}

/// Runs the CLI with the admin's credentials and insists it fails; returns stderr.
async fn admin_fails(s: &TestServer, args: &[&str]) -> String {
    let r = run_as(s, ADMIN_CLIENT, ADMIN_SECRET, args).await;
    assert_ne!(r.code, 0, "{args:?} should fail: {}", r.out);
    assert_eq!(r.out, "", "{args:?}: nothing on stdout");
    r.err
}

/// The value of a `label: value` line.
fn field(out: &str, label: &str) -> String {
    let prefix = format!("{label}:");
    let line = out.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {label} in {out}"));
    line[prefix.len()..].trim().to_owned()
}

/// A client_credentials token request with `secret`; the status says whether it works.
async fn token_status(s: &TestServer, id: &str, secret: &str) -> reqwest::StatusCode {
    let form = [("grant_type", "client_credentials"), ("scope", "tax.read")];
    s.http.post(s.url("/token")).basic_auth(id, Some(secret)).form(&form).send().await.unwrap().status()
}

fn scratch(s: &TestServer, name: &str) -> std::path::PathBuf {
    let port = s.base.rsplit(':').next().unwrap();
    let dir = std::env::temp_dir().join(format!("tz-cli-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

// DC-8, AY-8: the common lifecycle steps through the CLI.
#[tokio::test]
async fn lifecycle_through_the_cli() {
    let s = TestServer::start(Backend::Memory).await;
    let id = "tax-office";
    let file = scratch(&s, "app.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&application(id, "office")).unwrap()).unwrap();
    let file = file.to_str().unwrap();

    // AY-7.1: the grant names tax.read, which must be in the catalogue first.
    let err = admin_fails(&s, &["app", "apply", "--file", file]).await;
    assert!(err.contains("error 400 Invalid input: scopes not in the catalogue: tax.read"), "{err}");
    let out = admin(&s, &["scope", "add", "tax.read", "--description", "读取税务数据"]).await;
    assert_eq!(out, "added scope tax.read\n");
    assert!(
        admin(&s, &["scope", "list"]).await.lines().any(|l| l.starts_with("tax.read ") && l.ends_with("读取税务数据"))
    );

    // SH-6.2.2, AY-8.2.1: apply from a JSON file; the phone comes back masked (SH-8.2).
    let out = admin(&s, &["app", "apply", "--file", file]).await;
    assert_eq!(field(&out, "id"), id);
    assert!(field(&out, "state").starts_with("applied since "), "{out}");
    assert!(field(&out, "contact").contains("+86 *******5678"), "{out}");
    assert!(!field(&out, "review due").is_empty(), "AY-8.2.2: {out}");

    // SH-6.2.3: an office application needs a crypto assessment.
    let err = admin_fails(
        &s,
        &["app", "review", id, "--reviewer", "李审核", "--approve", "--evidence", "software_test_report:TR-1"],
    )
    .await;
    assert!(err.contains("error 422 Review evidence missing:") && err.contains("crypto_assessment"), "{err}");

    // AY-8.2.3: approval prints the new client's secret, once, labelled.
    let out = admin(
        &s,
        &[
            "app",
            "review",
            id,
            "--reviewer",
            "李审核",
            "--approve",
            "--evidence",
            "software_test_report:TR-2026-001",
            "--evidence",
            "mlps_assessment:DJCP-2026-17:2",
            "--evidence",
            "crypto_assessment:MP-2026-09",
            "--comment",
            "同意接入",
        ],
    )
    .await;
    assert!(out.starts_with("review ") && out.contains(": approve by 李审核\n"), "{out}");
    assert!(out.contains("tax-office  approved  税务协同办公\n"), "{out}");
    assert_eq!(field(&out, "client_id"), id);
    let secret = field(&out, "client_secret");
    assert_eq!(out.matches(secret.as_str()).count(), 1, "printed once: {out}");
    assert!(out.contains("shown this once"), "{out}");
    assert_eq!(token_status(&s, id, &secret).await, reqwest::StatusCode::OK, "the printed secret works");
    assert!(!admin(&s, &["client", "show", id]).await.contains(&secret), "never shown again");

    // SH-6.2.7: grey release to an organization, then release.
    let out = admin(&s, &["app", "pre-release", id, "--org", "org-tax"]).await;
    assert_eq!(out, "tax-office  pre_release  税务协同办公\n");
    assert_eq!(admin(&s, &["app", "release", id]).await, "tax-office  released  税务协同办公\n");

    // AY-8.5.3.2, AY-8.5.4: suspend, extend once; the second extension fails with the detail.
    let out = admin(&s, &["app", "suspend", id, "--reason", "异常调用：批量导出"]).await;
    assert!(field(&out, "state").starts_with("suspended since "), "{out}");
    assert!(field(&out, "rectify by").ends_with("23:59:59+08:00"), "{out}");
    let out = admin(&s, &["app", "extend", id, "--days", "5", "--reason", "整改延期申请表"]).await;
    assert_eq!(field(&out, "extension"), "5 working days: 整改延期申请表");
    let err = admin_fails(&s, &["app", "extend", id, "--days", "1", "--reason", "again"]).await;
    assert!(
        err.contains(
            "error 409 Conflict: this suspension was already extended once; AY-8.5.4 allows one extension per problem"
        ),
        "{err}"
    );
    // An illegal move names the allowed ones (RFC 7807 extension members).
    let err = admin_fails(&s, &["app", "maintenance", id, "--reason", "维护"]).await;
    assert_eq!(
        err,
        "tongzheng admin: error 409 Illegal lifecycle transition: an application cannot go from suspended to \
         temporarily_offline (allowed: pre_release, released, offline)\n"
    );
    // AY-8.5.5: back to released with a passed re-test.
    let err = admin_fails(&s, &["app", "release", id]).await;
    assert!(err.contains("re-test"), "{err}");
    let out = admin(&s, &["app", "release", id, "--retest-report", "RT-3", "--reason", "整改完成"]).await;
    assert_eq!(out, "tax-office  released  税务协同办公\n");

    // Secret rotation: a new secret, printed once; both work during the overlap.
    let out = admin(&s, &["client", "rotate-secret", id, "--overlap", "600"]).await;
    let rotated = field(&out, "client_secret");
    assert_ne!(rotated, secret);
    assert_eq!(out.matches(rotated.as_str()).count(), 1, "{out}");
    assert!(out.contains("previous secrets stop working at "), "{out}");
    assert_eq!(token_status(&s, id, &rotated).await, reqwest::StatusCode::OK);
    assert_eq!(token_status(&s, id, &secret).await, reqwest::StatusCode::OK, "overlap");

    // AY-8.6.3, AY-8.6.4: offline, archived.
    let out = admin(&s, &["app", "offline", id, "--reason", "业务下线申请表 XX-01"]).await;
    assert!(field(&out, "state").starts_with("offline since "), "{out}");
    assert!(!field(&out, "archive").is_empty(), "{out}");
    assert_eq!(admin(&s, &["app", "list"]).await, "tax-office  offline  税务协同办公\n");
    let shown: Value = serde_json::from_str(&admin(&s, &["app", "show", id, "--json"]).await).unwrap();
    assert_eq!(shown["state"], "offline");

    // The history, oldest first.
    let out = admin(&s, &["app", "history", id]).await;
    let moves: Vec<&str> = out.lines().filter_map(|l| l.split("  ").nth(1)).collect();
    assert_eq!(
        moves,
        [
            "applied -> approved",
            "approved -> pre_release",
            "pre_release -> released",
            "released -> suspended",
            "suspended -> released",
            "released -> offline"
        ],
        "{out}"
    );

    // AY-8.5.2.1: the auditor, not the admin, reads the audit log; --all follows the cursor.
    s.state.audit.flush().await;
    let err = admin_fails(&s, &["audit", "query", "--app", id]).await;
    assert!(err.contains("error 403") && err.contains("auditor-cli"), "{err}");
    let q = ["audit", "query", "--all", "--app", id, "--kind", "app_transition", "--limit", "2"];
    let r = run_as(&s, AUDITOR_CLIENT, AUDITOR_SECRET, &q).await;
    assert_eq!(r.code, 0, "{}", r.err);
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(lines.len(), 6, "every transition, over 3 pages: {}", r.out);
    assert!(
        lines.iter().all(|l| l.contains("  app_transition  success  client:admin-cli  app=tax-office")),
        "{}",
        r.out
    );
    let r = run_as(&s, AUDITOR_CLIENT, AUDITOR_SECRET, &[&q[..], &["--json"]].concat()).await;
    let all: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(all["events"].as_array().unwrap().len(), 6);
    assert!(!r.out.contains(&secret) && !r.out.contains(&rotated), "no secrets in the audit log");
    let export = scratch(&s, "audit.jsonl");
    let path = export.to_str().unwrap();
    let args = ["audit", "export", "--app", id, "--kind", "app_transition", "--out", path];
    let r = run_as(&s, AUDITOR_CLIENT, AUDITOR_SECRET, &args).await;
    assert_eq!((r.code, r.out), (0, format!("exported 6 events to {path}\n")), "{}", r.err);
    assert_eq!(std::fs::read_to_string(&export).unwrap().lines().count(), 6);
}

// DC-8: the binary wires `admin` to the library, reading the server and secret from the
// environment.
#[tokio::test]
async fn the_binary_lists_applications() {
    let s = TestServer::start(Backend::Memory).await;
    admin(&s, &["scope", "add", "tax.read", "--description", "读取税务数据"]).await;
    let file = scratch(&s, "bin-app.json");
    std::fs::write(&file, serde_json::to_vec(&application("bin-app", "office")).unwrap()).unwrap();
    admin(&s, &["app", "apply", "--file", file.to_str().unwrap()]).await;
    let base = s.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(crate::support::binary())
            .args(["admin", "app", "list"])
            .env("TONGZHENG_ADMIN_URL", base)
            .env("TONGZHENG_ADMIN_CLIENT_SECRET", ADMIN_SECRET)
            .env_remove("TONGZHENG_ADMIN_CLIENT_ID")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let (out, err) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{out}{err}");
    assert_eq!(out, "bin-app  applied  税务协同办公\n");
}

// OIDC Discovery s3, s4.3: `serve --dev --listen ADDR --config FILE` announces the address it
// listens on as its issuer when the file sets none (two platforms started that way federate).
#[tokio::test]
async fn listen_flag_sets_the_dev_issuer() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("tz-serve-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("platform.toml");
    let d = dir.display();
    std::fs::write(
        &file,
        format!("[keys]\ndir = \"{d}/keys\"\n[audit]\ndir = \"{d}/audit\"\n[apps]\narchive_dir = \"{d}/archive\"\n"),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(crate::support::binary())
        .args(["serve", "--dev", "--listen", &listen, "--config", file.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://{listen}/.well-known/openid-configuration");
    let mut doc = None;
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(&url).await {
            doc = Some(r.json::<serde_json::Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.kill().await;
    let doc = doc.expect("the server answered discovery");
    assert_eq!(doc["issuer"], format!("http://{listen}"));
    assert_eq!(doc["token_endpoint"], format!("http://{listen}/token"));
    let _ = std::fs::remove_dir_all(&dir);
}
