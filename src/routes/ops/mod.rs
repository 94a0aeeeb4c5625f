//! Pages under `/ops`: the operator console.

pub mod disable_user;
pub mod invite;
pub mod tenant;
pub mod tenants;
