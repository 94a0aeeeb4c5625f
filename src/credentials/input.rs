//! The rules for what an admin types as Finch credentials, and what saving them changes.
//!
//! A blank secret in the settings form means "keep the current one" — allowed only while a
//! secret is stored and the client id stays the same, because a secret belongs to exactly one
//! client id at Finch.

use secrecy::{ExposeSecret as _, SecretString};

use crate::db::models::credentials::Credentials;

/// Longest client id (the column allows as much).
pub const MAX_CLIENT_ID_LEN: usize = 255;
/// Longest client secret accepted.
pub const MAX_CLIENT_SECRET_LEN: usize = 1024;
/// A secret shorter than this shows no characters at all: four of a short secret are too much.
pub const MIN_LEN_TO_SHOW_LAST4: usize = 16;
/// Why submitted credentials cannot be saved. `Display` is a sentence for the admin and never
/// contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("Enter the client ID from the Finch dashboard.")]
    ClientIdMissing,
    #[error("The client ID is {len} characters long; the limit is {MAX_CLIENT_ID_LEN}.")]
    ClientIdTooLong { len: usize },
    #[error(
        "The client ID contains a control character (such as a tab or line break); paste it again without one."
    )]
    ClientIdControl,
    #[error("Enter the client secret from the Finch dashboard.")]
    SecretMissing,
    #[error("The client secret is {len} characters long; the limit is {MAX_CLIENT_SECRET_LEN}.")]
    SecretTooLong { len: usize },
    #[error(
        "The client secret contains a control character (such as a tab or line break); paste it again without one."
    )]
    SecretControl,
    #[error(
        "The client secret starts or ends with a space; paste it again without the surrounding spaces."
    )]
    SecretSurroundingWhitespace,
    #[error(
        "Enter the client secret that belongs to the new client ID: the stored secret belongs to the current one."
    )]
    SecretRequiredForNewClientId,
}

/// Trims surrounding whitespace (an identifier shown back to the admin) and checks the rules.
pub fn parse_client_id(raw: &str) -> Result<String, InputError> {
    let id = raw.trim();
    if id.is_empty() {
        return Err(InputError::ClientIdMissing);
    }
    let len = id.chars().count();
    if len > MAX_CLIENT_ID_LEN {
        return Err(InputError::ClientIdTooLong { len });
    }
    if id.chars().any(char::is_control) {
        return Err(InputError::ClientIdControl);
    }
    Ok(id.to_owned())
}

/// A submitted secret field: `None` when left blank. The secret is never trimmed (it is never
/// shown back, so a silent change could not be noticed); surrounding spaces are refused instead.
pub fn parse_client_secret(raw: SecretString) -> Result<Option<SecretString>, InputError> {
    let secret = raw.expose_secret();
    if secret.is_empty() {
        return Ok(None);
    }
    let len = secret.chars().count();
    if len > MAX_CLIENT_SECRET_LEN {
        return Err(InputError::SecretTooLong { len });
    }
    if secret.chars().any(char::is_control) {
        return Err(InputError::SecretControl);
    }
    if secret.starts_with(char::is_whitespace) || secret.ends_with(char::is_whitespace) {
        return Err(InputError::SecretSurroundingWhitespace);
    }
    Ok(Some(raw))
}

/// What saving the form does to the credentials.
#[derive(Debug)]
pub enum Change {
    /// Blank secret, same client id: the current version stays.
    Keep,
    /// A new version with this client id and secret.
    NewVersion {
        client_id_changed: bool,
        secret: SecretString,
    },
}

/// Decides between keeping the current credentials and storing a new version.
pub fn plan(
    current: Option<&Credentials>,
    client_id: &str,
    secret: Option<SecretString>,
) -> Result<Change, InputError> {
    let client_id_changed = current.is_none_or(|c| c.client_id != client_id);
    match (secret, current) {
        (Some(secret), _) => Ok(Change::NewVersion {
            client_id_changed,
            secret,
        }),
        (None, None) => Err(InputError::SecretMissing),
        (None, Some(_)) if client_id_changed => Err(InputError::SecretRequiredForNewClientId),
        (None, Some(_)) => Ok(Change::Keep),
    }
}

/// The characters shown after `••••`: the last four, or none for a short secret.
pub fn last_four(secret: &SecretString) -> String {
    let secret = secret.expose_secret();
    let len = secret.chars().count();
    if len < MIN_LEN_TO_SHOW_LAST4 {
        return String::new();
    }
    secret.chars().skip(len - 4).collect()
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s)
    }

    #[test]
    fn client_ids_are_trimmed_and_checked() {
        assert_eq!(parse_client_id("  abc-123 "), Ok("abc-123".to_owned()));
        assert_eq!(parse_client_id("   "), Err(InputError::ClientIdMissing));
        assert_eq!(
            parse_client_id(&"a".repeat(256)),
            Err(InputError::ClientIdTooLong { len: 256 })
        );
        assert!(parse_client_id(&"a".repeat(255)).is_ok());
        assert_eq!(parse_client_id("ab\tc"), Err(InputError::ClientIdControl));
        assert_eq!(parse_client_id("a\u{0}b"), Err(InputError::ClientIdControl));
    }

    #[test]
    fn secrets_are_checked_but_never_changed() {
        assert!(matches!(parse_client_secret(secret("")), Ok(None)));
        let kept = parse_client_secret(secret("s3cr3t with inner space"))
            .ok()
            .flatten()
            .map(|s| s.expose_secret().to_owned());
        assert_eq!(kept.as_deref(), Some("s3cr3t with inner space"));
        for (raw, expected) in [
            ("x".repeat(1025), InputError::SecretTooLong { len: 1025 }),
            ("abc\ndef".to_owned(), InputError::SecretControl),
            ("abc\u{1b}def".to_owned(), InputError::SecretControl),
            (
                " abcdef".to_owned(),
                InputError::SecretSurroundingWhitespace,
            ),
            (
                "abcdef ".to_owned(),
                InputError::SecretSurroundingWhitespace,
            ),
        ] {
            assert_eq!(parse_client_secret(secret(&raw)).err(), Some(expected));
        }
        assert!(parse_client_secret(secret(&"x".repeat(1024))).is_ok());
    }

    #[test]
    fn no_input_error_message_contains_what_was_typed() {
        let typed = "abc\ndef-VERY-SECRET";
        let error = parse_client_secret(secret(typed))
            .err()
            .map(|e| e.to_string());
        assert!(error.is_some_and(|m| !m.contains("VERY-SECRET")));
    }

    fn stored(client_id: &str) -> Credentials {
        Credentials {
            id: Uuid::new_v4(),
            tenant_id: Uuid::new_v4(),
            version: 1,
            client_id: client_id.to_owned(),
            secret_kek_id: Some("k1".into()),
            secret_envelope: Some(vec![1]),
            secret_last4: "wxyz".into(),
            created_by: None,
            created_at: chrono::Utc::now(),
            replaced_at: None,
        }
    }

    #[test]
    fn a_blank_secret_keeps_the_current_one_only_for_the_same_client_id() {
        let current = stored("id-1");
        assert!(matches!(
            plan(Some(&current), "id-1", None),
            Ok(Change::Keep)
        ));
        assert_eq!(
            plan(Some(&current), "id-2", None).err(),
            Some(InputError::SecretRequiredForNewClientId)
        );
        assert_eq!(
            plan(None, "id-1", None).err(),
            Some(InputError::SecretMissing)
        );
        assert!(matches!(
            plan(Some(&current), "id-1", Some(secret("new"))),
            Ok(Change::NewVersion {
                client_id_changed: false,
                ..
            })
        ));
        assert!(matches!(
            plan(None, "id-1", Some(secret("new"))),
            Ok(Change::NewVersion {
                client_id_changed: true,
                ..
            })
        ));
    }

    #[test]
    fn only_the_last_four_characters_of_a_long_secret_are_shown() {
        assert_eq!(last_four(&secret("0123456789abcdef")), "cdef");
        assert_eq!(last_four(&secret("ßßßßßßßßßßßß€1üx")), "€1üx");
        assert_eq!(last_four(&secret("0123456789abcde")), "");
        assert_eq!(last_four(&secret("abc")), "");
    }
}
