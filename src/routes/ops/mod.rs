//! Pages under `/ops`: the operator console, mirroring its URLs — `exchanges/` (the failures
//! list, one attempt, triage) and `tenants/` (health, one tenant, invitations, disabling users).

pub mod exchanges;
pub mod tenants;
