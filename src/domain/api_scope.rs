//! What an API key may do: its scopes, stored and sent as their wire spelling.

use super::string_enum::string_enum;

string_enum! {
    /// One permission of an API key (DESIGN.md "The tenant API").
    ApiScope {
        /// List and read connections.
        ConnectionsRead => "connections:read",
        /// Disconnect connections.
        ConnectionsWrite => "connections:write",
        /// Create and revoke connect links.
        LinksWrite => "links:write",
        /// Call Finch through the proxy.
        FinchProxy => "finch:proxy",
        /// Start Finch jobs (`/jobs/*`: paid data syncs) through the proxy.
        FinchJobs => "finch:jobs",
        /// Finch's raw `/forward` through the proxy.
        FinchForward => "finch:forward",
    }
}

impl ApiScope {
    /// What the scope allows, for the settings page.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ConnectionsRead => "list and read connections and the ledger",
            Self::ConnectionsWrite => "disconnect connections",
            Self::LinksWrite => "create and revoke connect links",
            Self::FinchProxy => "call Finch's data endpoints through finchgate",
            Self::FinchJobs => "start Finch jobs (paid data syncs)",
            Self::FinchForward => "use Finch's raw /forward endpoint",
        }
    }
}

/// Parses a list of scope names: at least one, each known, no repeats (kept in the given order).
pub fn parse_list<'a>(raw: impl IntoIterator<Item = &'a str>) -> Result<Vec<ApiScope>, String> {
    let mut scopes = Vec::new();
    for name in raw {
        let scope: ApiScope = name.trim().parse().map_err(|e| format!("{e}"))?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err(format!(
            "choose at least one scope; one of: {}",
            ApiScope::expected()
        ));
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_round_trips_through_its_wire_spelling() {
        for scope in ApiScope::ALL {
            assert_eq!(scope.as_str().parse::<ApiScope>(), Ok(*scope));
        }
    }

    #[test]
    fn a_scope_list_needs_one_known_scope_and_drops_repeats() {
        assert_eq!(
            parse_list(["connections:read", "connections:read"]),
            Ok(vec![ApiScope::ConnectionsRead])
        );
        assert!(parse_list([]).is_err());
        assert!(parse_list(["connections:admin"]).is_err());
    }
}
