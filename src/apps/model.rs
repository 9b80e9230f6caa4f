//! The records of an application's life: its registration (SH-6.2.2), its reviews with the
//! evidence checked (SH-6.2.3), its transitions, its suspension with the rectification deadline
//! and at most one extension (AY-8.5.4), and who may log in while it is tested or grey-released.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::State;
use crate::clients::RateLimit;

/// Application class, which decides the evidence a review must check (SH-6.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 业务应用: software test report, plus a classified-protection (MLPS) assessment or a
    /// security test report.
    Business,
    /// 办公应用: as business, plus a cryptography assessment.
    Office,
    /// 处理工作秘密的应用: software test report, MLPS level 3 assessment, cryptography
    /// assessment.
    WorkSecret,
}

/// How users reach the application (SH-6.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppType {
    /// A website.
    Web,
    /// An H5 light application inside the platform's mobile and PC clients.
    H5,
    /// A native mobile application.
    Mobile,
    /// A desktop client.
    Desktop,
    /// A backend service with no users of its own (client credentials only).
    Service,
}

/// Who to call about the application.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Contact {
    /// Person responsible (AY-8.5.1: a named person runs it).
    pub name: String,
    /// Phone; stored sealed (SH-8.2), shown masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// E-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Users and organizations let in while an application is not open to everyone.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Audience {
    /// User ids or usernames.
    #[serde(default)]
    pub users: Vec<String>,
    /// Organization ids.
    #[serde(default)]
    pub orgs: Vec<String>,
}

impl Audience {
    /// Whether a user (by id and username, with their organizations) is in the audience.
    pub fn admits(&self, user_id: &str, username: &str, orgs: &[String]) -> bool {
        self.users.iter().any(|u| u == user_id || u.eq_ignore_ascii_case(username))
            || self.orgs.iter().any(|o| orgs.contains(o))
    }
}

/// The SH-6.2.2 registration record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Registration {
    /// 应用名称.
    pub name: String,
    /// 应用描述.
    #[serde(default)]
    pub description: String,
    /// 应用分类: decides the review evidence (SH-6.2.3).
    pub category: Category,
    /// 行业主题.
    #[serde(default)]
    pub industry_theme: String,
    /// 应用类型.
    pub app_type: AppType,
    /// 可见范围: organizations whose people may see and use it; empty means everyone.
    #[serde(default)]
    pub visible_scope: Vec<String>,
    /// Where changes of the directory within the visible scope are pushed as signed events
    /// (issue 12, SH-6.3.5): https (http on loopback in dev mode); none: no push, the change
    /// feed is read by cursor. Delivery status: `GET .../webhook/deliveries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_webhook: Option<String>,
    /// 应用开发商.
    pub developer: String,
    /// The unit that owns and answers for it (AY-8.2.1 应用单位).
    pub owning_unit: String,
    /// Its privacy policy for the people who use it (RFC 7591 s2 `policy_uri`), linked from
    /// the consent page: https (http on loopback in dev mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// Contact person.
    pub contact: Contact,
}

/// What the application's clients may do at the token endpoint (AY-7.1, AY-7.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Grants {
    /// Allowed grant types (`authorization_code`, `refresh_token`, `client_credentials`).
    pub grant_types: Vec<String>,
    /// Registered redirect URIs (exact match).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Where users may be sent after logout.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Granted scopes; each must be in the scope catalogue (AY-7.1).
    pub scopes: Vec<String>,
    /// Access token lifetime, seconds (60..=86400); the platform default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_ttl: Option<i64>,
    /// Refresh token (family) lifetime, seconds; the platform default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_ttl: Option<i64>,
    /// OpenID Back-Channel Logout receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// OpenID Front-Channel Logout receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    /// Call control (AY-8.3.2.1): its own limit instead of the platform default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// The lowest assurance level of its users (HL-6.1: `registered`, `real_name`, `strong`),
    /// applied to every client of the application; none: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_level: Option<crate::identity::AssuranceLevel>,
}

/// A kind of evidence a reviewer checks (SH-6.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// 软件测试报告.
    SoftwareTestReport,
    /// 网络安全等级保护测评报告 (classified protection, MLPS), with its level.
    MlpsAssessment,
    /// 安全测试报告.
    SecurityTestReport,
    /// 密码应用测评报告 / 密码应用安全性评估报告.
    CryptoAssessment,
}

/// One piece of evidence and what the reviewer found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// What it is.
    pub kind: EvidenceKind,
    /// Document reference (number, archive location or URL).
    pub reference: String,
    /// MLPS level, for `mlps_assessment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// Whether it was checked and found acceptable.
    pub passed: bool,
}

/// The reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Approve: credentials are allocated (AY-8.2.3).
    Approve,
    /// Reject: the application stays `applied` and may be corrected and reviewed again.
    Reject,
}

/// A review record (SH-6.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Review {
    /// Review id.
    pub id: String,
    /// Reviewer's name or id.
    pub reviewer: String,
    /// The admin client that recorded it.
    pub recorded_by: String,
    /// When.
    pub at: i64,
    /// The decision.
    pub decision: Decision,
    /// Evidence checked.
    pub evidence: Vec<Evidence>,
    /// Comment.
    #[serde(default)]
    pub comment: String,
}

/// A re-test after rectification (AY-8.5.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Retest {
    /// Test report reference.
    pub report: String,
    /// Whether the re-test passed; a failed re-test leads offline (AY-8.5.5).
    pub passed: bool,
    /// Comment.
    #[serde(default)]
    pub comment: String,
}

/// One extension of a rectification (AY-8.5.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Extension {
    /// Working days added (at most `apps.max_extension_days`).
    pub working_days: u32,
    /// Why.
    pub reason: String,
    /// When it was granted.
    pub at: i64,
    /// Who granted it.
    pub by: String,
    /// The new deadline.
    pub deadline: i64,
}

/// An ongoing suspension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Suspension {
    /// Why it was blocked.
    pub reason: String,
    /// When.
    pub at: i64,
    /// Who.
    pub by: String,
    /// The state it was suspended from, where a passed re-test returns it.
    pub from: State,
    /// Rectification deadline: the end of the 10th working day (AY-8.5.4).
    pub deadline: i64,
    /// The one extension, if granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<Extension>,
}

/// A maintenance window (SH-7.3): what the citizen's maintenance page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Maintenance {
    /// Why it is down (shown to citizens).
    pub reason: String,
    /// Since when.
    pub since: i64,
    /// When it is expected back (Unix seconds), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// Whom citizens may contact meanwhile (a phone number, an e-mail or a desk), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

impl Suspension {
    /// The deadline in force (extended or not).
    pub fn effective_deadline(&self) -> i64 {
        self.extension.as_ref().map_or(self.deadline, |e| e.deadline)
    }
}

/// One move of the state machine, kept forever with the application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Transition {
    /// From.
    pub from: State,
    /// To.
    pub to: State,
    /// When.
    pub at: i64,
    /// Who (the admin client, and the person when given).
    pub by: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// The request that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A registered application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Application {
    /// Application id.
    pub id: String,
    /// SH-6.2.2 registration.
    #[serde(flatten)]
    pub registration: Registration,
    /// The grant its clients get.
    pub grants: Grants,
    /// Where it stands.
    pub state: State,
    /// Since when.
    pub state_since: i64,
    /// Its OAuth clients.
    #[serde(default)]
    pub clients: Vec<String>,
    /// Users allowed to log in while `approved` (testing).
    #[serde(default)]
    pub test_users: Vec<String>,
    /// Users and organizations allowed in during `pre_release`.
    #[serde(default)]
    pub pre_release: Audience,
    /// The ongoing suspension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension: Option<Suspension>,
    /// The ongoing maintenance, while `temporarily_offline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Maintenance>,
    /// When a review is due (AY-8.2.2), while `applied`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_due_at: Option<i64>,
    /// Where the archive was written when it went offline (AY-8.6.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// Who applied.
    pub created_by: String,
    /// When.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}
