//! Pure types and rules, no I/O: identifiers, slugs, emails, redirect URIs, failure classification.

pub mod api_scope;
pub mod browser;
pub mod email;
pub mod failure;
pub mod password_policy;
pub mod products;
pub mod redirect_uri;
pub mod sandbox;
pub mod slug;
pub mod string_enum;
pub mod text;

pub use api_scope::ApiScope;
pub use email::{Email, EmailError};
pub use redirect_uri::{LoopbackHttp, RedirectUri, RedirectUriError};
pub use slug::{Slug, SlugError};
