//! Changes of an application's visible scope in its change feed (issue 12, SH-6.2.4a,
//! SH-6.3.5): organizations that enter the scope appear as created, those that leave as
//! deleted, in order with the other changes, to that application only; the write survives a
//! crash between updating the application and appending the entry. Both stores.

use reqwest::{Method as M, StatusCode};
use serde_json::{Value, json};
use tongzheng::directory::View;
use tongzheng::directory::feed;
use tongzheng::directory::scope_change;

use crate::lifecycle::{application, call};
use crate::scim::{Scim, admin, app_reader, group};
use crate::support::flow;
use crate::support::server::{Backend, TestServer};

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Replaces application `id`'s visible scope through the admin API (same grant as
/// `app_reader` gave it).
pub(crate) async fn set_scope(s: &TestServer, admin_token: &str, id: &str, scope: &[&str]) {
    let mut app = application(id, "office");
    app["visible_scope"] = json!(scope);
    app["grants"]["scopes"] = json!(["tongzheng:directory.read"]);
    app["grants"]["grant_types"] = json!(["client_credentials"]);
    app["grants"]["redirect_uris"] = json!([]);
    let r = call(s, admin_token, M::PUT, &format!("/admin/v1/applications/{id}"), Some(app)).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

async fn new_group(a: &Scim<'_>, name: &str, parent: Option<&str>) -> String {
    a.ok(M::POST, "/Groups", Some(group(name, parent, &[])), StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn rename(a: &Scim<'_>, id: &str, name: &str) {
    let p = json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": name}]});
    a.ok(M::PATCH, &format!("/Groups/{id}"), Some(p), StatusCode::OK).await;
}

/// Every change after `cursor`, following the pages.
async fn all_after(c: &Scim<'_>, cursor: &str) -> Vec<Value> {
    let (mut out, mut cursor) = (Vec::new(), cursor.to_owned());
    loop {
        let page = c.list(&format!("/Changes?cursor={cursor}&count=2")).await;
        out.extend(page["changes"].as_array().unwrap().iter().cloned());
        cursor = page["cursor"].as_str().unwrap().to_owned();
        if page["more"] != true {
            return out;
        }
    }
}

fn brief(c: &Value) -> (String, String, bool) {
    (c["kind"].as_str().unwrap().to_owned(), c["id"].as_str().unwrap().to_owned(), c["scope"] == true)
}

// SH-6.2.4a, SH-6.3.5: the app's feed shows what entered its scope as created and what left
// as deleted (with subtrees), in order with the other changes; another app sees none of it.
async fn scope_change_in_feed(b: Backend) {
    let s = TestServer::start(b).await;
    let a = admin(&s).await;
    let tax = new_group(&a, "税务局", None).await;
    let tax_dept = new_group(&a, "征管科", Some(&tax)).await;
    let health = new_group(&a, "卫健委", None).await;
    flow::catalogue_scope(&s, &a.token, "tongzheng:directory.read").await;
    let app = app_reader(&s, &a.token, "scope-app", &[&tax]).await;
    let other = app_reader(&s, &a.token, "other-app", &[&tax]).await;
    let c0 = app.list("/Changes").await["cursor"].as_str().unwrap().to_owned();

    rename(&a, &health, "卫健委一").await;
    // The scope goes from the tax unit to its department and health: the unit leaves (its
    // subtree with it), the department comes back after it, health enters.
    set_scope(&s, &a.token, "scope-app", &[&tax_dept, &health]).await;
    rename(&a, &health, "卫健委二").await;
    // The same scope again announces nothing.
    set_scope(&s, &a.token, "scope-app", &[&health, &tax_dept]).await;
    rename(&a, &tax_dept, "征管一科").await;

    let seen = all_after(&app, &c0).await;
    let scoped: Vec<&Value> = seen.iter().filter(|c| c["scope"] == true).collect();
    let got: Vec<_> = scoped.iter().map(|c| brief(c)).collect();
    assert_eq!(got.first(), Some(&("deleted".to_owned(), tax.clone(), true)), "what left comes first: {seen:?}");
    let mut entered: Vec<_> = got.iter().skip(1).cloned().collect();
    entered.sort();
    let mut want = vec![("created".to_owned(), tax_dept.clone(), true), ("created".to_owned(), health.clone(), true)];
    want.sort();
    assert_eq!(entered, want, "{seen:?}");
    assert!(
        scoped.iter().all(|c| c["cursor"] == scoped[0]["cursor"] && c["subtree"] == true && c["resource"] == "Group")
    );
    // In order: the rename of health after the scope change comes after it, the department's
    // rename last.
    let pos = |kind: &str, id: &str| seen.iter().rposition(|c| brief(c) == (kind.to_owned(), id.to_owned(), false));
    let at_scope = seen.iter().position(|c| c["scope"] == true).unwrap();
    assert!(pos("updated", &health).unwrap() > at_scope, "{seen:?}");
    assert_eq!(pos("updated", &tax_dept), Some(seen.len() - 1), "{seen:?}");
    // The app now reads what its new scope holds, and not the unit.
    app.list(&format!("/Groups/{health}")).await;
    app.err(M::GET, &format!("/Groups/{tax}"), None, 404, None).await;
    // The other application's feed has no scope change; it does see its own scope's rename.
    let theirs = all_after(&other, &c0).await;
    assert!(theirs.iter().all(|c| c["scope"] != true && c["id"] != health), "{theirs:?}");
    assert!(theirs.iter().any(|c| brief(c) == ("updated".to_owned(), tax_dept.clone(), false)));
    // The admin's feed (everything) carries no app's scope changes either.
    let all = all_after(&a, &c0).await;
    assert!(all.iter().all(|c| c["scope"] != true), "{all:?}");
}

// SH-6.3.5: a crash after the application was stored but before the entry was appended is
// finished by recovery, once; a crash before the application was stored announces nothing.
async fn scope_change_survives_a_crash(b: Backend) {
    let s = TestServer::start(b).await;
    let store = &s.state.store;
    let a = admin(&s).await;
    let tax = new_group(&a, "税务局", None).await;
    let health = new_group(&a, "卫健委", None).await;
    flow::catalogue_scope(&s, &a.token, "tongzheng:directory.read").await;
    let reader = app_reader(&s, &a.token, "crash-app", &[&tax]).await;
    let view = View::Scoped([health.clone()].into());
    let head = feed::head(store).await.unwrap();
    let scoped = |page: feed::Page| page.changes.into_iter().filter(|c| c.scope).count();

    // Died after the intent, before the application: nothing happened, nothing is announced.
    let now = s.clock.now();
    let before = vec![tax.clone()];
    scope_change::begin(store, "crash-app", &before, std::slice::from_ref(&health), now).await.unwrap().unwrap();
    assert_eq!(scope_change::recover(store, now).await.unwrap(), 0, "the writer still has its grace");
    assert_eq!(scope_change::recover(store, now + scope_change::GRACE).await.unwrap(), 1);
    let page = feed::read_for(store, &view, Some("crash-app"), Some(&head), 100).await.unwrap().unwrap();
    assert_eq!(scoped(page), 0, "a change that never took effect is not announced");
    assert!(scope_change::pending(store, "crash-app").await.unwrap().is_none());

    // Died after the application was stored: recovery appends the entry, once.
    let intent =
        scope_change::begin(store, "crash-app", &before, std::slice::from_ref(&health), now).await.unwrap().unwrap();
    let mut app = tongzheng::apps::get(store, "crash-app").await.unwrap().unwrap();
    app.registration.visible_scope = vec![health.clone()];
    tongzheng::apps::put(store, &app).await.unwrap();
    assert_eq!(scope_change::recover(store, now + scope_change::GRACE).await.unwrap(), 1);
    // Died after appending, before dropping the intent: finishing again appends nothing.
    assert!(!scope_change::finish(store, &intent, &app.registration.visible_scope).await.unwrap());
    assert_eq!(scope_change::recover(store, now + scope_change::GRACE).await.unwrap(), 0);
    let page = feed::read_for(store, &view, Some("crash-app"), Some(&head), 100).await.unwrap().unwrap();
    let got: Vec<(String, bool)> =
        page.changes.iter().filter(|c| c.scope).map(|c| (c.id.clone(), c.kind == feed::ChangeKind::Created)).collect();
    assert_eq!(got, [(tax.clone(), false), (health.clone(), true)], "one entry: the unit left, health entered");
    // Through SCIM too.
    let c = Scim { s: &s, token: reader.token.clone() };
    let seen = all_after(&c, &head).await;
    assert_eq!(seen.iter().filter(|c| c["scope"] == true).count(), 2, "{seen:?}");
}

per_backend!(scope_change_in_feed, scope_change_survives_a_crash);
