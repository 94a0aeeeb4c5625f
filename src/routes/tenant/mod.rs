//! Pages under `/t/{slug}`: a tenant admin's own tenant.

pub mod home;
pub mod settings;
