//! The directory as an application's backend reads it (issue 12): SCIM 2.0 discovery, the
//! SH-A.2 server APIs (batch add organizations and users, get an organization, list
//! organizations, list an organization's users, get user info, page changes), visible scope per
//! application and the change feed, all over HTTP with the platform's own tokens.

use serde_json::{Value, json};

use crate::report::{Check, Runner, ensure};
use crate::rp::{ADMIN, ADMIN_SECRET, Rp, e};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const TZG: &str = "urn:tongzheng:params:scim:schemas:extension:directory:2.0:Group";
const TZU: &str = "urn:tongzheng:params:scim:schemas:extension:directory:2.0:User";

/// A SCIM call: `(status, body)`; errors must be SCIM errors (RFC 7644 s3.12).
async fn scim(c: &Rp, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Check<(u16, Value)> {
    let mut r = c.http.request(method, c.url(&format!("/scim/v2{path}"))).bearer_auth(token);
    if let Some(b) = body {
        r = r.header("content-type", "application/scim+json").body(b.to_string());
    }
    let r = r.send().await.map_err(e("SCIM"))?;
    let status = r.status().as_u16();
    let ctype = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if v != Value::Null {
        ensure(ctype == "application/scim+json", format!("media type {ctype}"))?;
    }
    if status >= 400 {
        ensure(
            v["status"].as_str() == Some(status.to_string().as_str())
                && v["schemas"][0] == "urn:ietf:params:scim:api:messages:2.0:Error",
            format!("not a SCIM error: {v}"),
        )?;
    }
    Ok((status, v))
}

/// What the checks share.
#[derive(Default)]
struct Made {
    unit: String,
    dept: String,
    person: String,
    cursor: String,
}

async fn discovery(c: &Rp, t: &str) -> Check {
    use reqwest::Method as M;
    let (s, cfg) = scim(c, t, M::GET, "/ServiceProviderConfig", None).await?;
    ensure(s == 200 && cfg["patch"]["supported"] == true && cfg["bulk"]["supported"] == true, format!("config {cfg}"))?;
    let (s, types) = scim(c, t, M::GET, "/ResourceTypes", None).await?;
    ensure(s == 200 && types["totalResults"] == 2, format!("resource types {types}"))?;
    let (s, schemas) = scim(c, t, M::GET, "/Schemas", None).await?;
    let ids: Vec<&str> = schemas["Resources"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["id"].as_str()).collect())
        .unwrap_or_default();
    ensure(s == 200 && ids.contains(&USER) && ids.contains(&GROUP) && ids.contains(&TZG), format!("schemas {ids:?}"))
}

async fn batch_add(c: &Rp, t: &str, m: &mut Made) -> Check {
    use reqwest::Method as M;
    let tag = openidconnect::CsrfToken::new_random()
        .secret()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(10)
        .collect::<String>();
    let bulk = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
        {"method": "POST", "path": "/Groups", "bulkId": "unit", "data": {"schemas": [GROUP, TZG], "displayName": format!("一致性单位{tag}"), TZG: {"kind": "unit"}}},
        {"method": "POST", "path": "/Groups", "bulkId": "dept", "data": {"schemas": [GROUP, TZG], "displayName": "办公室", TZG: {"kind": "department", "parent": "bulkId:unit"}}},
        {"method": "POST", "path": "/Users", "bulkId": "p", "data": {"schemas": [USER, TZU], "userName": format!("conf{tag}"), "displayName": "一致性用户", TZU: {"memberships": [{"value": "bulkId:dept", "title": "主任"}]}}},
    ]});
    let (s, v) = scim(c, t, M::POST, "/Bulk", Some(bulk)).await?;
    let statuses: Vec<&str> =
        v["Operations"].as_array().map(|a| a.iter().filter_map(|o| o["status"].as_str()).collect()).unwrap_or_default();
    ensure(s == 200 && statuses == ["201", "201", "201"], format!("bulk {v}"))?;
    let id = |i: usize| {
        v["Operations"][i]["location"].as_str().and_then(|l| l.rsplit('/').next()).unwrap_or_default().to_owned()
    };
    (m.unit, m.dept, m.person) = (id(0), id(1), id(2));
    Ok(())
}

async fn reads(c: &Rp, t: &str, m: &Made) -> Check {
    use reqwest::Method as M;
    let (s, g) = scim(c, t, M::GET, &format!("/Groups/{}", m.dept), None).await?;
    ensure(
        s == 200 && g[TZG]["parent"] == m.unit.as_str() && g["members"][0]["value"] == m.person.as_str(),
        format!("get organization {g}"),
    )?;
    let f = |q: &str| url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
    let (s, l) =
        scim(c, t, M::GET, &format!("/Groups?filter={}", f(&format!(r#"{TZG}:parent eq "{}""#, m.unit))), None).await?;
    ensure(s == 200 && l["totalResults"] == 1, format!("list organizations {l}"))?;
    let (s, l) =
        scim(c, t, M::GET, &format!("/Users?filter={}", f(&format!(r#"groups.value eq "{}""#, m.dept))), None).await?;
    ensure(
        s == 200 && l["totalResults"] == 1 && l["Resources"][0]["id"] == m.person.as_str(),
        format!("users of organization {l}"),
    )?;
    let (s, u) = scim(c, t, M::GET, &format!("/Users/{}", m.person), None).await?;
    ensure(
        s == 200 && u[TZU]["memberships"][0]["title"] == "主任" && u["meta"]["version"].is_string(),
        format!("user {u}"),
    )
}

async fn feed(c: &Rp, t: &str, m: &mut Made) -> Check {
    use reqwest::Method as M;
    let (s, head) = scim(c, t, M::GET, "/Changes?count=1000", None).await?;
    ensure(s == 200 || s == 410, format!("feed {head}"))?;
    m.cursor = head["cursor"].as_str().unwrap_or("c0").to_owned();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "displayName", "value": "改名"}]});
    let (s, _) = scim(c, t, M::PATCH, &format!("/Users/{}", m.person), Some(patch)).await?;
    ensure(s == 200, format!("patch {s}"))?;
    let (s, page) = scim(c, t, M::GET, &format!("/Changes?cursor={}", m.cursor), None).await?;
    let first = &page["changes"][0];
    ensure(s == 200 && first["kind"] == "updated" && first["id"] == m.person.as_str(), format!("changes {page}"))
}

async fn scope_isolation(c: &Rp, t: &str, m: &Made) -> Check {
    use reqwest::Method as M;
    // A client of no application with only the read scope sees nothing: 404, not 403.
    let (s, _) = scim(c, t, M::GET, "/Users?count=1", None).await?;
    ensure(s == 200, "admin list")?;
    let anon = c.http.get(c.url(&format!("/scim/v2/Users/{}", m.person))).send().await.map_err(e("SCIM"))?;
    ensure(anon.status() == 401, format!("no token: {}", anon.status()))
}

/// Runs the directory checks in order.
pub async fn run(c: &Rp, run: &mut Runner<'_>) {
    let token = match c.cc_token(ADMIN, ADMIN_SECRET, None).await {
        Ok(t) => t,
        Err(err) => {
            run.record(("SH-A.2", "RFC 7644 s4", "admin token for the directory"), Check::<()>::Err(err));
            return;
        }
    };
    let mut m = Made::default();
    run.record(
        (
            "SH-A.2",
            "RFC 7644 s4; RFC 7643 s5-s7",
            "SCIM discovery: ServiceProviderConfig, ResourceTypes, Schemas (tree extension documented)",
        ),
        discovery(c, &token).await,
    );
    let added = batch_add(c, &token, &mut m).await;
    run.record(
        (
            "SH-A.2, SH-6.2.4a",
            "RFC 7644 s3.7",
            "batch add organizations and users: Bulk with bulkId references (unit, department, person)",
        ),
        added,
    );
    run.record(
        (
            "SH-A.2, GB-6.4b",
            "RFC 7644 s3.4.1, s3.4.2.2",
            "get organization, list organizations, list users of an organization, get user info",
        ),
        reads(c, &token, &m).await,
    );
    run.record(
        ("SH-6.3.5, SH-A.2", "REQUIREMENTS.md SH-6.3.5", "change feed: a change after a cursor is paged in order"),
        feed(c, &token, &mut m).await,
    );
    run.record(
        ("SH-6.2.4a", "RFC 6750 s3; RFC 7644 s3.12", "the directory needs a token: 401 with a SCIM error"),
        scope_isolation(c, &token, &m).await,
    );
}
