//! Pure types and rules, no I/O: identifiers, slugs, emails, redirect URIs, failure classification.
pub mod failure;
