//! JM-B legacy direct login, `POST /api/auth`, as an old system calls it: off by default,
//! enabled per client by an admin; `{"code":0,"msg":..,"token":..}` with an access token usable
//! as Bearer, or `{"code":1,"msg":..,"data":null}`; refused for a legal-person login and for a
//! person below the client's minimum assurance level (HL-6.1).

use base64::Engine as _;
use serde_json::{Value, json};

use crate::report::{Check, Runner, ensure};
use crate::rp::{ADMIN, ADMIN_SECRET, PASSWORD, Rp, USER, e};

/// Registers a client-credentials client (`extra` merged in); its secret.
async fn client(c: &Rp, id: &str, extra: Value) -> Check<String> {
    let t = c.cc_token(ADMIN, ADMIN_SECRET, None).await?;
    let mut body = json!({"client_id": id, "redirect_uris": [], "grant_types": ["client_credentials"],
                          "scope": "openid profile", "token_endpoint_auth_method": "client_secret_basic"});
    if let (Some(b), Some(x)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(x.clone());
    }
    let r = c.http.post(c.url("/admin/v1/clients")).bearer_auth(&t).json(&body).send().await.map_err(e("client"))?;
    let status = r.status();
    let v: Value = r.json().await.map_err(e("client JSON"))?;
    ensure(status == 201, format!("create {id}: {status} {v}"))?;
    v["client_secret"].as_str().map(str::to_owned).ok_or(format!("no client_secret: {v}"))
}

/// POST /api/auth as `id`: `(status, body)`.
async fn api_auth(c: &Rp, id: &str, secret: &str, password: &str, extra: &[(&str, &str)]) -> Check<(u16, Value)> {
    let pw = base64::engine::general_purpose::STANDARD.encode(password);
    let mut form = vec![("username", USER), ("password", pw.as_str())];
    form.extend_from_slice(extra);
    let r =
        c.http.post(c.url("/api/auth")).basic_auth(id, Some(secret)).form(&form).send().await.map_err(e("api/auth"))?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.map_err(e("api/auth JSON"))?))
}

/// The failure shape: exactly `code` 1, a message, `data` null.
fn is_failure(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.len() == 3)
        && v["code"] == 1
        && v["msg"].as_str().is_some_and(|m| !m.is_empty())
        && v["data"].is_null()
}

async fn off_by_default(c: &Rp) -> Check {
    let secret = client(c, "conformance-jmb-off", json!({})).await?;
    let (status, v) = api_auth(c, "conformance-jmb-off", &secret, PASSWORD, &[]).await?;
    ensure(status == 403 && is_failure(&v), format!("{status} {v}"))
}

async fn success(c: &Rp, secret: &str) -> Check {
    let (status, v) = api_auth(c, "conformance-jmb", secret, PASSWORD, &[]).await?;
    ensure(status == 200 && v["code"] == 0 && v["msg"].is_string(), format!("{status} {v}"))?;
    let token = v["token"].as_str().ok_or(format!("no token: {v}"))?;
    let (status, _, body) = c.userinfo_raw(Some(token)).await?;
    ensure(status == 200, format!("the token as Bearer at /userinfo: {status} {body}"))
}

async fn failure(c: &Rp, secret: &str) -> Check {
    let (status, v) = api_auth(c, "conformance-jmb", secret, "not-the-password", &[]).await?;
    ensure(status == 401 && is_failure(&v), format!("wrong password: {status} {v}"))?;
    let (status, v) = api_auth(c, "conformance-jmb", "not-the-secret", PASSWORD, &[]).await?;
    ensure(status == 401 && is_failure(&v), format!("wrong client secret: {status} {v}"))
}

async fn legal_person(c: &Rp, secret: &str) -> Check {
    let (status, v) = api_auth(c, "conformance-jmb", secret, PASSWORD, &[("account_kind", "legal_person")]).await?;
    ensure(status == 403 && is_failure(&v), format!("{status} {v}"))
}

async fn below_level(c: &Rp) -> Check {
    let extra = json!({"legacy_login": true, "min_level": "strong"});
    let secret = client(c, "conformance-jmb-rn", extra).await?;
    let (status, v) = api_auth(c, "conformance-jmb-rn", &secret, PASSWORD, &[]).await?;
    ensure(status == 403 && is_failure(&v), format!("a person below level 3 at a client requiring it: {status} {v}"))
}

pub async fn run(c: &Rp, run: &mut Runner<'_>) {
    run.record(
        ("JM-B", "REQUIREMENTS.md JM-B", "POST /api/auth is off by default: 403 {code:1,msg,data:null}"),
        off_by_default(c).await,
    );
    let secret = run.record(
        ("JM-B", "REQUIREMENTS.md JM-B", "admin API: legacy_login enabled per client"),
        client(c, "conformance-jmb", json!({"legacy_login": true})).await,
    );
    let Some(secret) = secret else { return };
    run.record(
        ("JM-B", "REQUIREMENTS.md JM-B; RFC 6750 s2.1", "success: {code:0,msg,token}, the token works as Bearer"),
        success(c, &secret).await,
    );
    run.record(
        ("JM-B", "REQUIREMENTS.md JM-B", "failure: wrong password or client secret: 401 {code:1,msg,data:null}"),
        failure(c, &secret).await,
    );
    run.record(
        ("JM-B, HL-5.1", "REQUIREMENTS.md JM-B", "refused for a legal-person login: 403 {code:1,...}"),
        legal_person(c, &secret).await,
    );
    run.record(
        ("JM-B, HL-6.1", "REQUIREMENTS.md JM-B, HL-6.1", "refused below the client's minimum level: 403 {code:1,...}"),
        below_level(c).await,
    );
}
