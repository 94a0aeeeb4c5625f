//! The web layer around handlers: who is asking (extractors), CSRF, control characters refused at
//! the edge, security headers, the page context.

pub mod body;
pub mod csrf;
pub mod deadline;
pub mod extract;
pub mod headers;
pub mod input;
pub mod link_cookie;
pub mod page;
pub mod pending_code;
pub mod session;

pub use extract::{CurrentUser, Operator, TenantAdmin};
pub use page::{PageContext, flash, render, render_with, see_other};
pub use session::SessionData;

/// The client's address as the audit trail records it: the TCP peer (a forwarded-for header is
/// not trusted, SECURITY.md RS-3).
pub fn client_ip(req: &actix_web::HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

/// The browser of a request, summarised from its User-Agent (for the sessions list).
pub fn client_browser(req: &actix_web::HttpRequest) -> String {
    crate::domain::browser::summarise(
        req.headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
    )
}
