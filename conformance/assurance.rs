//! Assurance levels and real-name verification (HL-6.1, GB-6.4a): discovery lists the levels;
//! a client requiring the real-name level answers `prompt=none` below it with
//! `unmet_authentication_requirements`, and takes a person below it through `/verify` in the
//! same authorization request (the instance's built-in verifier: formats and check digits).

use serde_json::{Value, json};

use crate::report::{Check, Runner, ensure};
use crate::rp::{ADMIN, ADMIN_SECRET, HtmlForm, Rp, browser, e, jwt_parts, query};

const CLIENT: &str = "conformance-real-name";
const REDIRECT: &str = "http://127.0.0.1:9600/cb";

/// A valid resident ID card number (GB 11643 check digit) and one with a wrong check digit.
const NUMBER: &str = "440305198512122228";
const BAD_NUMBER: &str = "440305198512122229";

pub async fn run(c: &Rp, run: &mut Runner<'_>) {
    run.record(
        ("HL-6.1", "OIDC Discovery s3; OIDC Core s2 (acr)", "acr_values_supported lists the assurance levels 0-3"),
        discovery(c).await,
    );
    let client = run.record(
        ("HL-6.1", "REQUIREMENTS.md HL-6.1", "admin API: a client's minimum assurance level (min_level)"),
        client(c).await,
    );
    run.record(
        (
            "HL-6.1",
            "OIDC Core s3.1.2.6; Unmet Authentication Requirements 1.0",
            "prompt=none below the client's level: unmet_authentication_requirements at once",
        ),
        prompt_none(c, client.as_ref()).await,
    );
    run.record(
        (
            "GB-6.4a, HL-6.1",
            "OIDC Core s3.1.2.1, s2 (acr)",
            "below the level: /verify in the same request; bad check digit asked again; then a code with acr 2",
        ),
        step_up(c, client.as_ref()).await,
    );
}

async fn discovery(c: &Rp) -> Check {
    let r = c.http.get(c.url("/.well-known/openid-configuration")).send().await.map_err(e("discovery"))?;
    let v: Value = r.json().await.map_err(e("discovery JSON"))?;
    ensure(v["acr_values_supported"] == json!(["0", "1", "2", "3"]), format!("{}", v["acr_values_supported"]))
}

async fn client(c: &Rp) -> Check {
    let t = c.cc_token(ADMIN, ADMIN_SECRET, None).await?;
    let body = json!({"client_id": CLIENT, "redirect_uris": [REDIRECT], "grant_types": ["authorization_code"],
                      "token_endpoint_auth_method": "none", "scope": "openid", "min_level": "real_name"});
    let r = c.http.post(c.url("/admin/v1/clients")).bearer_auth(&t).json(&body).send().await.map_err(e("client"))?;
    let status = r.status();
    let v: Value = r.json().await.map_err(e("client JSON"))?;
    ensure(status == 201 && v["min_level"] == "real_name", format!("{status} {v}"))
}

fn authorize_url(c: &Rp, challenge: &str, extra: &str) -> String {
    c.url(&format!(
        "/authorize?response_type=code&client_id={CLIENT}&redirect_uri={REDIRECT}&scope=openid&state=rn\
         &code_challenge={challenge}&code_challenge_method=S256{extra}"
    ))
}

fn pkce() -> (String, String) {
    let verifier = tongzheng::crypto::random_token(32);
    let challenge = tongzheng::crypto::b64(&tongzheng::crypto::sha256(verifier.as_bytes()));
    (verifier, challenge)
}

async fn prompt_none(c: &Rp, client: Option<&()>) -> Check {
    client.ok_or("prerequisite failed: client")?;
    // The RP's browser holds a session at the registered level from the earlier flows.
    let l = c.get(&c.browser, &authorize_url(c, &pkce().1, "&prompt=none")).await?;
    let q = l.redirect_query(REDIRECT)?;
    ensure(
        q.get("error").map(String::as_str) == Some("unmet_authentication_requirements"),
        format!("error {:?}", q.get("error")),
    )?;
    ensure(q.get("state").map(String::as_str) == Some("rn") && q.get("iss") == Some(&c.base), format!("{q:?}"))
}

async fn step_up(c: &Rp, client: Option<&()>) -> Check {
    client.ok_or("prerequisite failed: client")?;
    let b = browser()?;
    let (verifier, challenge) = pkce();
    let landed = c.authenticate(&b, &authorize_url(c, &challenge, "")).await?;
    let to = landed.location.clone().unwrap_or_default();
    ensure(to.starts_with("/verify?req="), format!("after login: {} {to}", landed.status))?;
    let page = c.get(&b, &to).await?;
    ensure(page.status == 200, format!("/verify answered {}", page.status))?;
    let form = HtmlForm::find(&page.body, "/verify")?;
    let bad = form.submission(&[("name", "张三"), ("id_type", "resident_id_card"), ("id_number", BAD_NUMBER)]);
    let again = c.post_form(&b, "/verify", &bad).await?;
    ensure(again.status == 400, format!("a wrong check digit answered {}", again.status))?;
    let good = form.submission(&[("name", "张三"), ("id_type", "resident_id_card"), ("id_number", NUMBER)]);
    let done = c.post_form(&b, "/verify", &good).await?;
    let q = done.redirect_query(REDIRECT)?;
    let code = q.get("code").ok_or(format!("no code: {q:?}"))?;
    let r = c
        .http
        .post(c.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .map_err(e("token"))?;
    let v: Value = r.json().await.map_err(e("token JSON"))?;
    let id_token = v["id_token"].as_str().ok_or(format!("no id_token: {v}"))?;
    let (_, claims) = jwt_parts(id_token)?;
    ensure(claims["acr"] == "2" && claims["auth_level"] == "real_name", format!("acr {}", claims["acr"]))?;
    ensure(query(&to).contains_key("req"), "the verification page names the pending request")
}
