//! The directory's organization tree (issue 12, SH-6.2.4a): moves carry the subtree and its
//! people, cycles are refused, deletes with departments or people are refused unless cascading;
//! the indexes and the change feed follow every write. Both stores.

use tongzheng::directory::feed::{self, ChangeKind, ResourceKind};
use tongzheng::directory::{Ctx, DirError, Org, OrgKind, View, tree};
use tongzheng::users::{self, User};

use crate::support::server::{Backend, TestServer};

fn org(name: &str, parent: Option<&Org>) -> Org {
    let mut o = Org::new(name.to_owned(), 0);
    o.parent = parent.map(|p| p.id.clone());
    o.kind = if parent.is_some() { OrgKind::Department } else { OrgKind::Unit };
    o
}

async fn subtree_ids(s: &TestServer, root: &Org) -> Vec<String> {
    let mut ids: Vec<String> =
        tree::descendants(&s.state.store, root).await.unwrap().into_iter().map(|o| o.id).collect();
    ids.sort();
    ids
}

// SH-6.2.4a: a department moves with its subtree and people; cycles refused.
async fn moves_and_cycles(b: Backend) {
    let s = TestServer::start(b).await;
    let store = &s.state.store;
    let ctx = Ctx { store, now: s.clock.now() };
    let unit = tree::create(ctx, org("市政府", None)).await.unwrap();
    let a = tree::create(ctx, org("办公厅", Some(&unit))).await.unwrap();
    let a1 = tree::create(ctx, org("秘书处", Some(&a))).await.unwrap();
    let a11 = tree::create(ctx, org("文电科", Some(&a1))).await.unwrap();
    let other = tree::create(ctx, org("发改委", None)).await.unwrap();
    assert_eq!(a11.ancestors, [unit.id.clone(), a.id.clone(), a1.id.clone()]);
    let mut want = vec![a.id.clone(), a1.id.clone(), a11.id.clone()];
    want.sort();
    assert_eq!(subtree_ids(&s, &unit).await, want);

    // A person in the deepest department.
    let mut u = User::new("li.si".into(), "李四".into(), String::new(), ctx.now);
    u.orgs = vec![a11.id.clone()];
    users::create(store, s.state.keys.data(), &u).await.unwrap();
    let scoped = View::Scoped([other.id.clone()].into());
    assert!(!scoped.sees_member_of(store, &u.orgs).await.unwrap());

    // Cycles: under itself, under a descendant.
    for bad_parent in [&a, &a1, &a11] {
        let mut m = a.clone();
        m.parent = Some(bad_parent.id.clone());
        assert!(matches!(tree::update(ctx, &a, m).await, Err(DirError::Cycle)), "cycle refused");
    }
    // Move 办公厅 under 发改委: the subtree and the person follow.
    let mut m = a.clone();
    m.parent = Some(other.id.clone());
    let moved = tree::update(ctx, &a, m).await.unwrap();
    assert_eq!(moved.ancestors, std::slice::from_ref(&other.id));
    let a11_now = tree::get(store, &a11.id).await.unwrap().unwrap();
    assert_eq!(a11_now.ancestors, [other.id.clone(), a.id.clone(), a1.id.clone()]);
    assert!(subtree_ids(&s, &unit).await.is_empty());
    assert_eq!(subtree_ids(&s, &other).await, want);
    assert!(scoped.sees_member_of(store, &u.orgs).await.unwrap(), "the person moved with the subtree");

    // The feed: the move is one subtree change; for a caller scoped to the old unit it is a removal.
    let old_view = View::Scoped([unit.id.clone()].into());
    let page = feed::read(store, &View::All, None, 100).await.unwrap().unwrap();
    let last = page.changes.last().unwrap();
    assert_eq!((last.kind, last.resource, last.subtree), (ChangeKind::Moved, ResourceKind::Group, true));
    let seen = feed::read(store, &old_view, None, 100).await.unwrap().unwrap();
    let last = seen.changes.last().unwrap();
    assert_eq!((last.kind, last.id.as_str()), (ChangeKind::Deleted, a.id.as_str()));
    let seen = feed::read(store, &scoped, None, 100).await.unwrap().unwrap();
    let last = seen.changes.last().unwrap();
    assert_eq!((last.kind, last.id.as_str()), (ChangeKind::Created, a.id.as_str()));
}

// SH-6.2.4a: deleting an organization with departments or people needs cascade.
async fn deletes(b: Backend) {
    let s = TestServer::start(b).await;
    let store = &s.state.store;
    let data = s.state.keys.data();
    let ctx = Ctx { store, now: s.clock.now() };
    let unit = tree::create(ctx, org("单位", None)).await.unwrap();
    let dept = tree::create(ctx, org("部门", Some(&unit))).await.unwrap();
    let mut u = User::new("wang.wu".into(), "王五".into(), String::new(), ctx.now);
    u.orgs = vec![dept.id.clone()];
    users::create(store, data, &u).await.unwrap();
    assert!(matches!(tree::delete(ctx, data, &unit.id, false).await, Err(DirError::NotEmpty("departments"))));
    assert!(matches!(tree::delete(ctx, data, &dept.id, false).await, Err(DirError::NotEmpty("people"))));
    // Unique code and external id.
    let mut dup = org("别名", None);
    dup.code = Some("X1".into());
    tree::create(ctx, dup).await.unwrap();
    let mut dup2 = org("另一个", None);
    dup2.code = Some("x1".into());
    assert!(matches!(tree::create(ctx, dup2).await, Err(DirError::Taken(_))));
    // Missing parent.
    let mut orphan = org("孤儿", None);
    orphan.parent = Some("nope".into());
    assert!(matches!(tree::create(ctx, orphan).await, Err(DirError::NotFound(_))));
    // Cascade: both go, the person stays without the membership.
    tree::delete(ctx, data, &unit.id, true).await.unwrap();
    assert!(tree::get(store, &unit.id).await.unwrap().is_none());
    assert!(tree::get(store, &dept.id).await.unwrap().is_none());
    let u = users::get(store, &u.id).await.unwrap().unwrap();
    assert!(u.orgs.is_empty());
    assert!(tree::member_ids(store, &dept.id).await.unwrap().is_empty());
}

per_backend!(moves_and_cycles, deletes);
