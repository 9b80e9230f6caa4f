//! The SCIM operations on one resource type (RFC 7644 s3.2-s3.6): read, list, create, replace,
//! patch and delete, each through the directory's domain functions, each limited to the
//! caller's view (what it may not see is 404, never 403).

use serde_json::{Map, Value as Json, json};

use super::error::{ScimError, ScimType};
use super::filter::{self, AttrPath};
use super::resource::{self, Render};
use super::schema::{self, Resource};
use super::{eval, patch, project, query};
use crate::directory::people::{self, Membership, Person};
use crate::directory::{Ctx, Org, OrgKind, OrgStatus, View, index, tree};
use crate::sealing::DataKey;
use crate::store::{DynStore, IndexChange, keys};
use crate::users::{self, PasswordPool, User};

/// Advertised limits (ServiceProviderConfig).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Page size when `count` is absent.
    pub default_count: usize,
    /// Largest page (`filter.maxResults`).
    pub max_count: usize,
    /// Most candidates a filter without a usable index may read.
    pub scan_limit: usize,
    /// Bulk: most operations.
    pub bulk_max_operations: usize,
    /// Bulk: largest payload, bytes.
    pub bulk_max_payload: usize,
}

/// The SCIM service for one request: who asks, what they see, now.
pub struct Service<'a> {
    /// Store.
    pub store: &'a DynStore,
    /// Data key (sealed values).
    pub data: &'a DataKey,
    /// Password hashing.
    pub passwords: &'a PasswordPool,
    /// `{issuer}/scim/v2`.
    pub base: &'a str,
    /// Now.
    pub now: i64,
    /// What the caller sees.
    pub view: View,
    /// Whether phone and ID numbers are shown in clear.
    pub reveal: bool,
    /// Limits.
    pub limits: Limits,
}

/// List and projection parameters (RFC 7644 s3.4.2, s3.4.3, s3.9).
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// filter
    pub filter: Option<String>,
    /// sortBy
    pub sort_by: Option<String>,
    /// sortOrder
    pub sort_order: Option<String>,
    /// startIndex (1-based)
    pub start_index: Option<i64>,
    /// count
    pub count: Option<i64>,
    /// attributes
    pub attributes: Vec<String>,
    /// excludedAttributes
    pub excluded: Vec<String>,
}

/// A resource as answered: the (projected) JSON, its version and its location.
#[derive(Debug, Clone)]
pub struct Written {
    /// The resource.
    pub json: Json,
    /// Its version (weak ETag).
    pub etag: String,
    /// Its URI.
    pub location: String,
}

/// RFC 7644 s3.14: whether `If-Match` allows changing a resource whose version is `current`.
pub fn precondition(if_match: Option<&str>, current: &str) -> Result<(), ScimError> {
    let Some(h) = if_match else { return Ok(()) };
    if etag_listed(h, current) {
        Ok(())
    } else {
        Err(ScimError::status(412, "the resource changed (If-Match does not match its version)"))
    }
}

/// Whether an `If-Match`/`If-None-Match` header lists `etag` (or `*`), compared weakly.
pub fn etag_listed(header: &str, etag: &str) -> bool {
    let strip = |s: &str| s.trim().trim_start_matches("W/").trim_matches('"').to_owned();
    header.split(',').any(|t| t.trim() == "*" || strip(t) == strip(etag))
}

fn invalid(d: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidValue, d)
}

fn write_error(e: users::WriteError) -> ScimError {
    match e {
        users::WriteError::UsernameTaken => ScimError::taken("userName is taken"),
        users::WriteError::Duplicate(_) => ScimError::taken(e.to_string()),
        users::WriteError::Store(s) => ScimError::Store(s),
    }
}

impl Service<'_> {
    fn render(&self) -> Render<'_> {
        Render { base: self.base, data: self.data, reveal: self.reveal }
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx { store: self.store, now: self.now }
    }

    fn finish(&self, kind: Resource, json: Json, q: &Query) -> Written {
        let etag = json.pointer("/meta/version").and_then(Json::as_str).unwrap_or_default().to_owned();
        let location = json.pointer("/meta/location").and_then(Json::as_str).unwrap_or_default().to_owned();
        Written { json: project::apply(kind, json, &q.attributes, &q.excluded), etag, location }
    }

    /// Renders people, their memberships limited to what the caller sees.
    async fn render_users(&self, pairs: Vec<(User, Person)>) -> Result<Vec<(User, Json)>, ScimError> {
        let ids: Vec<String> = pairs
            .iter()
            .flat_map(|(u, _)| u.orgs.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut orgs = Vec::new();
        for chunk in ids.chunks(500) {
            orgs.extend(tree::get_many(self.store, chunk).await?);
        }
        let visible: Vec<Org> = orgs.into_iter().filter(|o| self.view.sees_org(o)).collect();
        let mut out = Vec::with_capacity(pairs.len());
        for (u, p) in pairs {
            if self.view != View::All && !u.orgs.iter().any(|o| visible.iter().any(|v| v.id == *o)) {
                continue;
            }
            let mut shown = u.clone();
            if self.view != View::All {
                shown.orgs.retain(|o| visible.iter().any(|v| v.id == *o));
            }
            let json = resource::user(self.render(), &shown, &p, &visible);
            out.push((u, json));
        }
        Ok(out)
    }

    async fn render_groups(&self, orgs: Vec<Org>, members: bool) -> Result<Vec<(Org, Json)>, ScimError> {
        let seen: Vec<Org> = orgs.into_iter().filter(|o| self.view.sees_org(o)).collect();
        // Each group's members are read at once (a page of groups costs the round trips of one).
        let lists = futures_util::future::try_join_all(
            seen.iter().map(|o| async move { if members { self.members(&o.id).await } else { Ok(Vec::new()) } }),
        )
        .await?;
        Ok(seen
            .into_iter()
            .zip(lists)
            .map(|(o, list)| {
                let json = resource::group(self.base, &o, &list);
                (o, json)
            })
            .collect())
    }

    async fn members(&self, org: &str) -> Result<Vec<(String, String)>, ScimError> {
        let ids = tree::member_ids(self.store, org).await?;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            for u in people::users_many(self.store, chunk).await? {
                if u.orgs.iter().any(|o| o == org) {
                    out.push((u.id, u.name));
                }
            }
        }
        Ok(out)
    }

    async fn load_user(&self, id: &str) -> Result<(User, Person, Json), ScimError> {
        let pairs = people::many(self.store, &[id.to_owned()]).await?;
        let rendered = self.render_users(pairs.clone()).await?;
        match (pairs.into_iter().next(), rendered.into_iter().next()) {
            (Some((u, p)), Some((_, json))) => Ok((u, p, json)),
            _ => Err(ScimError::not_found("User")),
        }
    }

    async fn load_group(&self, id: &str) -> Result<(Org, Json), ScimError> {
        let org = tree::get(self.store, id).await?.ok_or_else(|| ScimError::not_found("Group"))?;
        self.render_groups(vec![org], true).await?.into_iter().next().ok_or_else(|| ScimError::not_found("Group"))
    }

    /// GET one resource.
    pub async fn get(&self, kind: Resource, id: &str, q: &Query) -> Result<Written, ScimError> {
        let json = match kind {
            Resource::User => self.load_user(id).await?.2,
            Resource::Group => self.load_group(id).await?.1,
        };
        Ok(self.finish(kind, json, q))
    }

    /// GET (or POST .search) a list (RFC 7644 s3.4.2).
    pub async fn list(&self, kind: Resource, q: &Query) -> Result<Json, ScimError> {
        let filter = match q.filter.as_deref() {
            Some(f) => {
                let f = filter::parse(f)?;
                eval::check(kind, &f)?;
                Some(f)
            }
            None => None,
        };
        let sort: Option<AttrPath> = match q.sort_by.as_deref() {
            Some(s) => {
                let p = filter::attr_path(s)
                    .ok_or_else(|| invalid(format!("sortBy '{}' is not an attribute", filter::shown(s))))?;
                let known = eval::resolve_top(kind, &p).is_some_and(|(_, a, sub)| {
                    sub.unwrap_or(a).ty != schema::Ty::Complex || schema::sub(a, "value").is_some()
                });
                if !known {
                    return Err(invalid(format!("sortBy '{}' is not a sortable attribute", filter::shown(s))));
                }
                Some(p)
            }
            None => None,
        };
        let desc = match q.sort_order.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("ascending") => false,
            Some("descending") => true,
            Some(_) => return Err(invalid("sortOrder must be ascending or descending")),
        };
        let start = usize::try_from(q.start_index.unwrap_or(1).max(1)).unwrap_or(1);
        let count = usize::try_from(q.count.unwrap_or(self.limits.default_count as i64).max(0))
            .unwrap_or(0)
            .min(self.limits.max_count);
        let members = want_members(q);

        // The whole directory, no filter, sorted by id or an indexed name: one index range.
        if filter.is_none() && self.view == View::All {
            let by = sort.as_ref().map(|p| (p.uri.as_deref(), p.name.as_str(), p.sub.as_deref()));
            let key = match (kind, by) {
                (Resource::User, None | Some((None, "id", None))) => Some((index::USERS, false)),
                (Resource::User, Some((None, "username", None))) => Some((index::USERS_NAME, true)),
                (Resource::User, Some((None, "displayname", None))) => Some((index::USERS_DISPLAY, true)),
                (Resource::Group, None | Some((None, "id", None))) => Some((index::ORGS, false)),
                (Resource::Group, Some((None, "displayname", None))) => Some((index::ORGS_NAME, true)),
                _ => None,
            };
            if let Some((name, by_value)) = key {
                let (ids, total) = query::page_of_index(
                    self.store,
                    &index::key(name),
                    by_value,
                    start - 1,
                    count,
                    desc && sort.is_some(),
                )
                .await?;
                let page = self.load_many(kind, &ids, members).await?;
                return Ok(self.list_response(kind, page, total as usize, start, q));
            }
        }
        let ids = match filter.as_ref().and_then(|f| query::plan(kind, f)) {
            Some(sources) => query::resolve(self.store, &sources, self.limits.scan_limit).await?,
            None => query::in_view(self.store, kind, &self.view, self.limits.scan_limit).await?,
        };
        if filter.is_none() && sort.is_none() {
            // Ids only, already in order: read just the page (and drop what is not visible).
            let page_ids: Vec<String> = ids.iter().skip(start - 1).take(count).cloned().collect();
            let page = self.load_many(kind, &page_ids, members).await?;
            return Ok(self.list_response(kind, page, ids.len(), start, q));
        }
        let mut matched = Vec::new();
        for chunk in ids.chunks(200) {
            for json in self.load_many(kind, chunk, members || filter_mentions_members(q)).await? {
                if filter.as_ref().is_none_or(|f| eval::matches(kind, &json, f)) {
                    matched.push(json);
                }
            }
        }
        if let Some(p) = &sort {
            let mut keyed: Vec<(Option<eval::SortKey>, Json)> =
                matched.into_iter().map(|j| (eval::sort_key(kind, &j, p), j)).collect();
            // RFC 7644 s3.4.2.3: missing values sort last ascending (first descending).
            keyed.sort_by(|(a, _), (b, _)| match (a, b) {
                (Some(x), Some(y)) => x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            });
            if desc {
                keyed.reverse();
            }
            matched = keyed.into_iter().map(|(_, j)| j).collect();
        }
        let total = matched.len();
        let page: Vec<Json> = matched.into_iter().skip(start - 1).take(count).collect();
        Ok(self.list_response(kind, page, total, start, q))
    }

    async fn load_many(&self, kind: Resource, ids: &[String], members: bool) -> Result<Vec<Json>, ScimError> {
        Ok(match kind {
            Resource::User => {
                let pairs = people::many(self.store, ids).await?;
                self.render_users(pairs).await?.into_iter().map(|(_, j)| j).collect()
            }
            Resource::Group => {
                let orgs = tree::get_many(self.store, ids).await?;
                self.render_groups(orgs, members).await?.into_iter().map(|(_, j)| j).collect()
            }
        })
    }

    fn list_response(&self, kind: Resource, page: Vec<Json>, total: usize, start: usize, q: &Query) -> Json {
        let resources: Vec<Json> =
            page.into_iter().map(|j| project::apply(kind, j, &q.attributes, &q.excluded)).collect();
        json!({
            "schemas": [schema::LIST],
            "totalResults": total,
            "itemsPerPage": resources.len(),
            "startIndex": start,
            "Resources": resources,
        })
    }

    /// POST: creates a resource (RFC 7644 s3.3).
    pub async fn create(&self, kind: Resource, body: &Json, q: &Query) -> Result<Written, ScimError> {
        let cleaned = resource::clean(kind, body)?;
        let json = match kind {
            Resource::User => self.write_user(cleaned, None).await?,
            Resource::Group => self.write_group(cleaned, None).await?,
        };
        Ok(self.finish(kind, json, q))
    }

    /// PUT: replaces a resource (RFC 7644 s3.5.1).
    pub async fn replace(
        &self,
        kind: Resource,
        id: &str,
        body: &Json,
        if_match: Option<&str>,
        q: &Query,
    ) -> Result<Written, ScimError> {
        let cleaned = resource::clean(kind, body)?;
        self.change(kind, id, if_match, cleaned, q).await
    }

    /// PATCH: modifies a resource (RFC 7644 s3.5.2).
    pub async fn patch(
        &self,
        kind: Resource,
        id: &str,
        body: &Json,
        if_match: Option<&str>,
        q: &Query,
    ) -> Result<Written, ScimError> {
        // Patch the full representation (sensitive values in clear, never shown), then write it
        // back as a replacement.
        let full = Service { reveal: true, view: self.view.clone(), ..*self };
        let mut json = match kind {
            Resource::User => full.load_user(id).await?.2,
            Resource::Group => full.load_group(id).await?.1,
        };
        patch::apply(kind, &mut json, body)?;
        let cleaned = resource::clean(kind, &json)?;
        self.change(kind, id, if_match, cleaned, q).await
    }

    async fn change(
        &self,
        kind: Resource,
        id: &str,
        if_match: Option<&str>,
        cleaned: Map<String, Json>,
        q: &Query,
    ) -> Result<Written, ScimError> {
        let json = match kind {
            Resource::User => {
                let (u, p, current) = self.load_user(id).await?;
                precondition(if_match, &resource::version(&current))?;
                self.write_user(cleaned, Some((u, p))).await?
            }
            Resource::Group => {
                let (o, current) = self.load_group(id).await?;
                precondition(if_match, &resource::version(&current))?;
                self.write_group(cleaned, Some(o)).await?
            }
        };
        Ok(self.finish(kind, json, q))
    }

    /// DELETE (RFC 7644 s3.6). An organization with departments or people is refused unless
    /// `cascade`.
    pub async fn delete(
        &self,
        kind: Resource,
        id: &str,
        if_match: Option<&str>,
        cascade: bool,
    ) -> Result<(), ScimError> {
        match kind {
            Resource::User => {
                let (u, _, current) = self.load_user(id).await?;
                precondition(if_match, &resource::version(&current))?;
                users::delete(self.store, self.data, &u.id).await?;
            }
            Resource::Group => {
                let (o, current) = self.load_group(id).await?;
                precondition(if_match, &resource::version(&current))?;
                tree::delete(self.ctx(), self.data, &o.id, cascade).await?;
            }
        }
        Ok(())
    }

    async fn write_user(&self, mut c: Map<String, Json>, old: Option<(User, Person)>) -> Result<Json, ScimError> {
        let username = c.remove("userName").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        users::check_username(&username).map_err(invalid)?;
        if let Some((u, _)) = &old
            && u.username != username
        {
            return Err(ScimError::bad(ScimType::Mutability, "userName is immutable"));
        }
        let formatted = c.get("name").and_then(|n| resource::member_str(n, "formatted")).map(str::to_owned);
        let display = c
            .remove("displayName")
            .and_then(|v| v.as_str().map(str::to_owned))
            .or(formatted)
            .unwrap_or_else(|| username.clone());
        if display.chars().count() > 200 || display.trim().is_empty() {
            return Err(invalid("displayName must be 1-200 characters"));
        }
        let active = c.remove("active").and_then(|v| v.as_bool()).unwrap_or(true);
        let password = c.remove("password").and_then(|v| v.as_str().map(str::to_owned));
        let external = c.remove("externalId").and_then(|v| v.as_str().map(str::to_owned));
        c.remove("id");
        c.remove("meta");
        let ext = c.remove(schema::TZ_USER);
        let memberships: Vec<Membership> = ext
            .as_ref()
            .and_then(|e| e.get("memberships"))
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|m| {
                        Some(Membership {
                            org: resource::member_str(m, "value")?.to_owned(),
                            title: resource::member_str(m, "title").unwrap_or_default().to_owned(),
                            order: m.get("order").and_then(Json::as_i64).unwrap_or(0),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut orgs: Vec<String> = Vec::new();
        for m in &memberships {
            if !orgs.contains(&m.org) {
                orgs.push(m.org.clone());
            }
        }
        let found = tree::get_many(self.store, &orgs).await?;
        if let Some(missing) = orgs.iter().find(|o| !found.iter().any(|f| f.id == **o)) {
            return Err(invalid(format!("organization '{}' not found", filter::shown(missing))));
        }
        let hash = match &password {
            Some(p) => {
                users::check_password_policy(p).map_err(invalid)?;
                Some(
                    self.passwords
                        .hash(crate::crypto::Secret(p.clone()))
                        .await
                        .map_err(|_| ScimError::status(503, "password hashing is busy; retry"))?,
                )
            }
            None => None,
        };
        let email = c.get("emails").and_then(Json::as_array).and_then(|a| {
            a.iter()
                .find(|e| e.get("primary") == Some(&Json::Bool(true)))
                .or_else(|| a.first())
                .and_then(|e| resource::member_str(e, "value"))
                .map(str::to_owned)
        });
        let mut user = match &old {
            Some((u, _)) => u.clone(),
            None => User::new(username.clone(), display.clone(), String::new(), self.now),
        };
        let current_phones = old
            .as_ref()
            .map(|(u, p)| {
                let mut v = resource::stored_phones(self.data, &u.id, &p.attrs);
                v.extend(u.phone(self.data));
                v
            })
            .unwrap_or_default();
        let phone = resource::seal_phones(self.data, &user.id, &mut c, &current_phones);
        user.name = display;
        user.enabled = active;
        user.email = email;
        user.orgs = orgs;
        user.updated_at = self.now;
        user.set_phone(self.data, phone.as_deref());
        if let Some(h) = hash {
            user.password_hash = h;
        }
        let person =
            Person { id: user.id.clone(), external_id: external.clone(), memberships, attrs: c, updated_at: self.now };
        let old_ext = old.as_ref().and_then(|(_, p)| p.external_id.clone());
        if old.is_none() {
            crate::store::claim::begin(self.store, &user.id).await?;
        }
        if let Some(e) = &external
            && old_ext.as_ref() != Some(e)
            && !tree::claim(self.store, &keys::dir_claim("user-ext", e), &user.id, keys::user).await?
        {
            return Err(ScimError::taken("another User has this externalId"));
        }
        people::put_person(self.store, &person).await?;
        match &old {
            Some((u, _)) => {
                users::update(self.store, self.data, u, &mut user).await.map_err(write_error)?;
            }
            None => {
                if let Err(e) = users::create(self.store, self.data, &user).await {
                    // Given up: the externalId claimed above is free again at once.
                    if let Some(e) = &external {
                        tree::release(self.store, &keys::dir_claim("user-ext", e), &user.id).await?;
                    }
                    return Err(write_error(e));
                }
            }
        }
        let ix = index::key(index::USERS_EXT);
        let mut changes = Vec::new();
        if let Some(e) = &external {
            changes.push(IndexChange::add(ix.clone(), index::member(&index::norm(e, true), &user.id)));
        }
        if let Some(e) = old_ext.filter(|o| Some(o) != external.as_ref()) {
            changes.push(IndexChange::remove(ix, index::member(&index::norm(&e, true), &user.id)));
            tree::release(self.store, &keys::dir_claim("user-ext", &e), &user.id).await?;
        }
        self.store.index_apply(&changes).await?;
        Ok(self.load_user(&user.id).await?.2)
    }

    async fn write_group(&self, mut c: Map<String, Json>, old: Option<Org>) -> Result<Json, ScimError> {
        let name = c.remove("displayName").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let mut org = match &old {
            Some(o) => o.clone(),
            None => Org::new(name.clone(), self.now),
        };
        org.name = name;
        org.external_id = c.remove("externalId").and_then(|v| v.as_str().map(str::to_owned));
        let ext = c.remove(schema::TZ_GROUP).unwrap_or(Json::Null);
        let s = |k: &str| ext.get(k).and_then(Json::as_str).map(str::to_owned);
        org.parent = s("parent");
        org.code = s("code");
        org.kind = match s("kind") {
            Some(k) => OrgKind::parse(&k).ok_or_else(|| invalid("kind must be unit, department, group or other"))?,
            None => OrgKind::Unit,
        };
        org.order = ext.get("order").and_then(Json::as_i64).unwrap_or(0);
        org.status = match s("status").as_deref() {
            None | Some("active") => OrgStatus::Active,
            Some("inactive") => OrgStatus::Inactive,
            Some(_) => return Err(invalid("status must be active or inactive")),
        };
        let mut wanted: Vec<String> = Vec::new();
        for m in c.get("members").and_then(Json::as_array).into_iter().flatten() {
            if let Some(t) = resource::member_str(m, "type")
                && t != "User"
            {
                return Err(invalid("members are Users; organizations nest through the parent attribute"));
            }
            let id = resource::member_str(m, "value").unwrap_or_default().to_owned();
            if !wanted.contains(&id) {
                wanted.push(id);
            }
        }
        let mut found = Vec::new();
        for chunk in wanted.chunks(500) {
            found.extend(people::users_many(self.store, chunk).await?);
        }
        if let Some(missing) = wanted.iter().find(|w| !found.iter().any(|u| u.id == **w)) {
            return Err(invalid(format!("member '{}' is not a User", filter::shown(missing))));
        }
        let org = match &old {
            Some(o) => tree::update(self.ctx(), o, org).await?,
            None => tree::create(self.ctx(), org).await?,
        };
        let current = match &old {
            Some(o) => self.members(&o.id).await?.into_iter().map(|(id, _)| id).collect(),
            None => Vec::new(),
        };
        for mut u in found.into_iter().filter(|u| !current.contains(&u.id)) {
            let before = u.clone();
            u.orgs.push(org.id.clone());
            u.updated_at = self.now;
            users::update(self.store, self.data, &before, &mut u).await.map_err(write_error)?;
        }
        for gone in current.iter().filter(|id| !wanted.contains(id)) {
            if let Some(mut u) = users::get(self.store, gone).await? {
                let before = u.clone();
                u.orgs.retain(|o| *o != org.id);
                u.updated_at = self.now;
                users::update(self.store, self.data, &before, &mut u).await.map_err(write_error)?;
            }
        }
        Ok(self.load_group(&org.id).await?.1)
    }
}

fn want_members(q: &Query) -> bool {
    let named = |l: &[String]| {
        l.iter().any(|a| a.eq_ignore_ascii_case("members") || a.to_ascii_lowercase().starts_with("members."))
    };
    if !q.attributes.is_empty() {
        return named(&q.attributes);
    }
    !named(&q.excluded)
}

fn filter_mentions_members(q: &Query) -> bool {
    q.filter.as_deref().is_some_and(|f| f.to_ascii_lowercase().contains("members"))
}
