//! SCIM 2.0 at /scim/v2 (issue 12): discovery, Users and Groups with create, read, replace,
//! PATCH, delete, filters, sorting, paging, projection, ETags, Bulk, SCIM errors; visible scope
//! per application (SH-6.2.4a); the change feed (SH-6.3.5). Both stores.

use reqwest::{Method as M, StatusCode};
use serde_json::{Value, json};

use crate::lifecycle::{application, call, office_evidence};
use crate::support::flow;
use crate::support::server::{Backend, TestServer};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const TZU: &str = "urn:tongzheng:params:scim:schemas:extension:directory:2.0:User";
const TZG: &str = "urn:tongzheng:params:scim:schemas:extension:directory:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

pub(crate) struct Scim<'a> {
    pub(crate) s: &'a TestServer,
    pub(crate) token: String,
}

impl Scim<'_> {
    async fn send(&self, method: M, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut r = self.s.http.request(method, self.s.url(&format!("/scim/v2{path}"))).bearer_auth(&self.token);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.header("content-type", "application/scim+json").body(b.to_string());
        }
        r.send().await.unwrap()
    }
    /// A call expected to answer `status`; its JSON body (Null when empty).
    pub(crate) async fn ok(&self, method: M, path: &str, body: Option<Value>, status: StatusCode) -> Value {
        let r = self.send(method.clone(), path, body, &[]).await;
        let got = r.status();
        let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let text = r.text().await.unwrap();
        assert_eq!(got, status, "{method} {path}: {text}");
        if text.is_empty() {
            return Value::Null;
        }
        assert_eq!(ct.as_deref(), Some("application/scim+json"), "RFC 7644 s3.1 media type");
        serde_json::from_str(&text).unwrap()
    }
    /// A call expected to fail with `status` and `scim_type` (RFC 7644 s3.12).
    pub(crate) async fn err(
        &self,
        method: M,
        path: &str,
        body: Option<Value>,
        status: u16,
        scim_type: Option<&str>,
    ) -> Value {
        let v = self.ok(method, path, body, StatusCode::from_u16(status).unwrap()).await;
        assert_eq!(v["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]), "{v}");
        assert_eq!(v["status"], status.to_string(), "{v}");
        assert_eq!(v["scimType"].as_str(), scim_type, "{v}");
        v
    }
    pub(crate) async fn list(&self, path: &str) -> Value {
        self.ok(M::GET, path, None, StatusCode::OK).await
    }
}

pub(crate) fn user(name: &str) -> Value {
    let n: u32 = name.bytes().map(u32::from).fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b)) % 10_000;
    let phone =
        if name == "bjensen" { "+86 138 0000 1234".to_owned() } else { format!("+86 139 1{n:03} {:04}", n % 7919) };
    json!({
        "schemas": [USER, ENT],
        "userName": name,
        "externalId": format!("ext-{name}"),
        "name": {"familyName": "张", "givenName": name, "formatted": format!("张 {name}")},
        "displayName": format!("张{name}"),
        "title": "科员",
        "active": true,
        "emails": [{"value": format!("{name}@example.gov.cn"), "type": "work", "primary": true},
                   {"value": format!("{name}@home.example"), "type": "home"}],
        "phoneNumbers": [{"value": phone, "type": "mobile"}],
        ENT: {"employeeNumber": format!("E-{name}"), "department": "办公室"},
    })
}

pub(crate) fn group(name: &str, parent: Option<&str>, members: &[&str]) -> Value {
    let mut ext = json!({"kind": if parent.is_some() { "department" } else { "unit" }, "code": format!("C-{name}")});
    if let Some(p) = parent {
        ext["parent"] = json!(p);
    }
    json!({
        "schemas": [GROUP, TZG],
        "displayName": name,
        "members": members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>(),
        TZG: ext,
    })
}

pub(crate) fn ids(list: &Value) -> Vec<String> {
    list["Resources"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

pub(crate) async fn admin(s: &TestServer) -> Scim<'_> {
    // The dev admin-cli holds the write scope: a token without `scope` can do everything.
    Scim { s, token: flow::admin_token(s).await }
}

// RFC 7644 s4: discovery; s3.12 errors; auth by our own tokens.
async fn discovery_and_auth(b: Backend) {
    let s = TestServer::start(b).await;
    let a = admin(&s).await;
    let cfg = a.list("/ServiceProviderConfig").await;
    assert_eq!(cfg["patch"]["supported"], true);
    assert_eq!(cfg["bulk"]["maxOperations"], 1000);
    assert_eq!(cfg["filter"]["maxResults"], 1000);
    assert_eq!(cfg["etag"]["supported"], true);
    assert_eq!(cfg["authenticationSchemes"][0]["type"], "oauthbearertoken");
    let schemas = a.list("/Schemas").await;
    let schema_ids: Vec<&str> =
        schemas["Resources"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    for want in [USER, GROUP, ENT, TZU, TZG] {
        assert!(schema_ids.contains(&want), "{want} documented in /Schemas");
    }
    let tree = a.list(&format!("/Schemas/{TZG}")).await;
    let names: Vec<&str> = tree["attributes"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["parent", "code", "kind", "order", "status", "ancestors"]);
    let types = a.list("/ResourceTypes").await;
    assert_eq!(types["totalResults"], 2);
    assert_eq!(a.list("/ResourceTypes/User").await["schemaExtensions"][0]["schema"], ENT);
    // s4: no filtering on discovery endpoints.
    a.err(M::GET, "/Schemas?filter=id%20pr", None, 403, None).await;
    a.err(M::GET, "/Nope", None, 404, None).await;
    a.err(M::GET, "/Users/unknown-id", None, 404, None).await;
    // RFC 6750 s3: no token, a bad token, a token without a directory scope.
    let r = s.http.get(s.url("/scim/v2/Users")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let bad = Scim { s: &s, token: "not-a-token".into() };
    bad.err(M::GET, "/Users", None, 401, None).await;
    let auditor = s
        .http
        .post(s.url("/token"))
        .basic_auth("auditor-cli", Some("auditor-cli-secret-0123456789abcdef"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let aud = Scim { s: &s, token: auditor["access_token"].as_str().unwrap().to_owned() };
    aud.err(M::GET, "/Users", None, 403, None).await;
    // Bad bodies.
    let r =
        a.s.http
            .post(s.url("/scim/v2/Users"))
            .bearer_auth(&a.token)
            .header("content-type", "application/scim+json")
            .body("{not json")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["scimType"], "invalidSyntax");
    let r =
        a.s.http
            .post(s.url("/scim/v2/Users"))
            .bearer_auth(&a.token)
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

// RFC 7644 s3.3, s3.4.1, s3.5.1, s3.5.2, s3.6, s3.14; RFC 7643 s4.1, s4.3.
async fn users_lifecycle(b: Backend) {
    let s = TestServer::start(b).await;
    let a = admin(&s).await;
    let r = a.send(M::POST, "/Users", Some(user("bjensen")), &[]).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("{}/scim/v2/Users/{id}", s.base));
    assert_eq!(created["meta"]["location"], location);
    assert_eq!(created["meta"]["version"], etag);
    assert_eq!(created["meta"]["resourceType"], "User");
    assert!(created["meta"]["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(created["userName"], "bjensen");
    assert_eq!(created["name"]["familyName"], "张");
    assert_eq!(created[ENT]["employeeNumber"], "E-bjensen");
    assert!(created.get("password").is_none());
    // The dev admin holds the sensitive scope: phone numbers in clear.
    assert_eq!(created["phoneNumbers"][0]["value"], "+86 138 0000 1234");
    // The same person as the one who logs in (one account, not a copy).
    let u = tongzheng::users::get(&s.state.store, &id).await.unwrap().unwrap();
    assert_eq!((u.username.as_str(), u.email.as_deref()), ("bjensen", Some("bjensen@example.gov.cn")));
    assert_eq!(u.phone(s.state.keys.data()).as_deref(), Some("+86 138 0000 1234"));

    // s3.3: uniqueness of userName.
    a.err(M::POST, "/Users", Some(user("bjensen")), 409, Some("uniqueness")).await;
    // Schema checks: unknown attribute, wrong type, missing userName, two primaries, long values.
    let mut bad = user("x1");
    bad["favouriteColour"] = json!("blue");
    a.err(M::POST, "/Users", Some(bad), 400, Some("invalidValue")).await;
    let mut bad = user("x2");
    bad["active"] = json!("yes");
    a.err(M::POST, "/Users", Some(bad), 400, Some("invalidValue")).await;
    a.err(M::POST, "/Users", Some(json!({"schemas": [USER]})), 400, Some("invalidValue")).await;
    let mut bad = user("x3");
    bad["emails"] = json!([{"value": "a@b", "primary": true}, {"value": "c@d", "primary": true}]);
    a.err(M::POST, "/Users", Some(bad), 400, Some("invalidValue")).await;
    let mut bad = user("x4");
    bad["title"] = json!("长".repeat(5000));
    a.err(M::POST, "/Users", Some(bad), 400, Some("invalidValue")).await;
    a.err(M::POST, "/Users", Some(json!({"userName": "noschemas"})), 400, Some("invalidValue")).await;

    // s3.14: ETags. If-None-Match with the version: 304; If-Match with another: 412.
    let r = a.send(M::GET, &format!("/Users/{id}"), None, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let stale = r#"W/"0000""#;
    let patch = json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "处长"}]});
    let r = a.send(M::PATCH, &format!("/Users/{id}"), Some(patch.clone()), &[("if-match", stale)]).await;
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let r = a.send(M::PATCH, &format!("/Users/{id}"), Some(patch), &[("if-match", &etag)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let new_etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);
    assert_eq!(r.json::<Value>().await.unwrap()["title"], "处长");

    // s3.5.2: PATCH add / replace / remove with paths and value filters.
    let ops = json!({"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "bj@work.example"},
        {"op": "add", "path": "emails", "value": [{"value": "bj@other.example", "type": "other"}]},
        {"op": "remove", "path": "emails[type eq \"home\"]"},
        {"op": "add", "path": "name.middleName", "value": "X"},
        {"op": "replace", "path": format!("{ENT}:department"), "value": "财务处"},
        {"op": "add", "value": {"nickName": "BJ", "name.honorificPrefix": "Ms."}},
        {"op": "replace", "path": "active", "value": "False"},
        {"op": "remove", "path": "title"},
    ]});
    let v = a.ok(M::PATCH, &format!("/Users/{id}"), Some(ops), StatusCode::OK).await;
    let emails: Vec<&str> = v["emails"].as_array().unwrap().iter().map(|e| e["value"].as_str().unwrap()).collect();
    assert_eq!(emails, ["bj@work.example", "bj@other.example"]);
    assert_eq!(v["name"]["middleName"], "X");
    assert_eq!(v["name"]["givenName"], "bjensen", "other sub-attributes untouched");
    assert_eq!(v["name"]["honorificPrefix"], "Ms.");
    assert_eq!(v[ENT]["department"], "财务处");
    assert_eq!(v[ENT]["employeeNumber"], "E-bjensen");
    assert_eq!((v["nickName"].as_str(), v["active"].as_bool()), (Some("BJ"), Some(false)));
    assert!(v.get("title").is_none());
    assert!(!tongzheng::users::get(&s.state.store, &id).await.unwrap().unwrap().enabled, "active drives login");
    // PATCH errors: noTarget, invalidPath, mutability (read-only and immutable), atomicity.
    let p = |ops: Value| json!({"schemas": [PATCH], "Operations": ops});
    let url = format!("/Users/{id}");
    a.err(
        M::PATCH,
        &url,
        Some(p(json!([{"op": "replace", "path": "emails[type eq \"fax\"].value", "value": "x"}]))),
        400,
        Some("noTarget"),
    )
    .await;
    a.err(M::PATCH, &url, Some(p(json!([{"op": "remove"}]))), 400, Some("noTarget")).await;
    a.err(M::PATCH, &url, Some(p(json!([{"op": "replace", "path": "nosuch", "value": 1}]))), 400, Some("invalidPath"))
        .await;
    a.err(
        M::PATCH,
        &url,
        Some(p(json!([{"op": "replace", "path": "emails[type eq", "value": 1}]))),
        400,
        Some("invalidPath"),
    )
    .await;
    a.err(M::PATCH, &url, Some(p(json!([{"op": "replace", "path": "id", "value": "x"}]))), 400, Some("mutability"))
        .await;
    a.err(M::PATCH, &url, Some(p(json!([{"op": "replace", "path": "groups", "value": []}]))), 400, Some("mutability"))
        .await;
    a.err(
        M::PATCH,
        &url,
        Some(p(json!([{"op": "replace", "path": "userName", "value": "other"}]))),
        400,
        Some("mutability"),
    )
    .await;
    a.err(M::PATCH, &url, Some(p(json!([{"op": "jump", "path": "title"}]))), 400, Some("invalidSyntax")).await;
    a.err(M::PATCH, &url, Some(json!({"Operations": []})), 400, Some("invalidSyntax")).await;
    let before = a.list(&url).await;
    a.err(
        M::PATCH,
        &url,
        Some(p(json!([
        {"op": "replace", "path": "nickName", "value": "changed"},
        {"op": "replace", "path": "emails[type eq \"fax\"].value", "value": "x"}]))),
        400,
        Some("noTarget"),
    )
    .await;
    assert_eq!(a.list(&url).await["nickName"], before["nickName"], "a failed PATCH changes nothing");

    // s3.5.1: PUT replaces; a masked phone read back keeps the stored number.
    let mut put = user("bjensen");
    put["phoneNumbers"] = json!([{"value": "+86 *******1234", "type": "mobile"}]);
    put.as_object_mut().unwrap().remove("title");
    let v = a.ok(M::PUT, &url, Some(put), StatusCode::OK).await;
    assert!(v.get("nickName").is_none(), "PUT clears what it omits");
    let u = tongzheng::users::get(&s.state.store, &id).await.unwrap().unwrap();
    assert_eq!(u.phone(s.state.keys.data()).as_deref(), Some("+86 138 0000 1234"));
    let mut renamed = user("someone-else");
    renamed["externalId"] = json!("ext-bjensen");
    a.err(M::PUT, &url, Some(renamed), 400, Some("mutability")).await;

    // Lists: filters, sort, paging, projection (s3.4.2).
    for n in ["adams", "baker", "carter", "davis"] {
        a.ok(M::POST, "/Users", Some(user(n)), StatusCode::CREATED).await;
    }
    let all = a.list("/Users").await;
    assert_eq!(all["totalResults"], 6, "the 5 created and the seeded demo user");
    assert_eq!(all["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"]));
    let q = |f: &str| format!("/Users?filter={}", urlencode(f));
    assert_eq!(a.list(&q(r#"userName eq "CARTER""#)).await["totalResults"], 1, "caseExact false");
    assert_eq!(a.list(&q(r#"externalId eq "ext-carter""#)).await["totalResults"], 1);
    assert_eq!(a.list(&q(r#"externalId eq "EXT-carter""#)).await["totalResults"], 0, "caseExact true");
    assert_eq!(a.list(&q(r#"userName sw "b""#)).await["totalResults"], 2);
    assert_eq!(a.list(&q(r#"userName sw "b" and not (userName eq "baker")"#)).await["totalResults"], 1);
    assert_eq!(a.list(&q(r#"userName eq "adams" or userName eq "davis""#)).await["totalResults"], 2);
    assert_eq!(a.list(&q(r#"emails[type eq "work" and value co "carter@"]"#)).await["totalResults"], 1);
    assert_eq!(a.list(&q(r#"emails co "home.example""#)).await["totalResults"], 5);
    let titled = a.list(&q(r#"name.familyName eq "张" and title pr"#)).await;
    assert_eq!(titled["totalResults"], 4, "{titled}");
    assert_eq!(a.list(&q(&format!(r#"{ENT}:employeeNumber ew "avis""#))).await["totalResults"], 1);
    assert_eq!(a.list(&q(r#"meta.created gt "2000-01-01T00:00:00Z""#)).await["totalResults"], 6);
    assert_eq!(a.list(&q("active eq false")).await["totalResults"], 0);
    a.err(M::GET, &q("active gt true"), None, 400, Some("invalidFilter")).await;
    a.err(M::GET, &q(r#"nosuch eq "x""#), None, 400, Some("invalidFilter")).await;
    a.err(M::GET, &q(r#"userName eq "x"#), None, 400, Some("invalidFilter")).await;
    a.err(M::GET, &q("password pr"), None, 400, Some("invalidFilter")).await;
    let sorted = a.list("/Users?sortBy=userName&sortOrder=descending&startIndex=2&count=2").await;
    let names: Vec<&str> =
        sorted["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap()).collect();
    assert_eq!(names, ["davis", "carter"], "descending: demo, davis, carter, ...");
    assert_eq!(
        (sorted["startIndex"].as_i64(), sorted["itemsPerPage"].as_i64(), sorted["totalResults"].as_i64()),
        (Some(2), Some(2), Some(6))
    );
    let sorted = a.list(&format!("{}&sortBy=name.givenName", q(r#"userName sw "b" or userName sw "c""#))).await;
    let names: Vec<&str> =
        sorted["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap()).collect();
    assert_eq!(names, ["baker", "bjensen", "carter"]);
    assert_eq!(a.list("/Users?count=0").await["Resources"], json!([]));
    a.err(M::GET, "/Users?count=abc", None, 400, Some("invalidValue")).await;
    a.err(M::GET, "/Users?sortBy=nosuch", None, 400, Some("invalidValue")).await;
    let projected = a.list(&format!("{}&attributes=userName,name.givenName", q(r#"userName eq "adams""#))).await;
    let r0 = &projected["Resources"][0];
    assert_eq!(r0["name"], json!({"givenName": "adams"}));
    assert!(r0.get("emails").is_none() && r0["id"].is_string() && r0["schemas"].is_array(), "{r0}");
    let excluded = a.list(&format!("/Users/{id}?excludedAttributes=emails,{ENT}")).await;
    assert!(excluded.get("emails").is_none() && excluded.get(ENT).is_none() && excluded["userName"].is_string());
    // s3.4.3: POST .search.
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"d\"", "attributes": ["userName"], "sortBy": "userName", "count": 10});
    let found = a.ok(M::POST, "/Users/.search", Some(search), StatusCode::OK).await;
    let names: Vec<&str> =
        found["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap()).collect();
    assert_eq!(names, ["davis", "demo"]);

    // s3.6: delete; then 404; the login account is gone too.
    a.ok(M::DELETE, &url, None, StatusCode::NO_CONTENT).await;
    a.err(M::GET, &url, None, 404, None).await;
    assert!(tongzheng::users::get(&s.state.store, &id).await.unwrap().is_none());
    a.err(M::DELETE, &url, None, 404, None).await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// RFC 7643 s4.2 with the tree extension; SH-6.2.4a moves and deletes.
async fn groups_tree(b: Backend) {
    let s = TestServer::start(b).await;
    let a = admin(&s).await;
    let alice =
        a.ok(M::POST, "/Users", Some(user("alice")), StatusCode::CREATED).await["id"].as_str().unwrap().to_owned();
    let bob = a.ok(M::POST, "/Users", Some(user("bob")), StatusCode::CREATED).await["id"].as_str().unwrap().to_owned();
    let unit = a.ok(M::POST, "/Groups", Some(group("市政府", None, &[])), StatusCode::CREATED).await;
    let unit_id = unit["id"].as_str().unwrap().to_owned();
    assert_eq!(unit[TZG]["kind"], "unit");
    let dept = a.ok(M::POST, "/Groups", Some(group("办公厅", Some(&unit_id), &[&alice])), StatusCode::CREATED).await;
    let dept_id = dept["id"].as_str().unwrap().to_owned();
    assert_eq!(dept[TZG]["ancestors"], json!([unit_id]));
    assert_eq!(dept["members"][0]["value"], alice);
    assert_eq!(dept["members"][0]["display"], "张alice");
    // The person's groups and memberships follow.
    let al = a.list(&format!("/Users/{alice}")).await;
    assert_eq!(al["groups"][0]["value"], dept_id);
    assert_eq!(al[TZU]["memberships"][0]["display"], "办公厅");
    // Titles and order per membership through the user extension.
    let ops = json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": format!("{TZU}:memberships[value eq \"{dept_id}\"].title"), "value": "主任"}]});
    let al = a.ok(M::PATCH, &format!("/Users/{alice}"), Some(ops), StatusCode::OK).await;
    assert_eq!(al[TZU]["memberships"][0]["title"], "主任");
    // Members by PATCH (add, remove with a value filter).
    let add = json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": bob}]}]});
    let g = a.ok(M::PATCH, &format!("/Groups/{dept_id}"), Some(add), StatusCode::OK).await;
    assert_eq!(g["members"].as_array().unwrap().len(), 2);
    let f = a.list(&format!("/Groups?filter={}", urlencode(&format!(r#"members.value eq "{bob}""#)))).await;
    assert_eq!(ids(&f), std::slice::from_ref(&dept_id));
    let f = a.list(&format!("/Users?filter={}", urlencode(&format!(r#"groups.value eq "{dept_id}""#)))).await;
    assert_eq!(f["totalResults"], 2);
    let rm =
        json!({"schemas": [PATCH], "Operations": [{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}]});
    let g = a.ok(M::PATCH, &format!("/Groups/{dept_id}"), Some(rm), StatusCode::OK).await;
    assert_eq!(g["members"].as_array().unwrap().len(), 1);
    a.err(M::PATCH, &format!("/Groups/{dept_id}"), Some(json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": "nobody"}]}]})), 400, Some("invalidValue")).await;
    // Tree filters and codes.
    let f = a.list(&format!("/Groups?filter={}", urlencode(&format!(r#"{TZG}:parent eq "{unit_id}""#)))).await;
    assert_eq!(ids(&f), std::slice::from_ref(&dept_id));
    let f = a.list(&format!("/Groups?filter={}", urlencode(&format!(r#"{TZG}:code eq "c-市政府""#)))).await;
    assert_eq!(ids(&f), std::slice::from_ref(&unit_id));
    a.err(M::POST, "/Groups", Some(group("市政府", None, &[])), 409, Some("uniqueness")).await;
    // Cycles refused; a move carries the subtree.
    let sub = a.ok(M::POST, "/Groups", Some(group("秘书处", Some(&dept_id), &[])), StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cyc =
        json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": format!("{TZG}:parent"), "value": sub}]});
    a.err(M::PATCH, &format!("/Groups/{dept_id}"), Some(cyc), 400, Some("invalidValue")).await;
    let other = a.ok(M::POST, "/Groups", Some(group("发改委", None, &[])), StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mv =
        json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": format!("{TZG}:parent"), "value": other}]});
    a.ok(M::PATCH, &format!("/Groups/{dept_id}"), Some(mv), StatusCode::OK).await;
    assert_eq!(a.list(&format!("/Groups/{sub}")).await[TZG]["ancestors"], json!([other, dept_id]));
    // Deletes with departments or people are refused unless cascading.
    a.err(M::DELETE, &format!("/Groups/{other}"), None, 409, None).await;
    a.err(M::DELETE, &format!("/Groups/{dept_id}"), None, 409, None).await;
    a.ok(M::DELETE, &format!("/Groups/{other}?cascade=true"), None, StatusCode::NO_CONTENT).await;
    a.err(M::GET, &format!("/Groups/{sub}"), None, 404, None).await;
    let al = a.list(&format!("/Users/{alice}")).await;
    assert!(al.get("groups").is_none(), "the person stays, without the membership: {al}");
}

/// An application whose client reads the directory within `scope` (approved, so its
/// client_credentials work): its client's SCIM handle.
pub(crate) async fn app_reader<'a>(s: &'a TestServer, admin_token: &str, id: &str, scope: &[&str]) -> Scim<'a> {
    let mut app = application(id, "office");
    app["visible_scope"] = json!(scope);
    app["grants"]["scopes"] = json!(["tongzheng:directory.read"]);
    app["grants"]["grant_types"] = json!(["client_credentials"]);
    app["grants"]["redirect_uris"] = json!([]);
    let r = call(s, admin_token, M::POST, "/admin/v1/applications", Some(app)).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
    let review = json!({"reviewer": "审核员", "decision": "approve", "evidence": office_evidence()});
    let r = call(s, admin_token, M::POST, &format!("/admin/v1/applications/{id}/reviews"), Some(review)).await;
    let done: Value = r.json().await.unwrap();
    let secret = done["credentials"]["client_secret"].as_str().unwrap().to_owned();
    let t: Value = s
        .http
        .post(s.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Scim { s, token: t["access_token"].as_str().unwrap().to_owned() }
}

// SH-6.2.4a: each application sees its visible scope (and subtrees) and the people in it;
// everything else is 404. SH-6.3.5: its change feed shows only that, a move out as a removal.
async fn visible_scope(b: Backend) {
    let s = TestServer::start(b).await;
    let a = admin(&s).await;
    let make = |name: &str, parent: Option<String>| group(name, parent.as_deref(), &[]);
    let tax = a.ok(M::POST, "/Groups", Some(make("税务局", None)), StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tax_dept = a.ok(M::POST, "/Groups", Some(make("征管科", Some(tax.clone()))), StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let health = a.ok(M::POST, "/Groups", Some(make("卫健委", None)), StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut t = user("tax.clerk");
    t[TZU] = json!({"memberships": [{"value": tax_dept, "title": "科员"}]});
    let tax_user = a.ok(M::POST, "/Users", Some(t), StatusCode::CREATED).await["id"].as_str().unwrap().to_owned();
    let mut h = user("doctor");
    h[TZU] = json!({"memberships": [{"value": health}]});
    let health_user = a.ok(M::POST, "/Users", Some(h), StatusCode::CREATED).await["id"].as_str().unwrap().to_owned();

    flow::catalogue_scope(&s, &a.token, "tongzheng:directory.read").await;
    let tax_app = app_reader(&s, &a.token, "tax-app", &[&tax]).await;
    let health_app = app_reader(&s, &a.token, "health-app", &[&health]).await;
    let cursor0 = tax_app.list("/Changes").await["cursor"].as_str().unwrap().to_owned();

    assert_eq!(ids(&tax_app.list("/Users").await), std::slice::from_ref(&tax_user));
    let mut tax_groups = ids(&tax_app.list("/Groups").await);
    tax_groups.sort();
    let mut want = vec![tax.clone(), tax_dept.clone()];
    want.sort();
    assert_eq!(tax_groups, want, "the scope and its subtree");
    assert_eq!(ids(&health_app.list("/Users").await), std::slice::from_ref(&health_user));
    tax_app.err(M::GET, &format!("/Users/{health_user}"), None, 404, None).await;
    tax_app.err(M::GET, &format!("/Groups/{health}"), None, 404, None).await;
    health_app.err(M::GET, &format!("/Users/{tax_user}"), None, 404, None).await;
    let f = format!("/Users?filter={}", urlencode(r#"userName eq "doctor""#));
    assert_eq!(tax_app.list(&f).await["totalResults"], 0, "a filter cannot reach outside the scope");
    // Phone numbers masked without the sensitive scope.
    let masked =
        tax_app.list(&format!("/Users/{tax_user}")).await["phoneNumbers"][0]["value"].as_str().unwrap().to_owned();
    assert!(masked.starts_with("+86 *******"), "{masked}");
    // Readers cannot write.
    tax_app.err(M::POST, "/Users", Some(user("intruder")), 403, None).await;
    tax_app.err(M::DELETE, &format!("/Users/{tax_user}"), None, 403, None).await;

    // The clerk moves to health: out of the tax app's scope (a removal there), into health's.
    let mv = json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": format!("{TZU}:memberships"), "value": [{"value": health}]}]});
    a.ok(M::PATCH, &format!("/Users/{tax_user}"), Some(mv), StatusCode::OK).await;
    tax_app.err(M::GET, &format!("/Users/{tax_user}"), None, 404, None).await;
    health_app.list(&format!("/Users/{tax_user}")).await;
    let feed = tax_app.list(&format!("/Changes?cursor={cursor0}")).await;
    let last = feed["changes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["kind"].as_str(), last["resource"].as_str(), last["id"].as_str()),
        (Some("deleted"), Some("User"), Some(tax_user.as_str())),
        "{feed}"
    );
    let hfeed = health_app.list(&format!("/Changes?cursor={cursor0}")).await;
    let last = hfeed["changes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["kind"].as_str(), last["id"].as_str()), (Some("created"), Some(tax_user.as_str())));
    assert!(hfeed["changes"].as_array().unwrap().iter().all(|c| c["id"] != tax_dept), "nothing of the tax subtree");
}

// SH-6.3.5: cursor paging, tombstones kept the retention (>= 30 days), then resync.
async fn change_feed(b: Backend) {
    let s = TestServer::start(b).await;
    let a = admin(&s).await;
    let start = a.list("/Changes").await;
    let u = a.ok(M::POST, "/Users", Some(user("temp")), StatusCode::CREATED).await["id"].as_str().unwrap().to_owned();
    let g = a.ok(M::POST, "/Groups", Some(group("临时", None, &[&u])), StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    a.ok(M::DELETE, &format!("/Users/{u}"), None, StatusCode::NO_CONTENT).await;
    let page = a.list(&format!("/Changes?cursor={}&count=2", start["cursor"].as_str().unwrap_or("c0"))).await;
    assert_eq!(page["changes"].as_array().unwrap().len(), 2);
    assert_eq!(page["more"], true);
    let rest = a.list(&format!("/Changes?cursor={}", page["cursor"].as_str().unwrap())).await;
    let kinds: Vec<(String, String)> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["changes"].as_array().unwrap())
        .map(|c| (c["kind"].as_str().unwrap().to_owned(), c["id"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(kinds.first().unwrap(), &("created".to_owned(), u.clone()));
    assert!(kinds.contains(&("created".to_owned(), g.clone())));
    assert_eq!(kinds.last().unwrap(), &("deleted".to_owned(), u.clone()), "the tombstone");
    let cursor = rest["cursor"].as_str().unwrap().to_owned();
    let mid = page["cursor"].as_str().unwrap().to_owned();
    // 29 days on: still there.
    s.clock.advance(29 * 86_400);
    let a = admin(&s).await;
    assert_eq!(a.list(&format!("/Changes?cursor={mid}")).await["changes"], rest["changes"]);
    // Past 30 days: trimmed; an old cursor must resync (410 with the head to continue from).
    s.clock.advance(2 * 86_400);
    let a = admin(&s).await;
    let gone = a.err(M::GET, &format!("/Changes?cursor={mid}"), None, 410, None).await;
    assert_eq!(gone["cursor"], cursor.as_str());
    a.err(M::GET, "/Changes?cursor=garbage", None, 410, None).await;
    // The head still works and sees new changes.
    a.ok(M::DELETE, &format!("/Groups/{g}"), None, StatusCode::NO_CONTENT).await;
    let after = a.list(&format!("/Changes?cursor={cursor}")).await;
    assert_eq!(after["changes"][0]["kind"], "deleted");
}

// RFC 7644 s3.7: bulkId references, failOnErrors, limits.
async fn bulk(b: Backend) {
    let s = TestServer::start_with(b, "[directory]\nbulk_max_operations = 5\n").await;
    let a = admin(&s).await;
    let req = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user("bulk1")},
        {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": group("批量", None, &["bulkId:u1"])},
        {"method": "POST", "path": "/Users", "bulkId": "dup", "data": user("bulk1")},
        {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "组长"}]}},
        {"method": "POST", "path": "/Groups", "bulkId": "g2", "data": group("引用失败", None, &["bulkId:nope"])},
    ]});
    let v = a.ok(M::POST, "/Bulk", Some(req), StatusCode::OK).await;
    let st: Vec<&str> = v["Operations"].as_array().unwrap().iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(st, ["201", "201", "409", "200", "409"]);
    assert_eq!(v["Operations"][2]["response"]["scimType"], "uniqueness");
    let g = v["Operations"][1]["location"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    let grp = a.list(&format!("/Groups/{g}")).await;
    assert_eq!(grp["members"][0]["display"], "张bulk1");
    // failOnErrors: stops after the first error.
    let req = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "failOnErrors": 1, "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": user("bulk1")},
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": user("bulk2")},
    ]});
    let v = a.ok(M::POST, "/Bulk", Some(req), StatusCode::OK).await;
    assert_eq!(v["Operations"].as_array().unwrap().len(), 1);
    assert_eq!(a.list(&format!("/Users?filter={}", urlencode(r#"userName eq "bulk2""#))).await["totalResults"], 0);
    // Over maxOperations: 413.
    let ops: Vec<Value> = (0..6).map(|i| json!({"method": "DELETE", "path": format!("/Users/x{i}")})).collect();
    let req = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops});
    a.err(M::POST, "/Bulk", Some(req), 413, None).await;
    a.err(M::POST, "/Bulk", Some(json!({"Operations": []})), 400, Some("invalidSyntax")).await;
}

per_backend!(discovery_and_auth, users_lifecycle, groups_tree, visible_scope, change_feed, bulk);
