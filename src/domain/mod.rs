//! Pure types and rules, no I/O: identifiers, slugs, emails, redirect URIs, failure classification.

pub mod products;
pub mod redirect_uri;

pub use redirect_uri::{RedirectUri, RedirectUriError};
