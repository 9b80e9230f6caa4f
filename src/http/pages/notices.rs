//! The built-in user agreement and privacy notice (`/agreement`, `/privacy`): short, true
//! statements of what this platform does, linked from every login page by default (JM-5.6,
//! SH-D, SH-8.2). An operator points `branding.agreement_url` / `privacy_url` at its own texts.

use axum::http::StatusCode;
use axum::response::Response;

use super::{Locale, page};

/// Which notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The user agreement.
    Agreement,
    /// The privacy notice.
    Privacy,
}

const AGREEMENT_ZH: (&str, &[&str]) = (
    "用户协议",
    &[
        "您可以使用本平台的账号登录所有接入本平台的应用，无需在每个应用分别注册。",
        "请妥善保管您的密码，不要将账号交给他人使用。连续多次输入错误的密码会使账号或网络地址被暂时限制登录。",
        "法人（企业、事业单位、社会组织、机关等）由经授权的经办人使用本人账号登录并代表该单位办理业务，经办人对其代表单位的操作负责。",
        "请勿冒用他人身份、尝试猜测他人密码或干扰平台运行。",
    ],
);

const AGREEMENT_EN: (&str, &[&str]) = (
    "User agreement",
    &[
        "Your account on this platform signs you in to every application connected to it; you need not register with each one.",
        "Keep your password safe and do not let others use your account. Repeated wrong passwords hold sign-ins to the account or from the network address for a while.",
        "Organizations (legal persons) sign in through authorized agents using their own accounts; an agent answers for what they do on the organization's behalf.",
        "Do not impersonate others, guess other people's passwords, or disturb the platform.",
    ],
);

const PRIVACY_ZH: (&str, &[&str]) = (
    "隐私政策",
    &[
        "本平台保存您的用户名、姓名、手机号码、证件类型和号码、实名核验结果，以及登录会话和操作审计记录。",
        "手机号码和证件号码加密存储，显示时脱敏（如 138****5678），不写入日志。",
        "应用只能获得其获准的授权范围内的信息。手机号码、证件号码、所代表单位的信息等敏感个人信息，须经您在授权页面同意后才会提供给该应用；您可以在“账号管理”中随时撤回授权。",
        "审计记录按规定至少保存六个月，用于安全审计。",
    ],
);

const PRIVACY_EN: (&str, &[&str]) = (
    "Privacy policy",
    &[
        "This platform keeps your username, name, phone number, identity document type and number, the result of real-name verification, your sign-in sessions and an audit record of what is done.",
        "Phone and ID numbers are stored encrypted, shown masked (such as 138****5678) and never written to logs.",
        "An application receives only what its granted scopes allow. Sensitive personal information (phone number, ID number, the organization you act for) goes to an application only after you allow it on the consent page; you can withdraw that consent at any time on your account page.",
        "Audit records are kept for at least six months, for security review.",
    ],
);

/// The notice page in `locale`.
pub fn notice(locale: Locale, which: Notice) -> Response {
    let (title, paragraphs) = match (which, locale) {
        (Notice::Agreement, Locale::ZhCn) => AGREEMENT_ZH,
        (Notice::Agreement, Locale::En) => AGREEMENT_EN,
        (Notice::Privacy, Locale::ZhCn) => PRIVACY_ZH,
        (Notice::Privacy, Locale::En) => PRIVACY_EN,
    };
    let body: String = paragraphs.iter().map(|p| format!("<p>{p}</p>")).collect();
    page(locale, title, &format!("<h1>{title}</h1>{body}"), StatusCode::OK, false)
}
