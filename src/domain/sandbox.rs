//! Sandbox modes: what a Connect session asks Finch for (`sandbox` on the wire) and what a
//! tenant stores as its setting (`tenants.finch_sandbox`, which adds "off").

use crate::domain::string_enum::string_enum;

string_enum! {
    /// A Connect session's `sandbox` mode: Finch-generated data or a provider's own sandbox.
    SandboxMode {
        Finch => "finch",
        Provider => "provider",
    }
}

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
}
