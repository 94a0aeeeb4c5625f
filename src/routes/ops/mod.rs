//! Pages under `/ops`: the operator console.

pub mod disable_user;
pub mod exchange;
pub mod exchanges;
pub mod invite;
pub mod resolve;
pub mod tenant;
pub mod tenants;
