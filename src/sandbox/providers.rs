//! The payroll providers the sandbox offers on its Connect page.

use crate::finch::wire::AuthMethod;

/// A provider a sandbox employer can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Provider {
    /// Finch's provider id, e.g. `gusto`.
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    /// How Finch usually authenticates with it (used when the session does not say).
    pub(crate) default_auth: AuthMethod,
}

/// A handful of real Finch provider ids, enough for realistic demos and tests.
pub(crate) const PROVIDERS: &[Provider] = &[
    Provider {
        id: "gusto",
        name: "Gusto",
        default_auth: AuthMethod::Oauth,
    },
    Provider {
        id: "adp_run",
        name: "ADP Run",
        default_auth: AuthMethod::Credential,
    },
    Provider {
        id: "paychex_flex",
        name: "Paychex Flex",
        default_auth: AuthMethod::Credential,
    },
    Provider {
        id: "bamboo_hr",
        name: "BambooHR",
        default_auth: AuthMethod::ApiToken,
    },
    Provider {
        id: "justworks",
        name: "Justworks",
        default_auth: AuthMethod::Credential,
    },
    Provider {
        id: "rippling",
        name: "Rippling",
        default_auth: AuthMethod::Oauth,
    },
];

/// Looks a provider up by id.
pub(crate) fn find(id: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.id == id)
}

/// The known ids, for error messages.
pub(crate) fn known_ids() -> String {
    PROVIDERS
        .iter()
        .map(|p| p.id)
        .collect::<Vec<_>>()
        .join(", ")
}
