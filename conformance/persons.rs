//! Natural and legal persons as an admin sees them over HTTP (HL-5.1, HL-6.1, SH-8.2): identity
//! documents and USCCs checked by their standards' check characters, sensitive numbers masked in
//! every view and found exactly through the blind index, admin verification, agents and roles,
//! RFC 7807 400s for malformed input. Checks run in order on one person and one company.

use reqwest::Method as M;
use serde_json::{Value, json};

use crate::report::{Check, Runner, ensure};
use crate::rp::{ADMIN, ADMIN_SECRET, Rp, e};

/// GB 11643: a resident ID card number ending in 1234 whose check digit is right.
const ID_NUMBER: &str = "110101199003171234";

async fn admin(c: &Rp, token: &str, method: M, path: &str, body: Option<Value>) -> Check<(u16, Value)> {
    let mut r = c.http.request(method, c.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.map_err(e("admin API"))?;
    let status = r.status().as_u16();
    let ctype = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if status >= 400 {
        ensure(ctype == "application/problem+json" && v["status"] == status, format!("not a problem: {status} {v}"))?;
    }
    Ok((status, v))
}

/// HL-5.1: the check digit decides; the stored person is a natural person with the document.
async fn natural_person(c: &Rp, t: &str) -> Check<String> {
    let body = |n: &str| json!({"username": "conf.person", "password": "conf-person-password", "name": "一致性", "id_number": n, "phone_number": "13812345678"});
    let (status, v) = admin(c, t, M::POST, "/admin/v1/users", Some(body("110101199003171235"))).await?;
    ensure(
        status == 400 && v["detail"].as_str().is_some_and(|d| d.contains("check digit")),
        format!("wrong check digit: {status} {v}"),
    )?;
    let (status, v) = admin(c, t, M::POST, "/admin/v1/users", Some(body(ID_NUMBER))).await?;
    ensure(status == 201, format!("create: {status} {v}"))?;
    ensure(v["user_type"] == "natural_person" && v["id_type"] == "resident_id_card", format!("{v}"))?;
    v["id"].as_str().map(str::to_owned).ok_or_else(|| format!("no id: {v}"))
}

/// SH-8.2: masked in the create, read, list and search views, never in clear.
async fn masked(c: &Rp, t: &str, id: &str) -> Check {
    let mut views = Vec::new();
    views.push(admin(c, t, M::GET, &format!("/admin/v1/users/{id}"), None).await?.1);
    let (_, list) = admin(c, t, M::GET, "/admin/v1/users?limit=500", None).await?;
    views.extend(list["users"].as_array().cloned().unwrap_or_default().into_iter().filter(|u| u["id"] == id));
    let (_, found) = admin(c, t, M::POST, "/admin/v1/users/search", Some(json!({"name": "一致性"}))).await?;
    views.extend(found["users"].as_array().cloned().unwrap_or_default());
    ensure(views.len() == 3, format!("expected 3 views, got {}", views.len()))?;
    for v in views {
        ensure(
            v["id_number"] == "110***********1234" && v["phone_number"] == "138****5678",
            format!("not masked: {v}"),
        )?;
        let text = v.to_string();
        ensure(!text.contains(ID_NUMBER) && !text.contains("13812345678"), format!("in clear: {text}"))?;
    }
    Ok(())
}

/// SH-8.2: exact lookup by a keyed hash, whatever the written form.
async fn blind_lookup(c: &Rp, t: &str, id: &str) -> Check {
    for q in [json!({"phone_number": "+86 138-1234-5678"}), json!({"id_number": ID_NUMBER.to_lowercase()})] {
        let (status, v) = admin(c, t, M::POST, "/admin/v1/users/search", Some(q.clone())).await?;
        let ids: Vec<&str> =
            v["users"].as_array().map(|a| a.iter().filter_map(|u| u["id"].as_str()).collect()).unwrap_or_default();
        ensure(status == 200 && ids == [id], format!("{q}: {status} {v}"))?;
    }
    Ok(())
}

/// HL-6.1: an admin's face verification reaches the strong level (acr 3), recording who and how.
async fn admin_verification(c: &Rp, t: &str, id: &str) -> Check {
    let (status, v) =
        admin(c, t, M::POST, &format!("/admin/v1/users/{id}/verification"), Some(json!({"method": "face"}))).await?;
    ensure(status == 200 && v["auth_level"] == "strong" && v["acr"] == "3", format!("{status} {v}"))?;
    ensure(
        v["verification"]["method"] == "face" && v["verification"]["by"] == format!("client:{ADMIN}"),
        format!("{v}"),
    )
}

/// HL-5.1: GB 32100 check character and the embedded GB 11714 organization code both decide;
/// agents must be natural persons on record; their roles are kept; a removed agent is gone.
async fn legal_person(c: &Rp, t: &str, agent: &str) -> Check {
    let body = |u: &str| json!({"name": "一致性测试有限公司", "uscc": u, "kind": "enterprise", "legal_representative": "法人代表", "agents": [{"user_id": agent, "role": "admin"}]});
    for bad in ["91110000600037341K", "91110108551385817A"] {
        let (status, v) = admin(c, t, M::POST, "/admin/v1/legal-persons", Some(body(bad))).await?;
        ensure(status == 400, format!("{bad}: {status} {v}"))?;
    }
    let (status, v) = admin(c, t, M::POST, "/admin/v1/legal-persons", Some(body("91110000600037341L"))).await?;
    ensure(status == 201 && v["agents"][0]["role"] == "admin", format!("create: {status} {v}"))?;
    let id = v["id"].as_str().unwrap_or_default().to_owned();
    let (status, v) =
        admin(c, t, M::PUT, &format!("/admin/v1/legal-persons/{id}/agents/not-a-person"), Some(json!({}))).await?;
    ensure(status == 400, format!("agent that is no person: {status} {v}"))?;
    let (_, v) = admin(c, t, M::GET, &format!("/admin/v1/legal-persons?agent={agent}"), None).await?;
    ensure(v["legal_persons"].as_array().is_some_and(|a| a.len() == 1), format!("acting for: {v}"))?;
    let (status, _) = admin(c, t, M::DELETE, &format!("/admin/v1/legal-persons/{id}/agents/{agent}"), None).await?;
    ensure(status == 200, format!("remove agent: {status}"))?;
    let (_, v) = admin(c, t, M::GET, &format!("/admin/v1/legal-persons?agent={agent}"), None).await?;
    ensure(v["legal_persons"].as_array().is_some_and(Vec::is_empty), format!("still an agent: {v}"))
}

/// SH-8.2, GB-6.9.3: malformed numbers and over-long fields are 400 problems, never a 5xx.
async fn bad_input(c: &Rp, t: &str) -> Check {
    let long = "长".repeat(300);
    for (method, path, body) in [
        (M::POST, "/admin/v1/users/search", json!({"phone_number": "010-1234"})),
        (M::POST, "/admin/v1/users/search", json!({"id_number": "H123", "id_type": "hk_macao_permit"})),
        (M::POST, "/admin/v1/users", json!({"username": "conf.bad", "password": "conf-bad-password", "name": long})),
        (
            M::POST,
            "/admin/v1/users",
            json!({"username": "conf.bad", "password": "conf-bad-password", "id_number": "1".repeat(5000)}),
        ),
        (
            M::POST,
            "/admin/v1/legal-persons",
            json!({"name": "x", "uscc": "9111000060003734", "kind": "enterprise", "legal_representative": "y"}),
        ),
    ] {
        let (status, v) = admin(c, t, method, path, Some(body.clone())).await?;
        ensure(status == 400, format!("{path} {body}: {status} {v}"))?;
    }
    Ok(())
}

/// Runs the checks in order.
pub async fn run(c: &Rp, run: &mut Runner<'_>) {
    let token = match c.cc_token(ADMIN, ADMIN_SECRET, None).await {
        Ok(t) => t,
        Err(err) => {
            run.record(("HL-5.1", "admin API", "admin token"), Check::<()>::Err(err));
            return;
        }
    };
    let t = token.as_str();
    let Some(id) = run.record(
        ("HL-5.1", "GB 11643-1999 s5", "natural person: resident ID number's check digit verified, 400 when wrong"),
        natural_person(c, t).await,
    ) else {
        return;
    };
    run.record(
        (
            "SH-8.2",
            "REQUIREMENTS.md SH-8.2",
            "ID and phone numbers masked (110***********1234, 138****5678) in every admin view",
        ),
        masked(c, t, &id).await,
    );
    run.record(
        (
            "SH-8.2",
            "REQUIREMENTS.md SH-8.2 (keyed hash)",
            "exact search by phone or ID number through the blind index, any written form",
        ),
        blind_lookup(c, t, &id).await,
    );
    run.record(
        ("HL-6.1", "REQUIREMENTS.md HL-6.1", "admin face verification: strong level, acr 3, who and how recorded"),
        admin_verification(c, t, &id).await,
    );
    run.record(
        (
            "HL-5.1",
            "GB 32100-2015 s4.3, GB 11714-1997",
            "legal person: USCC and embedded org code checked; agents and roles; removed agent gone",
        ),
        legal_person(c, t, &id).await,
    );
    run.record(
        ("SH-8.2, GB-6.9.3", "RFC 7807 s3", "malformed ID numbers, phones, USCCs and over-long fields: 400 problems"),
        bad_input(c, t).await,
    );
}
