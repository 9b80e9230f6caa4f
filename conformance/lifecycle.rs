//! The application lifecycle, least privilege, call control and audit as an admin and a
//! business system see them over HTTP (AY-7.1, AY-8.x, SH-6.2.x, SH-7.x, GB-6.8a, DC-8).
//! Checks run in order on one application; a later check needs the values of earlier ones.

use serde_json::{Value, json};

use crate::report::{Check, Runner, ensure};
use crate::rp::{ADMIN, ADMIN_SECRET, Rp, e};

const AUDITOR: &str = "auditor-cli";
const AUDITOR_SECRET: &str = "auditor-cli-secret-0123456789abcdef";
const APP: &str = "conformance-app";

/// An admin-API call: `(status, body)`.
async fn admin(c: &Rp, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Check<(u16, Value)> {
    let mut r = c.http.request(method, c.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.map_err(e("admin API"))?;
    let status = r.status().as_u16();
    let ctype = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if status >= 400 {
        // RFC 7807: every admin-API error is a problem document.
        ensure(ctype == "application/problem+json" && v["status"] == status, format!("not a problem: {status} {v}"))?;
    }
    Ok((status, v))
}

fn transition(to: &str, extra: Value) -> Value {
    let mut b = json!({"to": to, "reason": format!("conformance: {to}")});
    if let (Some(o), Some(x)) = (b.as_object_mut(), extra.as_object()) {
        o.extend(x.clone());
    }
    b
}

async fn apply(c: &Rp, t: &str) -> Check {
    use reqwest::Method as M;
    let mut app = json!({
        "id": APP, "name": "一致性测试应用", "category": "business", "app_type": "web", "developer": "测试开发商",
        "owning_unit": "测试单位", "contact": {"name": "联系人"}, "industry_theme": "政务",
        "grants": {"grant_types": ["client_credentials"], "scopes": ["conformance.read"],
                   "rate_limit": {"per_second": 1, "burst": 3}}
    });
    let (status, v) = admin(c, t, M::POST, "/admin/v1/applications", Some(app.clone())).await?;
    ensure(
        status == 400 && v["detail"].as_str().is_some_and(|d| d.contains("conformance.read")),
        format!("uncatalogued scope: {status} {v}"),
    )?;
    let scope = json!({"name": "conformance.read", "description": "conformance"});
    let (status, _) = admin(c, t, M::POST, "/admin/v1/scopes", Some(scope)).await?;
    ensure(status == 201 || status == 409, format!("catalogue: {status}"))?;
    app["test_users"] = json!([]);
    let (status, v) = admin(c, t, M::POST, "/admin/v1/applications", Some(app)).await?;
    ensure(status == 201 && v["state"] == "applied", format!("apply: {status} {v}"))?;
    for field in
        ["name", "category", "industry_theme", "app_type", "visible_scope", "developer", "owning_unit", "contact"]
    {
        ensure(!v[field].is_null(), format!("SH-6.2.2 field {field} missing: {v}"))?;
    }
    Ok(())
}

async fn illegal(c: &Rp, t: &str) -> Check {
    let path = format!("/admin/v1/applications/{APP}/transitions");
    let (status, v) = admin(c, t, reqwest::Method::POST, &path, Some(transition("released", json!({})))).await?;
    ensure(status == 409 && v["type"] == "urn:tongzheng:problem:illegal-transition", format!("{status} {v}"))?;
    ensure(v["allowed"] == json!(["approved", "offline"]), format!("allowed: {}", v["allowed"]))
}

/// SH-6.2.3: evidence by category; AY-8.2.3: approval allocates the credentials.
async fn review(c: &Rp, t: &str) -> Check<String> {
    let path = format!("/admin/v1/applications/{APP}/reviews");
    let thin = json!({"reviewer": "审核员", "decision": "approve", "evidence": [
        {"kind": "software_test_report", "reference": "TR-1", "passed": true}]});
    let (status, v) = admin(c, t, reqwest::Method::POST, &path, Some(thin)).await?;
    ensure(status == 422, format!("approval without a security assessment: {status} {v}"))?;
    let full = json!({"reviewer": "审核员", "decision": "approve", "evidence": [
        {"kind": "software_test_report", "reference": "TR-1", "passed": true},
        {"kind": "security_test_report", "reference": "ST-1", "passed": true}]});
    let (status, v) = admin(c, t, reqwest::Method::POST, &path, Some(full)).await?;
    ensure(status == 201 && v["application"]["state"] == "approved", format!("approval: {status} {v}"))?;
    v["credentials"]["client_secret"].as_str().map(str::to_owned).ok_or_else(|| format!("no secret: {v}"))
}

/// AY-7.1: only granted scopes; the token carries exactly them.
async fn least_privilege(c: &Rp, secret: &str) -> Check {
    let (status, v) = c
        .token_raw(APP, secret, &[("grant_type", "client_credentials"), ("scope", "conformance.read api.read")])
        .await?;
    ensure(status == 400 && v["error"] == "invalid_scope", format!("ungranted scope: {status} {v}"))?;
    let (status, v) = c.token_raw(APP, secret, &[("grant_type", "client_credentials")]).await?;
    ensure(status == 200 && v["scope"] == "conformance.read", format!("granted: {status} {v}"))
}

/// AY-8.3.2.1: the application's limit (1/s, burst 3) answers 429 with Retry-After.
async fn rate_limited(c: &Rp, secret: &str) -> Check {
    for _ in 0..10 {
        let r = c
            .http
            .post(c.url("/token"))
            .basic_auth(APP, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(e("token"))?;
        if r.status() == 429 {
            let retry =
                r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
            return ensure(retry.is_some_and(|s| s >= 1), "429 without Retry-After");
        }
    }
    Err("ten requests in a burst of three were all served".into())
}

async fn grey_release(c: &Rp, t: &str) -> Check {
    let path = format!("/admin/v1/applications/{APP}/transitions");
    let (status, _) = admin(c, t, reqwest::Method::POST, &path, Some(transition("pre_release", json!({})))).await?;
    ensure(status == 400, format!("pre_release without an audience: {status}"))?;
    let body = transition("pre_release", json!({"audience": {"orgs": ["org-conformance"]}}));
    let (status, v) = admin(c, t, reqwest::Method::POST, &path, Some(body)).await?;
    ensure(status == 200 && v["state"] == "pre_release", format!("{status} {v}"))?;
    let (status, v) = admin(c, t, reqwest::Method::POST, &path, Some(transition("released", json!({})))).await?;
    ensure(status == 200 && v["state"] == "released", format!("{status} {v}"))
}

/// RFC 7662 introspection by the admin client, which may see every client's tokens.
async fn introspect(c: &Rp, token: &str) -> Check<Value> {
    let r = c
        .http
        .post(c.url("/introspect"))
        .basic_auth(ADMIN, Some(ADMIN_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .map_err(e("introspect"))?;
    r.json().await.map_err(e("introspection JSON"))
}

/// AY-8.5.3.2 and AY-8.5.4.
async fn suspend(c: &Rp, t: &str, secret: &str) -> Check {
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await; // past the burst above
    let live = c.cc_token(APP, secret, None).await?;
    ensure(introspect(c, &live).await?["active"] == true, "the live token is not active before the suspension")?;
    let path = format!("/admin/v1/applications/{APP}/transitions");
    let (status, v) = admin(c, t, reqwest::Method::POST, &path, Some(transition("suspended", json!({})))).await?;
    ensure(status == 200 && v["rectification_due"].is_string(), format!("suspend: {status} {v}"))?;
    let intro = introspect(c, &live).await?;
    ensure(intro["active"] == false, format!("live token still active: {intro}"))?;
    let (status, v) = c.token_raw(APP, secret, &[("grant_type", "client_credentials")]).await?;
    ensure(status == 400 && v["error"] == "unauthorized_client", format!("new grant while suspended: {status} {v}"))?;
    let ext = format!("/admin/v1/applications/{APP}/suspension/extension");
    let (status, _) =
        admin(c, t, reqwest::Method::POST, &ext, Some(json!({"working_days": 10, "reason": "延期"}))).await?;
    ensure(status == 200, format!("first extension: {status}"))?;
    let (status, _) =
        admin(c, t, reqwest::Method::POST, &ext, Some(json!({"working_days": 1, "reason": "再延期"}))).await?;
    ensure(status == 409, format!("second extension: {status}"))
}

/// AY-8.5.5 and SH-7.3.
async fn resume_and_maintenance(c: &Rp, t: &str) -> Check {
    let path = format!("/admin/v1/applications/{APP}/transitions");
    let back = transition("released", json!({"retest": {"report": "RT-1", "passed": true}}));
    let (status, v) = admin(c, t, reqwest::Method::POST, &path, Some(back)).await?;
    ensure(status == 200 && v["state"] == "released", format!("resume: {status} {v}"))?;
    let (status, _) =
        admin(c, t, reqwest::Method::POST, &path, Some(transition("temporarily_offline", json!({})))).await?;
    ensure(status == 200, format!("maintenance: {status}"))?;
    let (status, v) = admin(c, t, reqwest::Method::POST, &path, Some(transition("released", json!({})))).await?;
    ensure(status == 200 && v["state"] == "released", format!("return: {status} {v}"))
}

/// AY-8.6.3, AY-8.6.4, SH-7.4.
async fn offline(c: &Rp, t: &str, secret: &str) -> Check {
    let path = format!("/admin/v1/applications/{APP}/transitions");
    let (status, v) = admin(c, t, reqwest::Method::POST, &path, Some(transition("offline", json!({})))).await?;
    ensure(status == 200 && v["state"] == "offline", format!("offline: {status} {v}"))?;
    let (status, v) = c.token_raw(APP, secret, &[("grant_type", "client_credentials")]).await?;
    ensure(status == 401 && v["error"] == "invalid_client", format!("secret after offline: {status} {v}"))?;
    let (status, v) = admin(c, t, reqwest::Method::GET, &format!("/admin/v1/applications/{APP}/archive"), None).await?;
    ensure(status == 200, format!("archive: {status}"))?;
    let moves = v["transitions"].as_array().map_or(0, Vec::len);
    ensure(
        moves == 8 && v["calls"].as_array().is_some_and(|c| !c.is_empty()),
        format!("archive holds {moves} transitions"),
    )
}

/// AY-8.5.2.1, GB-6.8a: the auditor finds the application's calls; the admin may not read them.
async fn audit(c: &Rp, t: &str) -> Check {
    let (status, _) = admin(c, t, reqwest::Method::GET, "/admin/v1/audit/events", None).await?;
    ensure(status == 403, format!("admin reading the audit log: {status}"))?;
    let auditor = c.cc_token(AUDITOR, AUDITOR_SECRET, None).await?;
    let path = format!("/admin/v1/audit/events?app_id={APP}&kind=token_issued&limit=1000");
    let (status, v) = admin(c, &auditor, reqwest::Method::GET, &path, None).await?;
    let events = v["events"].as_array().cloned().unwrap_or_default();
    ensure(status == 200 && !events.is_empty(), format!("token calls of the application: {status} {v}"))?;
    let e0 = &events[0];
    ensure(
        e0["actor"].is_string() && e0["ip"].is_string() && e0["request_id"].is_string() && e0["outcome"].is_string(),
        format!("an event lacks actor, ip, request id or outcome: {e0}"),
    )
}

async fn openapi(c: &Rp) -> Check {
    let r = c.http.get(c.url("/admin/v1/openapi.json")).send().await.map_err(e("openapi"))?;
    let v: Value = r.json().await.map_err(e("openapi JSON"))?;
    ensure(v["openapi"] == "3.1.0", format!("openapi {}", v["openapi"]))?;
    ensure(v["paths"]["/admin/v1/applications/{id}/transitions"]["post"].is_object(), "transitions not documented")
}

/// Runs the lifecycle checks in order.
pub async fn run(c: &Rp, run: &mut Runner<'_>) {
    let token = match c.cc_token(ADMIN, ADMIN_SECRET, None).await {
        Ok(t) => t,
        Err(err) => {
            run.record(("DC-8", "admin API", "admin token"), Check::<()>::Err(err));
            return;
        }
    };
    let t = token.as_str();
    let applied = run.record(
        ("SH-6.2.2, AY-8.2.1, AY-7.1", "REQUIREMENTS.md SH-6.2.2", "apply: registration record; only catalogue scopes"),
        apply(c, t).await,
    );
    if applied.is_none() {
        return;
    }
    run.record(
        ("AY-8, SH-6.2.7", "RFC 7807 s3", "illegal transition: 409 problem naming the allowed moves"),
        illegal(c, t).await,
    );
    let Some(secret) = run.record(
        (
            "SH-6.2.3, AY-8.2.2, AY-8.2.3",
            "REQUIREMENTS.md SH-6.2.3",
            "review checks evidence by category; approval allocates credentials",
        ),
        review(c, t).await,
    ) else {
        return;
    };
    run.record(
        ("AY-7.1, AY-7.2a", "RFC 6749 s3.3, s5.2", "tokens carry only granted scopes; more is invalid_scope"),
        least_privilege(c, &secret).await,
    );
    run.record(
        ("AY-8.3.2.1, GB-6.8a", "RFC 6585 s4", "per-application rate limit: 429 with Retry-After"),
        rate_limited(c, &secret).await,
    );
    run.record(
        ("SH-6.2.7", "REQUIREMENTS.md SH-6.2.7", "grey release needs an audience, then release"),
        grey_release(c, t).await,
    );
    run.record(
        (
            "AY-8.5.3.2, AY-8.5.4",
            "RFC 7662 s2.2",
            "suspension: live token inactive at once, grants refused; one extension",
        ),
        suspend(c, t, &secret).await,
    );
    run.record(
        ("AY-8.5.5, SH-7.3", "REQUIREMENTS.md SH-7.3", "re-test returns it; maintenance and back"),
        resume_and_maintenance(c, t).await,
    );
    run.record(
        (
            "AY-8.6.3, AY-8.6.4, SH-7.4",
            "RFC 6749 s5.2",
            "offline revokes the secret; the archive holds transitions and calls",
        ),
        offline(c, t, &secret).await,
    );
    run.record(
        ("AY-8.5.2.1, GB-6.8a", "REQUIREMENTS.md AY-8.5.2.1", "audit: the application's calls, for the auditor only"),
        audit(c, t).await,
    );
    run.record(("DC-8", "OpenAPI 3.1", "admin API described at /admin/v1/openapi.json"), openapi(c).await);
}
