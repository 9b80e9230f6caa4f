//! Visible scope (SH-6.2.4a): what part of the directory a caller sees. A directory
//! administrator sees everything; an application's client sees the organizations of its
//! application's visible scope, their subtrees, and the people in them. An application with an
//! empty visible scope, or a client of no application, sees nothing: directory data is released
//! only by an explicit scope.

use std::collections::BTreeSet;

use super::Org;
use crate::store::{self, DynStore, StoreError, keys};

/// The part of the directory a caller sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// Everything (a directory administrator).
    All,
    /// The subtrees of these organizations and their people.
    Scoped(BTreeSet<String>),
}

impl View {
    /// The view of a client holding only the read scope: its application's visible scope.
    pub async fn of_client(store: &DynStore, client: &crate::clients::Client) -> Result<Self, StoreError> {
        let Some(app_id) = &client.app_id else {
            return Ok(Self::Scoped(BTreeSet::new()));
        };
        let app: Option<crate::apps::Application> = crate::apps::get(store, app_id).await?;
        Ok(Self::Scoped(app.map(|a| a.registration.visible_scope.into_iter().collect()).unwrap_or_default()))
    }

    /// Whether something whose organizations' lineages (ancestors and self) are `lineage` is
    /// visible.
    pub fn sees_lineage<'a>(&self, mut lineage: impl Iterator<Item = &'a String>) -> bool {
        match self {
            Self::All => true,
            Self::Scoped(roots) => lineage.any(|o| roots.contains(o)),
        }
    }

    /// Whether an organization is visible.
    pub fn sees_org(&self, org: &Org) -> bool {
        self.sees_lineage(org.ancestors.iter().chain([&org.id]))
    }

    /// Whether a person belonging to `orgs` (ids) is visible; reads those organizations.
    pub async fn sees_member_of(&self, store: &DynStore, orgs: &[String]) -> Result<bool, StoreError> {
        if *self == Self::All {
            return Ok(true);
        }
        let records = super::tree::get_many(store, orgs).await?;
        Ok(records.iter().any(|o| self.sees_org(o)))
    }

    /// The visible roots that exist, as organizations (for subtree ranges); `None` for all.
    pub async fn roots(&self, store: &DynStore) -> Result<Option<Vec<Org>>, StoreError> {
        match self {
            Self::All => Ok(None),
            Self::Scoped(ids) => {
                let keys: Vec<String> = ids.iter().map(|id| keys::dir_org(id)).collect();
                let mut out: Vec<Org> = Vec::new();
                for (k, v) in keys.iter().zip(store.get_many(&keys).await?) {
                    if let Some(bytes) = v {
                        out.push(store::decode(k, &bytes)?);
                    }
                }
                // A root inside another visible root adds nothing.
                let all: BTreeSet<String> = out.iter().map(|o| o.id.clone()).collect();
                out.retain(|o| !o.ancestors.iter().any(|a| all.contains(a)));
                Ok(Some(out))
            }
        }
    }
}
