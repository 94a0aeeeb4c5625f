//! Every way an attempt to connect can fail, in one table: its category (on the ledger row and in
//! metrics), who must act, and what the tenant admin is told with the next step.

/// Who has to do something about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The person going through Finch Connect (e.g. connect again).
    EndUser,
    /// The tenant's admin (e.g. fix the Finch credentials).
    TenantAdmin,
    /// Platform staff (e.g. a stored token could not be saved).
    Operator,
    /// Nobody: a transient problem; try again later.
    Nobody,
}

impl Actor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndUser => "end_user",
            Self::TenantAdmin => "tenant_admin",
            Self::Operator => "operator",
            Self::Nobody => "nobody",
        }
    }
}

/// A failure's classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub category: &'static str,
    pub actor: Actor,
    /// Short title of the page the tenant admin sees.
    pub title: &'static str,
    /// What happened and what to do next, in plain words.
    pub next_step: &'static str,
}

macro_rules! failures {
    ($($const:ident = $category:literal, $actor:ident, $title:literal, $next:literal;)+) => {
        $(pub const $const: Failure = Failure { category: $category, actor: Actor::$actor, title: $title, next_step: $next };)+
        /// Every category, for documentation, metrics and tests.
        pub const ALL: &[Failure] = &[$($const),+];
    };
}

failures! {
    USER_DENIED = "user_denied", EndUser, "The connection was cancelled",
        "Access was not granted in Finch Connect. Start again when the payroll administrator is ready to approve.";
    STATE_EXPIRED = "state_expired", EndUser, "This connection attempt has expired",
        "Too much time passed since it was started. Start a new connection.";
    STATE_INVALID = "state_invalid", EndUser, "This connection link is not valid",
        "The link is incomplete or was changed. Start a new connection from finchgate.";
    STATE_SESSION_MISMATCH = "state_session_mismatch", EndUser, "This connection was started in another browser session",
        "For your security, finish a connection in the same browser session that started it. Start a new connection here.";
    STATE_OTHER_TENANT = "state_other_tenant", EndUser, "This connection belongs to another workspace",
        "Start a new connection from this workspace.";
    AMBIGUOUS_PENDING = "ambiguous_pending_flows", EndUser, "We could not tell which connection this was",
        "Several connections were started in this browser. Start a new one and finish it before starting another.";
    INVALID_GRANT = "invalid_grant", EndUser, "The authorization code was not accepted",
        "Finch rejected the code: it expired (codes last 10 minutes), was already used, or was issued for another setup. Connect again.";
    INVALID_CLIENT = "invalid_client", TenantAdmin, "Finch rejected this workspace's credentials",
        "The Finch client ID or secret is wrong or was revoked. An admin must update them under Settings, then connect again.";
    CREDENTIALS_MISSING = "credentials_missing", TenantAdmin, "Finch credentials are not set up",
        "An admin must save this workspace's Finch client ID and secret under Settings first.";
    CREDENTIALS_UNREADABLE = "credentials_unreadable", Operator, "The stored Finch credentials cannot be read",
        "finchgate could not decrypt them (a key problem). The operators have been alerted; an admin can also save them again.";
    FINCH_BAD_REQUEST = "finch_bad_request", TenantAdmin, "Finch refused the request",
        "Finch said the request was not valid (see its message). Check the workspace settings (products, redirect URIs registered with Finch), then connect again.";
    CUSTOMER_MISMATCH = "customer_mismatch", Operator, "The connection did not match this attempt",
        "Finch returned a connection for a different customer than the one this attempt was started for. Nothing was stored; the operators have been alerted.";
    RATE_LIMITED = "finch_rate_limited", Nobody, "Finch is limiting requests",
        "Too many requests reached Finch. Wait a few minutes, then connect again.";
    FINCH_SERVER_ERROR = "finch_server_error", Nobody, "Finch had a problem",
        "Finch answered with a server error. Try again later; Finch suggests waiting a while before retrying.";
    FINCH_TIMEOUT = "finch_timeout", Nobody, "Finch did not answer in time",
        "The request may or may not have been processed. Connect again; if the connection then appears twice, disconnect the older one.";
    FINCH_CONNECTION_LOST = "finch_connection_lost", Nobody, "The connection to Finch broke",
        "The request may or may not have been processed. Connect again.";
    FINCH_UNREACHABLE = "finch_unreachable", Nobody, "Finch could not be reached",
        "Nothing was sent to Finch. Try again in a few minutes.";
    FINCH_MALFORMED = "finch_malformed_response", Operator, "Finch's answer could not be read",
        "The answer was not in the expected format. The operators have been alerted; connect again later.";
    FINCH_REDIRECTED = "finch_redirected", Operator, "Finch answered unexpectedly",
        "Finch answered with a redirect, which finchgate does not follow. The operators have been alerted.";
    FINCH_UNEXPECTED = "finch_unexpected_error", Operator, "Finch answered with an unexpected error",
        "See Finch's message below. The operators have been alerted.";
    TOKEN_NOT_PERSISTED = "token_not_persisted", Operator, "The connection could not be saved",
        "Finch issued access but finchgate could not store it safely, so it was discarded. The operators have been alerted; connect again.";
    UNKNOWN_OUTCOME = "unknown_outcome", Operator, "The result of this attempt is unknown",
        "finchgate stopped before the exchange finished. The operators have been alerted; connect again.";
}

/// Looks a category up (ledger rows store the string).
pub fn by_category(category: &str) -> Option<Failure> {
    ALL.iter().copied().find(|f| f.category == category)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_unique_and_every_one_has_words_for_a_person() {
        let mut seen = std::collections::HashSet::new();
        for failure in ALL {
            assert!(
                seen.insert(failure.category),
                "duplicate {}",
                failure.category
            );
            assert!(failure.category.len() <= 64);
            assert!(failure.title.len() > 10 && failure.next_step.len() > 20);
        }
    }
}
