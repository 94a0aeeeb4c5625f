//! Pure types and rules, no I/O: identifiers, slugs, emails, redirect URIs, failure classification.

pub mod email;
pub mod failure;
pub mod password_policy;
pub mod slug;

pub use email::{Email, EmailError};
pub use slug::{Slug, SlugError};
