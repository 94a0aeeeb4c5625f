//! The web layer around handlers: who is asking (extractors), CSRF, security headers, the page context.

pub mod csrf;
pub mod extract;
pub mod headers;
pub mod page;
pub mod session;

pub use extract::{CurrentUser, Operator, TenantAdmin};
pub use page::{PageContext, flash};
pub use session::SessionData;
