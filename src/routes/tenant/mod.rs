//! Pages under `/t/{slug}`: a tenant admin's own tenant.

pub mod attempts;
pub mod callback;
pub mod connect;
pub mod connections;
pub mod home;
pub mod links;
pub mod settings;
