//! The citizen-facing pages as a browser sees them (JM-5.6, SH-D, SH-8.2): the login page's
//! 个人/法人 tabs and links, and the consent a sensitive scope always needs.

use crate::report::{Check, ensure};
use crate::rp::{HtmlForm, Rp, WEB, WEB_REDIRECT, browser, snippet};

/// JM-5.6, SH-D: the login page works without JavaScript: the 个人 and 法人 tabs are links, each
/// a form posting to /login (法人 with account_kind=legal_person); sign-up keeps the request;
/// password reset, user agreement and privacy are linked.
pub async fn login_tabs(c: &Rp) -> Check {
    let b = browser()?;
    let first = c.get(&b, &c.authorize_url(WEB, WEB_REDIRECT, "openid", None)).await?;
    let login = first.location.ok_or("no redirect to the login page")?;
    let req = login.strip_prefix("/login?req=").ok_or(format!("redirected to {login}"))?.to_owned();
    let person = c.get(&b, &login).await?;
    ensure(!person.body.contains("<script"), "the login page needs JavaScript")?;
    let form = HtmlForm::find(&person.body, "/login")?;
    ensure(form.field("account_kind")? == "natural_person", "个人 form: account_kind")?;
    for link in [
        format!("href=\"/login?req={req}&amp;kind=legal_person\""),
        format!("href=\"/signup?req={req}\""),
        "href=\"/password/reset\"".to_owned(),
        "href=\"/agreement\"".to_owned(),
        "href=\"/privacy\"".to_owned(),
    ] {
        ensure(person.body.contains(&link), format!("no {link} on the login page: {}", snippet(&person.body)))?;
    }
    let legal = c.get(&b, &format!("{login}&kind=legal_person")).await?;
    let form = HtmlForm::find(&legal.body, "/login")?;
    ensure(form.field("account_kind")? == "legal_person", "法人 form: account_kind")?;
    ensure(legal.body.contains("法人登录") && legal.body.contains("个人登录"), "tab names")
}

/// SH-8.2: `phone` is sensitive: a client that asks for no consent still gets the consent page,
/// which marks it; `prompt=none` gets consent_required; after allowing, a code.
pub async fn sensitive_consent(c: &Rp) -> Check {
    let b = browser()?;
    let url = c.authorize_url(WEB, WEB_REDIRECT, "openid phone", None);
    let page = c.authenticate(&b, &url).await?;
    ensure(page.status == 200, format!("expected the consent page, got {} {:?}", page.status, page.location))?;
    ensure(
        page.body.contains("data-scope=\"phone\"><span class=\"badge\">敏感信息</span>您的手机号码"),
        format!("phone not marked sensitive: {}", snippet(&page.body)),
    )?;
    let silent = c.get(&b, &format!("{url}&prompt=none")).await?;
    let q = silent.redirect_query(&format!("{WEB_REDIRECT}?"))?;
    ensure(q.get("error").map(String::as_str) == Some("consent_required"), format!("prompt=none: {q:?}"))?;
    // The prompt=none request replaced nothing: the consent page's request is answered.
    let form = HtmlForm::find(&page.body, "/consent")?;
    let answer = c.post_form(&b, "/consent", &form.submission(&[("decision", "allow")])).await?;
    let q = answer.redirect_query(&format!("{WEB_REDIRECT}?"))?;
    ensure(q.contains_key("code"), format!("no code after consent: {q:?}"))
}
