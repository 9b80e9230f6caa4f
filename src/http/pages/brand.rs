//! The platform's branding on every page (JM-5.6, SH-D): name, logo, footer, help / agreement /
//! privacy links and the primary colour from `[branding]`. Each request's record
//! ([`crate::http::context`]) carries the instance's [`Brand`], so every page renders it without
//! passing it on.

use std::sync::Arc;

use super::{Locale, esc};
use crate::config::BrandingConfig;

/// The branding as the pages use it (from validated configuration).
#[derive(Debug, Clone)]
pub struct Brand {
    name: String,
    name_en: String,
    logo: String,
    footer: String,
    footer_en: String,
    help: String,
    agreement: String,
    privacy: String,
    colour: String,
    img_src: Option<String>,
}

impl Default for Brand {
    /// No name, logo or links; the default colour (pages rendered outside a request).
    fn default() -> Self {
        Self {
            name: String::new(),
            name_en: String::new(),
            logo: String::new(),
            footer: String::new(),
            footer_en: String::new(),
            help: String::new(),
            agreement: String::new(),
            privacy: String::new(),
            colour: "#b91c1c".into(),
            img_src: None,
        }
    }
}

impl Brand {
    /// The branding of a validated `[branding]` section.
    pub fn new(c: &BrandingConfig) -> Self {
        let img_src = if c.logo_url.starts_with("data:") { Some("data:".to_owned()) } else { c.logo_origin() };
        Self {
            name: c.name.trim().to_owned(),
            name_en: c.name_en.trim().to_owned(),
            logo: c.logo_url.clone(),
            footer: c.footer.clone(),
            footer_en: c.footer_en.clone(),
            help: c.help_url.clone(),
            agreement: c.agreement_url.clone(),
            privacy: c.privacy_url.clone(),
            colour: c.primary_color.clone(),
            img_src,
        }
    }

    /// The platform's name in `l` (the zh-CN name when no English one is set).
    pub fn name(&self, l: Locale) -> &str {
        if l == Locale::En && !self.name_en.is_empty() { &self.name_en } else { &self.name }
    }

    /// The help link, when configured.
    pub fn help(&self) -> Option<&str> {
        Some(self.help.as_str()).filter(|s| !s.is_empty())
    }

    /// The user agreement link, when configured.
    pub fn agreement(&self) -> Option<&str> {
        Some(self.agreement.as_str()).filter(|s| !s.is_empty())
    }

    /// The privacy policy link, when configured.
    pub fn privacy(&self) -> Option<&str> {
        Some(self.privacy.as_str()).filter(|s| !s.is_empty())
    }

    /// The primary colour (a validated hex colour, safe in CSS as it is).
    pub fn colour(&self) -> &str {
        &self.colour
    }

    /// The CSP `img-src` source the logo needs (its origin, or `data:`), if any.
    pub fn img_src(&self) -> Option<&str> {
        self.img_src.as_deref()
    }

    /// The page header: logo and platform name.
    pub(crate) fn header_html(&self, l: Locale) -> String {
        let name = self.name(l);
        if name.is_empty() && self.logo.is_empty() {
            return String::new();
        }
        let logo = if self.logo.is_empty() {
            String::new()
        } else {
            format!("<img src=\"{}\" alt=\"\" height=\"32\">", esc(&self.logo))
        };
        format!("<header class=\"brand\">{logo}<span class=\"platform\">{}</span></header>", esc(name))
    }

    /// The page footer: the footer line, then help, agreement and privacy links.
    pub(crate) fn footer_html(&self, l: Locale) -> String {
        let t = &super::catalogue::of(l).brand;
        let line = if l == Locale::En && !self.footer_en.is_empty() { &self.footer_en } else { &self.footer };
        let links: Vec<String> = [
            (&self.help, t.help, "help"),
            (&self.agreement, t.agreement, "agreement"),
            (&self.privacy, t.privacy, "privacy"),
        ]
        .iter()
        .filter(|(href, _, _)| !href.is_empty())
        .map(|(href, text, class)| format!("<a class=\"{class}\" href=\"{}\">{text}</a>", esc(href)))
        .collect();
        if line.is_empty() && links.is_empty() {
            return String::new();
        }
        let line = if line.is_empty() { String::new() } else { format!("<p>{}</p>", esc(line)) };
        let links = if links.is_empty() { String::new() } else { format!("<p>{}</p>", links.join(" · ")) };
        format!("<footer>{line}{links}</footer>")
    }
}

/// The branding of the request being handled on this task (the default outside a request).
pub fn current() -> Arc<Brand> {
    crate::http::context::current().map(|c| c.brand().clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(overlay: &str) -> BrandingConfig {
        crate::config::Config::from_overlay(overlay, true).unwrap().branding
    }

    #[test]
    fn header_footer_and_csp_source() {
        // JM-5.6, SH-D: the configured name, logo and links, escaped; the logo's origin for the CSP.
        let b = Brand::new(&config(
            "[branding]\nname = \"省<平台>\"\nname_en = \"Province\"\nlogo_url = \"https://cdn.example.gov.cn/l.png\"\n\
             footer = \"主办\"\nhelp_url = \"/help\"",
        ));
        assert_eq!(b.img_src(), Some("https://cdn.example.gov.cn"));
        let h = b.header_html(Locale::ZhCn);
        assert!(h.contains("省&lt;平台&gt;") && h.contains("src=\"https://cdn.example.gov.cn/l.png\""), "{h}");
        assert!(b.header_html(Locale::En).contains("Province"));
        let f = b.footer_html(Locale::En);
        assert!(f.contains("<p>主办</p>") && f.contains("href=\"/help\">Help<"), "{f}");
        assert!(f.contains("href=\"/privacy\">Privacy policy<"), "{f}");
        let data = Brand::new(&config("[branding]\nlogo_url = \"data:image/png;base64,AAAA\""));
        assert_eq!(data.img_src(), Some("data:"));
        assert_eq!(Brand::new(&config("")).img_src(), None);
    }

    #[tokio::test]
    async fn the_current_brand_is_scoped_to_the_request() {
        assert!(current().name(Locale::ZhCn).is_empty());
        let b = Arc::new(Brand::new(&config("")));
        let id = crate::http::request_id::Id::new("r-1").unwrap();
        let ctx = crate::http::context::RequestCtx::new(id, None, b);
        let inside = crate::http::context::scope(ctx, async { current().name(Locale::ZhCn).to_owned() }).await;
        assert_eq!(inside, "统一身份认证平台");
    }
}
