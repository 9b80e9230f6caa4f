//! The one message catalogue of the citizen-facing pages: every string a page shows, in zh-CN
//! ([`zh`], the default) and English ([`en`]), grouped by page under typed keys. A page takes its
//! strings from [`of`]; the compiler makes every key exist in both languages.

mod en;
mod zh;

use super::Locale;

pub use en::EN;
pub use zh::ZH;

/// The keys of one page with their strings.
pub type Entries = Vec<(&'static str, Vec<&'static str>)>;

/// The strings of one entry, flattened (for the completeness test and tools).
pub trait Strings {
    /// Every string of the entry, in order.
    fn strings(&self) -> Vec<&'static str>;
}

impl Strings for &'static str {
    fn strings(&self) -> Vec<&'static str> {
        vec![*self]
    }
}

impl<A: Strings, B: Strings> Strings for (A, B) {
    fn strings(&self) -> Vec<&'static str> {
        let mut v = self.0.strings();
        v.extend(self.1.strings());
        v
    }
}

impl<A: Strings, B: Strings, C: Strings> Strings for (A, B, C) {
    fn strings(&self) -> Vec<&'static str> {
        let mut v = self.0.strings();
        v.extend(self.1.strings());
        v.extend(self.2.strings());
        v
    }
}

impl<T: Strings, const N: usize> Strings for [T; N] {
    fn strings(&self) -> Vec<&'static str> {
        self.iter().flat_map(Strings::strings).collect()
    }
}

impl<T: Strings> Strings for &'static [T] {
    fn strings(&self) -> Vec<&'static str> {
        self.iter().flat_map(Strings::strings).collect()
    }
}

/// Declares the strings of one page: a struct of public fields, and `entries()` listing each
/// key with its strings.
macro_rules! texts {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug)]
        pub struct $name {
            $($(#[$fm])* #[allow(missing_docs)] pub $field: $ty,)*
        }
        impl $name {
            /// Every key of this page with its strings.
            pub fn entries(&self) -> Entries {
                vec![$((stringify!($field), Strings::strings(&self.$field)),)*]
            }
        }
    };
}

/// Every page's strings in one language.
#[derive(Debug)]
pub struct Catalogue {
    /// Errors, form_post, logout.
    pub common: CommonTexts,
    /// Header and footer.
    pub brand: BrandTexts,
    /// Login.
    pub login: LoginTexts,
    /// Consent.
    pub consent: ConsentTexts,
    /// Acting for a legal person.
    pub act: ActTexts,
    /// Registration and password reset.
    pub signup: SignupTexts,
    /// Account.
    pub account: AccountTexts,
    /// Real-name verification.
    pub verify: VerifyTexts,
    /// Error pages a citizen meets.
    pub trouble: TroubleTexts,
    /// Application states: maintenance and suspension.
    pub app_state: AppStateTexts,
    /// The landing page and the 404 page.
    pub landing: LandingTexts,
    /// Messages of refused registrations, codes and resets.
    pub messages: MessageTexts,
    /// The account page's levels and messages.
    pub account_messages: AccountMessages,
    /// The built-in agreement and privacy notice.
    pub notices: NoticeTexts,
}

impl Catalogue {
    /// Every key of every page (`page.key`) with its strings.
    pub fn entries(&self) -> Vec<(String, Vec<&'static str>)> {
        let pages: [(&str, Entries); 14] = [
            ("common", self.common.entries()),
            ("brand", self.brand.entries()),
            ("login", self.login.entries()),
            ("consent", self.consent.entries()),
            ("act", self.act.entries()),
            ("signup", self.signup.entries()),
            ("account", self.account.entries()),
            ("verify", self.verify.entries()),
            ("trouble", self.trouble.entries()),
            ("app_state", self.app_state.entries()),
            ("landing", self.landing.entries()),
            ("messages", self.messages.entries()),
            ("account_messages", self.account_messages.entries()),
            ("notices", self.notices.entries()),
        ];
        pages
            .into_iter()
            .flat_map(|(page, keys)| keys.into_iter().map(move |(k, v)| (format!("{page}.{k}"), v)))
            .collect()
    }
}

/// The catalogue of `l`.
pub fn of(l: Locale) -> &'static Catalogue {
    match l {
        Locale::ZhCn => &ZH,
        Locale::En => &EN,
    }
}

texts! {
    /// The strings of the shared pages: errors, form_post, logout.
    CommonTexts {
        continue_: &'static str,
        logout_title: &'static str,
        logout_question: &'static str,
        logout_yes: &'static str,
        logout_no: &'static str,
        logged_out: &'static str,
    }
}

texts! {
    /// The strings of the login page.
    LoginTexts {
        title: &'static str,
        tab_person: &'static str,
        tab_legal: &'static str,
        username: &'static str,
        agent_username: &'static str,
        password: &'static str,
        submit: &'static str,
        signing_in_to: &'static str,
        legal_hint: &'static str,
        bad_credentials: &'static str,
        busy: &'static str,
        or_with: &'static str,
        upstream_failed: &'static str,
        signup: &'static str,
        forgot: &'static str,
        other_language: (&'static str, &'static str),
        terms: (&'static str, &'static str, &'static str),
        agreement: &'static str,
        privacy: &'static str,
        tabs_label: &'static str,
    }
}

texts! {
    /// The strings of the consent page.
    ConsentTexts {
        title: &'static str,
        app: &'static str,
        unit: &'static str,
        intro: &'static str,
        sensitive: &'static str,
        sensitive_note: &'static str,
        revoke_note: &'static str,
        allow: &'static str,
        deny: &'static str,
        signed_in_as: &'static str,
        acting_for: &'static str,
        not_you: &'static str,
        policy: &'static str,
    }
}

texts! {
    /// The strings of the acting-for-a-legal-person pages.
    ActTexts {
        choose_title: &'static str,
        choose_intro: &'static str,
        act: &'static str,
        uscc: &'static str,
        refused_title: &'static str,
        refused: &'static str,
        back: &'static str,
    }
}

texts! {
    /// The strings of the registration and password-reset pages.
    SignupTexts {
        title: &'static str,
        tab_person: &'static str,
        tab_legal: &'static str,
        continue_to: &'static str,
        person: &'static str,
        phone: &'static str,
        send_code: &'static str,
        code: &'static str,
        username: &'static str,
        username_hint: &'static str,
        name: &'static str,
        password: &'static str,
        password_hint: &'static str,
        org: &'static str,
        org_name: &'static str,
        uscc: &'static str,
        org_kind: &'static str,
        kinds: [(&'static str, &'static str); 5],
        legal_rep: &'static str,
        agent_new: &'static str,
        agent_signed_in: &'static str,
        verify: &'static str,
        submit: &'static str,
        have_account: &'static str,
        forgot: &'static str,
        reset_title: &'static str,
        reset_intro: &'static str,
        new_password: &'static str,
        reset_submit: &'static str,
        reset_done: &'static str,
        sign_in: &'static str,
    }
}

texts! {
    /// The strings of the account page.
    AccountTexts {
        title: &'static str,
        profile: &'static str,
        username: &'static str,
        name: &'static str,
        phone: &'static str,
        id_number: &'static str,
        none: &'static str,
        level: &'static str,
        verify: &'static str,
        sessions: &'static str,
        signed_in_at: &'static str,
        this_browser: &'static str,
        apps: &'static str,
        end: &'static str,
        companies: &'static str,
        no_companies: &'static str,
        admin: &'static str,
        agent: &'static str,
        consents: &'static str,
        no_consents: &'static str,
        revoke: &'static str,
        change_password: &'static str,
        current_password: &'static str,
        new_password: &'static str,
        change: &'static str,
        sign_out: &'static str,
        not_signed_in: &'static str,
        not_signed_in_text: &'static str,
        register: &'static str,
        forgot: &'static str,
    }
}

texts! {
    /// The strings of the real-name verification page.
    VerifyTexts {
        title: &'static str,
        intro: &'static str,
        for_client: &'static str,
        name: &'static str,
        id_type: &'static str,
        id_number: &'static str,
        submit: &'static str,
        cancel: &'static str,
        types: [&'static str; 4],
        malformed: &'static str,
        unavailable: &'static str,
        too_many: &'static str,
        refused: &'static str,
    }
}

texts! {
    /// The strings of the header and footer.
    BrandTexts {
        help: &'static str,
        agreement: &'static str,
        privacy: &'static str,
    }
}

texts! {
    /// The error pages a citizen can meet: for each, (title, what happened, what to do next).
    TroubleTexts {
        bad_request: (&'static str, &'static str, &'static str),
        unknown_client: (&'static str, &'static str, &'static str),
        unauthorized_client: (&'static str, &'static str, &'static str),
        access_denied: (&'static str, &'static str, &'static str),
        invalid_scope: (&'static str, &'static str, &'static str),
        server_error: (&'static str, &'static str, &'static str),
        unavailable: (&'static str, &'static str, &'static str),
        bad_redirect: (&'static str, &'static str, &'static str),
        expired: (&'static str, &'static str, &'static str),
        logout_expired: (&'static str, &'static str, &'static str),
        form_expired: (&'static str, &'static str, &'static str),
        rate_limited: (&'static str, &'static str, &'static str),
        deadline: (&'static str, &'static str, &'static str),
        not_found: (&'static str, &'static str, &'static str),
        login_required: (&'static str, &'static str, &'static str),
        upstream_failed: (&'static str, &'static str, &'static str),
        details: &'static str,
        code: &'static str,
        request_id: &'static str,
        back_to_app: &'static str,
    }
}

texts! {
    /// The messages of a refused registration, code or reset (`{}`: a value filled in by
    /// [`fill`]).
    MessageTexts {
        username_invalid: &'static str,
        name_invalid: &'static str,
        phone_invalid: &'static str,
        code_missing: &'static str,
        password_invalid: &'static str,
        org_name_invalid: &'static str,
        uscc_invalid: &'static str,
        org_kind_invalid: &'static str,
        representative_invalid: &'static str,
        username_taken: &'static str,
        phone_taken: &'static str,
        uscc_taken: &'static str,
        no_person: &'static str,
        no_account: &'static str,
        busy: &'static str,
        unavailable: &'static str,
        code_unknown: &'static str,
        code_expired: &'static str,
        code_wrong: &'static str,
        code_too_many: &'static str,
        code_digits: &'static str,
        code_too_soon: &'static str,
        code_rate_limited: &'static str,
        sms_off: &'static str,
        sms_failed: &'static str,
        code_sent: &'static str,
        code_sent_maybe: &'static str,
        wait_seconds: &'static str,
        wait_minutes: &'static str,
        attempts_left: &'static str,
        attempt_left_one: &'static str,
        too_many_wait: &'static str,
        wait: &'static str,
    }
}

texts! {
    /// The account page's levels, action lines and refused password changes.
    AccountMessages {
        level_visitor: &'static str,
        level_registered: &'static str,
        level_real_name: &'static str,
        level_strong: &'static str,
        done_registered: &'static str,
        done_session_ended: &'static str,
        done_consent_revoked: &'static str,
        done_password_changed: &'static str,
        wrong_password: &'static str,
        weak_password: &'static str,
        gone: &'static str,
        account_busy: &'static str,
    }
}

texts! {
    /// The built-in user agreement and privacy notice: titles and paragraphs.
    NoticeTexts {
        agreement_title: &'static str,
        agreement: &'static [&'static str],
        privacy_title: &'static str,
        privacy: &'static [&'static str],
    }
}

/// `template` with each `{}` replaced by the next of `values`, in order.
pub fn fill(template: &str, values: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut parts = template.split("{}");
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (i, part) in parts.enumerate() {
        out.push_str(values.get(i).copied().unwrap_or_default());
        out.push_str(part);
    }
    out
}

texts! {
    /// The pages of an application that takes no logins now.
    AppStateTexts {
        maintenance_title: &'static str,
        maintenance_lead: &'static str,
        reason: &'static str,
        until: &'static str,
        until_unknown: &'static str,
        contact: &'static str,
        suspended_title: &'static str,
        suspended_lead: &'static str,
        suspended_next: &'static str,
        closed_title: &'static str,
        closed_lead: &'static str,
        not_ready_title: &'static str,
        not_ready_lead: &'static str,
        application: &'static str,
    }
}

texts! {
    /// The landing page (`GET /`), the 404 page and the ways on after a logout.
    LandingTexts {
        title: &'static str,
        lead: &'static str,
        sign_in: &'static str,
        signup: &'static str,
        links: &'static str,
        not_found_title: &'static str,
        not_found_lead: &'static str,
        home: &'static str,
        back_to_app: &'static str,
        sign_in_again: &'static str,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Issue 14: every message key exists in both languages, with a non-empty text in each.
    #[test]
    fn every_key_in_both_languages() {
        let zh = ZH.entries();
        let en = EN.entries();
        let zh_keys: Vec<&str> = zh.iter().map(|(k, _)| k.as_str()).collect();
        let en_keys: Vec<&str> = en.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(zh_keys, en_keys, "the two languages have the same keys");
        let mut seen = std::collections::HashSet::new();
        for ((key, z), (_, e)) in zh.iter().zip(&en) {
            assert!(seen.insert(key.clone()), "{key} is declared once");
            assert_eq!(z.len(), e.len(), "{key}: as many strings in zh-CN as in English");
            for (z, e) in z.iter().zip(e) {
                assert_eq!(z.matches("{}").count(), e.matches("{}").count(), "{key}: the same values to fill");
                assert!(!z.trim().is_empty(), "{key}: an empty zh-CN text");
                assert!(!e.trim().is_empty(), "{key}: an empty English text");
            }
        }
        assert!(zh.len() > 150, "the catalogue holds every page's strings ({} keys)", zh.len());
    }

    #[test]
    fn filling() {
        assert_eq!(fill("a {} b {}.", &["1", "2"]), "a 1 b 2.");
        assert_eq!(fill("none", &["1"]), "none");
    }

    // Issue 14: no requirement id and no raw OAuth code in any text a citizen reads.
    #[test]
    fn no_requirement_ids_or_oauth_codes_in_texts() {
        for cat in [&ZH, &EN] {
            for (key, texts) in cat.entries() {
                for t in texts {
                    for id in ["AY-", "HL-", "SH-", "GB-", "JM-"] {
                        assert!(!t.contains(id), "{key}: {t}");
                    }
                    assert!(!t.contains("invalid_") && !t.contains("_denied"), "{key}: {t}");
                }
            }
        }
    }
}
