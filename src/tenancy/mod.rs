//! A tenant's own Finch configuration: credentials (sealed, versioned, testable), sandbox mode,
//! and the callback URL it registers with Finch.
//!
//! Sits between the routes and the database: it validates input, seals through the vault and
//! calls the query functions in [`crate::db::models`]; it renders nothing and opens no
//! transaction of its own (the caller's transaction decides the scope).

pub mod credentials;

use crate::finch::wire::SandboxMode;

/// `tenants.finch_sandbox`: whether new Connect sessions ask Finch for a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxSetting {
    /// Real providers (no `sandbox` field in the Connect session).
    None,
    /// Finch-generated data (`sandbox: "finch"`).
    Finch,
    /// A provider's own sandbox (`sandbox: "provider"`).
    Provider,
}

impl SandboxSetting {
    pub const ALL: [Self; 3] = [Self::None, Self::Finch, Self::Provider];

    /// Parses the stored or submitted spelling `none | finch | provider`.
    pub fn parse(raw: &str) -> Result<Self, SandboxSettingError> {
        match raw {
            "none" => Ok(Self::None),
            "finch" => Ok(Self::Finch),
            "provider" => Ok(Self::Provider),
            _ => Err(SandboxSettingError),
        }
    }

    /// The spelling stored in `tenants.finch_sandbox`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Finch => "finch",
            Self::Provider => "provider",
        }
    }

    /// The Connect session's `sandbox` field.
    pub fn to_wire(self) -> Option<SandboxMode> {
        match self {
            Self::None => None,
            Self::Finch => Some(SandboxMode::Finch),
            Self::Provider => Some(SandboxMode::Provider),
        }
    }

    /// A label for the settings form.
    pub fn describe(self) -> &'static str {
        match self {
            Self::None => "Off: real payroll providers",
            Self::Finch => "Finch sandbox: Finch-generated test data",
            Self::Provider => "Provider sandbox: the providers' own test systems",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Choose a sandbox mode: off, Finch sandbox or provider sandbox.")]
pub struct SandboxSettingError;

/// The tenant's Finch callback URL, `{public_url}/t/{slug}/finch/callback`: what the tenant
/// registers in Finch's dashboard and whitelists here.
pub fn callback_url(public_url: &url::Url, slug: &str) -> String {
    format!(
        "{}/t/{slug}/finch/callback",
        public_url.as_str().trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_setting_round_trips_and_refuses_anything_else() {
        for setting in SandboxSetting::ALL {
            assert_eq!(SandboxSetting::parse(setting.as_str()), Ok(setting));
        }
        assert_eq!(SandboxSetting::None.to_wire(), None);
        assert_eq!(SandboxSetting::Finch.to_wire(), Some(SandboxMode::Finch));
        assert_eq!(SandboxSetting::parse("Finch"), Err(SandboxSettingError));
        assert_eq!(SandboxSetting::parse(""), Err(SandboxSettingError));
    }

    #[test]
    fn the_callback_url_hangs_off_the_public_url_without_a_double_slash() -> anyhow::Result<()> {
        for base in ["https://gate.example.com", "https://gate.example.com/"] {
            assert_eq!(
                callback_url(&url::Url::parse(base)?, "acme"),
                "https://gate.example.com/t/acme/finch/callback"
            );
        }
        Ok(())
    }
}
