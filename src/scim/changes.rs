//! The change feed as the SCIM service answers it (SH-6.3.5): the caller's view of
//! [`crate::directory::feed`], trimmed to the retention first (tombstones included).

use serde_json::{Value as Json, json};

use super::error::ScimError;
use super::ops::Service;
use crate::directory::feed::{self, Behind};

/// The message schema of a change-feed page (tongzheng's own).
pub const CHANGES: &str = "urn:tongzheng:params:scim:api:messages:2.0:Changes";

impl Service<'_> {
    /// A page of changes after `cursor` (none: from the start, if nothing was trimmed yet), as
    /// the client of application `app` (if any) sees them, its visible scope changes included.
    pub async fn changes(
        &self,
        cursor: Option<&str>,
        app: Option<&str>,
        count: Option<i64>,
        retention: i64,
    ) -> Result<Json, ScimError> {
        feed::trim(self.store, self.now, retention).await?;
        let max =
            usize::try_from(count.unwrap_or(self.limits.default_count as i64).clamp(1, self.limits.max_count as i64))
                .unwrap_or(1);
        match feed::read_for(self.store, &self.view, app, cursor, max).await? {
            Ok(page) => Ok(json!({
                "schemas": [CHANGES],
                "changes": page.changes,
                "cursor": page.cursor,
                "more": page.more,
            })),
            Err(Behind::Resync { cursor }) => Err(ScimError::Resync { cursor }),
        }
    }
}
