//! The one registration page (HL-5.2) as a relying party sees it: `prompt=create` (OpenID
//! Connect Prompt Create 1.0) advertised and honoured, refused with `none`, and the page's form
//! refusing bad input with a 4xx, never a 5xx.

use serde_json::Value;

use crate::report::{Check, ensure};
use crate::rp::{Rp, WEB, WEB_REDIRECT, e, snippet};

fn create_query(prompt: &str) -> String {
    format!(
        "response_type=code&client_id={WEB}&redirect_uri={}&scope=openid&state=pc&prompt={prompt}",
        url::form_urlencoded::byte_serialize(WEB_REDIRECT.as_bytes()).collect::<String>()
    )
}

/// Prompt Create 1.0 s4.2: `create` in `prompt_values_supported`.
pub async fn advertised(c: &Rp) -> Check {
    let v: Value = c
        .http
        .get(c.url("/.well-known/openid-configuration"))
        .send()
        .await
        .map_err(e("discovery"))?
        .json()
        .await
        .map_err(e("discovery JSON"))?;
    let values = v["prompt_values_supported"].as_array().ok_or("no prompt_values_supported")?;
    ensure(values.iter().any(|p| p == "create"), format!("prompt_values_supported: {values:?}"))
}

/// Prompt Create 1.0 s4.1: the browser goes to the registration page, which carries the request.
pub async fn shows_registration(c: &Rp) -> Check {
    let b = crate::rp::browser()?;
    let l = c.get(&b, &format!("/authorize?{}", create_query("create"))).await?;
    let to = l.location.clone().ok_or_else(|| format!("no redirect: {} {}", l.status, snippet(&l.body)))?;
    ensure(to.starts_with("/signup?req="), format!("redirected to {to}"))?;
    let page = c.get(&b, &to).await?;
    ensure(page.status == 200, format!("/signup answered {}", page.status))?;
    ensure(
        page.body.contains("action=\"/signup\"") && page.body.contains("name=\"req\""),
        format!("no registration form carrying the request: {}", snippet(&page.body)),
    )
}

/// OIDC Core s3.1.2.1, Prompt Create 1.0 s4.1: `none` with `create` is `invalid_request` at the
/// redirect URI.
pub async fn none_with_create(c: &Rp) -> Check {
    let b = crate::rp::browser()?;
    let l = c.get(&b, &format!("/authorize?{}", create_query("none%20create"))).await?;
    let q = l.redirect_query(WEB_REDIRECT)?;
    ensure(q.get("error").map(String::as_str) == Some("invalid_request"), format!("{q:?}"))
}

/// HL-5.2, SH-8.2: forged, empty and malformed registration posts are 4xx, never 5xx.
pub async fn bad_input(c: &Rp) -> Check {
    let b = crate::rp::browser()?;
    let page = c.get(&b, "/signup").await?;
    let csrf = crate::rp::HtmlForm::find(&page.body, "/signup")?.field("csrf")?;
    let long = "9".repeat(4000);
    let forms: Vec<Vec<(String, String)>> = vec![
        vec![("action".into(), "send_code".into()), ("phone".into(), "13800138000".into())],
        vec![("csrf".into(), csrf.clone()), ("action".into(), "send_code".into()), ("phone".into(), "12".into())],
        vec![("csrf".into(), csrf.clone()), ("action".into(), "send_code".into()), ("phone".into(), long.clone())],
        vec![("csrf".into(), csrf.clone()), ("action".into(), "register".into()), ("code".into(), long)],
        vec![("csrf".into(), csrf), ("kind".into(), "legal".into()), ("uscc".into(), "91350100M000100Y44".into())],
    ];
    for f in forms {
        let l = c.post_form(&b, "/signup", &f).await?;
        ensure((400..500).contains(&l.status), format!("{f:?}: answered {}", l.status))?;
    }
    Ok(())
}
