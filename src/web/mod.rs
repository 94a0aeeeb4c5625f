//! The web layer around handlers: who is asking (extractors), CSRF, security headers, the page context.

pub mod csrf;
pub mod extract;
pub mod headers;
pub mod page;
pub mod session;

pub use extract::{CurrentUser, Operator, TenantAdmin};
pub use page::{PageContext, flash, render, render_with, see_other};
pub use session::SessionData;
