//! Pages under `/ops`: the operator console.

pub mod tenants;
