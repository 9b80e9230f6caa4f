//! The deployment material in `deploy/` (issue 14): containers cannot run here, so the files are
//! parsed and their shape checked: the compose file (two instances, Redis, a TLS proxy), the
//! proxy config, the container file (multi-stage, non-root, the locked release build), the
//! systemd unit (hardened; `systemd-analyze verify` when available), and that every metric the
//! dashboard and the alert rules use is served (SH-7.2 several instances, AY-9.2 TLS at the proxy).

use std::path::{Path, PathBuf};

use serde_json::Value;
use tongzheng::config::Config;

use crate::support::server::{Backend, TEST_KEK, TestServer};
use crate::support::yaml;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(file)
}

fn read(file: &str) -> String {
    std::fs::read_to_string(deploy(file)).unwrap_or_else(|e| panic!("deploy/{file}: {e}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

// SH-7.2 (several instances share Redis), AY-9.2 (TLS 1.2/1.3 at the proxy).
#[test]
fn compose_runs_two_instances_redis_and_a_tls_proxy() {
    let compose = yaml::parse(&read("compose.yaml"));
    let services = compose["services"].as_object().expect("services");
    let redis = &services["redis"];
    assert!(redis["image"].as_str().unwrap().contains("redis"), "{redis}");
    let instances: Vec<(&String, &Value)> = services
        .iter()
        .filter(|(_, s)| s["image"].as_str().is_some_and(|i| i.starts_with("tongzheng")) || s.get("build").is_some())
        .collect();
    assert_eq!(instances.len(), 2, "two tongzheng instances: {:?}", services.keys().collect::<Vec<_>>());
    let mut audit_names = Vec::new();
    for (name, s) in &instances {
        let volumes = strings(&s["volumes"]);
        assert!(
            volumes.iter().any(|v| v.ends_with(":/etc/tongzheng/config.toml:ro")),
            "{name}: config mounted read-only"
        );
        assert!(volumes.iter().any(|v| v.starts_with("audit:")), "{name}: the shared audit volume");
        assert_eq!(strings(&s["secrets"]), ["kek"], "{name}: the KEK as a secret");
        assert_eq!(s["environment"]["TONGZHENG_KEYS__KEK_FILE"], "/run/secrets/kek");
        audit_names.push(s["environment"]["TONGZHENG_AUDIT__INSTANCE"].as_str().unwrap().to_owned());
        assert_eq!(s["depends_on"]["redis"]["condition"], "service_healthy", "{name} waits for Redis");
        assert_eq!(s["read_only"], "true", "{name}: read-only root file system");
        assert_eq!(strings(&s["cap_drop"]), ["ALL"]);
        assert!(strings(&s["security_opt"]).contains(&"no-new-privileges:true".to_owned()));
        assert!(s.get("ports").is_none(), "{name} is reached through the proxy only");
    }
    audit_names.dedup();
    assert_eq!(audit_names.len(), 2, "each instance writes its own audit files");
    let build = instances.iter().find_map(|(_, s)| s.get("build")).expect("one instance builds the image");
    assert_eq!(build["dockerfile"], "deploy/Containerfile");
    assert_eq!(build["context"], "..");
    let proxy = &services["proxy"];
    assert!(strings(&proxy["ports"]).contains(&"443:443".to_owned()));
    assert!(strings(&proxy["volumes"]).iter().any(|v| v.starts_with("./nginx.conf:")));
    assert!(compose["secrets"]["kek"]["file"].as_str().is_some());
    for v in ["redis-data", "audit", "archive"] {
        assert!(compose["volumes"].get(v).is_some(), "volume {v}");
    }

    // The proxy balances over exactly those instances and terminates TLS 1.2/1.3.
    let nginx = read("nginx.conf");
    for (name, _) in &instances {
        assert!(nginx.contains(&format!("server {name}:8080")), "nginx upstream lists {name}");
    }
    assert!(nginx.contains("ssl_protocols TLSv1.2 TLSv1.3;"));
    assert!(nginx.contains("proxy_pass http://tongzheng;"));
    assert!(nginx.contains("X-Forwarded-For"));

    // The instances' configuration is valid in production mode (the KEK comes from the secret,
    // the admin secret hash from the operator: given here).
    let toml = read("compose/tongzheng.toml");
    let admin = "[[seed.clients]]\nclient_id = \"admin-cli\"\nclient_secret_sha256 = \"\
                 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\"\nname = \"a\"\n\
                 grant_types = [\"client_credentials\"]\nscopes = [\"tongzheng:admin\"]\n\
                 token_endpoint_auth_method = \"client_secret_basic\"\n";
    let cfg = Config::from_overlays(&[&toml, &format!("[keys]\nkek = \"{TEST_KEK}\"\n"), admin], false)
        .unwrap_or_else(|e| panic!("deploy/compose/tongzheng.toml: {e}"));
    assert!(cfg.server.behind_tls_proxy && !cfg.server.dev);
    assert_eq!(cfg.store.backend, tongzheng::config::Backend::Redis);
    assert_eq!(cfg.server.listen, "0.0.0.0:8080");
}

// The image is the same release binary (`cargo build --release --locked`), built in a stage of
// its own, run as a non-root user.
#[test]
fn container_file_is_multi_stage_non_root_and_locked() {
    let c = read("Containerfile");
    let froms: Vec<&str> = c.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let rust_version = manifest.lines().find_map(|l| l.strip_prefix("rust-version = ")).unwrap().trim_matches('"');
    assert!(froms[0].contains(&format!("rust:{rust_version}")), "build toolchain = rust-version {rust_version}");
    assert!(c.contains("cargo build --release --locked"));
    assert!(c.contains("target/release/tongzheng"));
    // The default is the profile-guided build (issue 13), of the locked sources too.
    assert!(c.contains("ARG BUILD=optimized") && c.contains("bash deploy/build.sh"), "the shipped build by default");
    assert!(c.contains("target/optimized/tongzheng"));
    let script = read("build.sh");
    assert_eq!(script.matches("cargo build --release --locked").count(), 2, "both builds locked");
    let user = c.lines().rev().find_map(|l| l.strip_prefix("USER ")).expect("a USER line");
    assert!(!user.starts_with("root") && !user.starts_with("0"), "non-root: {user}");
    assert!(c.contains("COPY --from=build"));
    let ignore = read("Containerfile.dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target"), "the build context leaves target/ out");
}

// Hardened unit: no new privileges, read-only system, only the state directory writable.
#[test]
fn systemd_unit_is_hardened_and_verifies() {
    let unit = read("tongzheng.service");
    for line in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/tongzheng",
        "User=tongzheng",
        "KillSignal=SIGTERM",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "SystemCallFilter=@system-service",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing");
    }
    let Ok(analyze) = which("systemd-analyze") else {
        eprintln!("systemd-analyze not installed: skipping `systemd-analyze verify` of deploy/tongzheng.service");
        return;
    };
    // verify checks that ExecStart exists: point it at the binary this test run built.
    let dir = std::env::temp_dir().join(format!("tz-unit-{}", tongzheng::crypto::random_token(6)));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tongzheng.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/tongzheng", env!("CARGO_BIN_EXE_tongzheng"))).unwrap();
    let out = std::process::Command::new(analyze).arg("verify").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unknown or misspelt keys are only warnings for systemd: any complaint about the unit fails.
    let complaints: Vec<&str> = stderr.lines().filter(|l| l.contains("tongzheng.service")).collect();
    std::fs::remove_dir_all(&dir).ok();
    assert!(out.status.success() && complaints.is_empty(), "systemd-analyze verify: {stderr}");
}

fn which(name: &str) -> Result<PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()).ok_or(())
}

/// Metric names (`tongzheng_*`, `process_*`) used in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for prefix in ["tongzheng_", "process_"] {
        for (i, _) in text.match_indices(prefix) {
            if text[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let name: String = text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

// Every metric the dashboard and the alert rules query is one the server serves.
#[tokio::test]
async fn dashboard_and_alerts_use_served_metrics() {
    let s = TestServer::start(Backend::Memory).await;
    s.state.metrics.set_tls_not_after(2_000_000_000);
    let scrape = s.http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let served: Vec<&str> = scrape.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();

    let dashboard: Value = serde_json::from_str(&read("grafana-dashboard.json")).expect("dashboard JSON");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap().to_owned()))
        .collect();
    assert!(exprs.len() >= 15, "panels for traffic, errors, latency, sessions, deliveries, audit, keys, TLS, process");
    let alerts = yaml::parse(&read("prometheus-alerts.yml"));
    let rules = alerts["groups"][0]["rules"].as_array().expect("rules");
    for r in rules {
        for field in ["alert", "expr", "for"] {
            assert!(r[field].as_str().is_some(), "rule without {field}: {r}");
        }
        assert!(r["annotations"]["summary"].as_str().is_some(), "{r}");
    }
    let rule_exprs: Vec<String> = rules.iter().map(|r| r["expr"].as_str().unwrap().to_owned()).collect();
    for expr in exprs.iter().chain(&rule_exprs) {
        for name in metric_names(expr) {
            let family = ["_bucket", "_sum", "_count"].iter().find_map(|x| name.strip_suffix(x)).unwrap_or(&name);
            assert!(served.contains(&family), "{name} (in {expr}) is not served:\n{served:?}");
        }
    }
    for must in ["TongzhengTlsCertificateExpiresSoon", "TongzhengSigningKeyRotationDue", "TongzhengLogoutBacklog"] {
        assert!(rules.iter().any(|r| r["alert"] == must), "alert {must}");
    }
}

// The release binary is stripped (issue 14).
#[test]
fn release_profile_strips() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let release = manifest.split("[profile.release]").nth(1).expect("[profile.release]");
    let section = release.split("\n[").next().unwrap();
    assert!(section.lines().any(|l| l.trim() == "strip = true"), "{section}");
}
