//! Email addresses of users: trimmed, lower-cased, and plausibly deliverable.
//!
//! Deliberately not a full RFC 5322 parser: quoted local parts, comments and IP-literal domains
//! are refused. What is accepted is one `@` between a non-empty local part and a domain of
//! dot-separated labels, without whitespace, control characters or the characters that only
//! appear in the exotic forms; 254 characters at most (RFC 5321's limit for a path).

use std::fmt;

/// Longest address (RFC 5321: 256-character path minus the angle brackets).
pub const MAX_LEN: usize = 254;
/// Longest local part (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_LEN: usize = 64;

/// A normalised email address: the form stored in `users.email` and compared on sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Why an address was refused, worded for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("Enter an email address.")]
    Empty,
    #[error("An email address has at most {MAX_LEN} characters.")]
    TooLong,
    #[error(
        "An email address needs exactly one @ between a name and a domain, e.g. name@example.com."
    )]
    NotOneAt,
    #[error("The part before the @ is missing or longer than {MAX_LOCAL_LEN} characters.")]
    BadLocalPart,
    #[error("The domain after the @ should look like example.com.")]
    BadDomain,
    #[error("An email address cannot contain spaces or the character {0:?}.")]
    InvalidCharacter(char),
}

impl Email {
    /// Trims surrounding whitespace, lower-cases, and checks the shape.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(EmailError::Empty);
        }
        if email.chars().count() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        if let Some(bad) = email
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"".contains(*c))
        {
            return Err(EmailError::InvalidCharacter(bad));
        }
        let mut parts = email.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailError::NotOneAt);
        };
        if local.is_empty()
            || local.chars().count() > MAX_LOCAL_LEN
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return Err(EmailError::BadLocalPart);
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |label: &&str| {
            !label.is_empty()
                && label.chars().count() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(EmailError::BadDomain);
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Admin@Acme.Example \n").unwrap().as_str(),
            "admin@acme.example"
        );
        assert_eq!(
            Email::parse("first.last+tag@mail.example.co.uk")
                .unwrap()
                .as_str(),
            "first.last+tag@mail.example.co.uk"
        );
    }

    #[test]
    fn malformed_addresses_are_refused_with_the_reason() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        assert_eq!(Email::parse("  "), Err(EmailError::Empty));
        assert_eq!(Email::parse("acme.example"), Err(EmailError::NotOneAt));
        assert_eq!(Email::parse("a@b@c.example"), Err(EmailError::NotOneAt));
        assert_eq!(Email::parse("@acme.example"), Err(EmailError::BadLocalPart));
        assert_eq!(
            Email::parse(".a@acme.example"),
            Err(EmailError::BadLocalPart)
        );
        assert_eq!(
            Email::parse("a..b@acme.example"),
            Err(EmailError::BadLocalPart)
        );
        assert_eq!(
            Email::parse(&format!("{}@acme.example", "a".repeat(65))),
            Err(EmailError::BadLocalPart)
        );
        assert_eq!(Email::parse("admin@"), Err(EmailError::BadDomain));
        assert_eq!(Email::parse("admin@localhost"), Err(EmailError::BadDomain));
        assert_eq!(
            Email::parse("admin@acme..example"),
            Err(EmailError::BadDomain)
        );
        assert_eq!(
            Email::parse("admin@-acme.example"),
            Err(EmailError::BadDomain)
        );
        assert_eq!(
            Email::parse("admin@acme.example."),
            Err(EmailError::BadDomain)
        );
        assert_eq!(
            Email::parse("ad min@acme.example"),
            Err(EmailError::InvalidCharacter(' '))
        );
        assert_eq!(
            Email::parse("\"admin\"@acme.example"),
            Err(EmailError::InvalidCharacter('"'))
        );
        assert_eq!(
            Email::parse("admin@[127.0.0.1]"),
            Err(EmailError::InvalidCharacter('['))
        );
        assert_eq!(
            Email::parse("admin@acme.example\r\nBcc: x@y.example"),
            Err(EmailError::InvalidCharacter('\r'))
        );
    }

    #[test]
    fn the_length_limit_is_254_characters() {
        let domain = format!(
            "{}.{}.{}.example",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63)
        );
        let fits = format!("{}@{domain}", "x".repeat(MAX_LEN - 1 - domain.len()));
        assert_eq!(fits.len(), MAX_LEN);
        assert!(Email::parse(&fits).is_ok());
        assert_eq!(Email::parse(&format!("y{fits}")), Err(EmailError::TooLong));
    }

    proptest! {
        #[test]
        fn plausible_addresses_parse_to_their_lower_case_form(
            local in "[A-Za-z0-9][A-Za-z0-9._+-]{0,20}[A-Za-z0-9]",
            domain in "[A-Za-z0-9]{1,10}(\\.[A-Za-z0-9]{1,10}){1,3}",
        ) {
            prop_assume!(!local.contains(".."));
            let raw = format!(" {local}@{domain} ");
            let parsed = Email::parse(&raw).unwrap();
            prop_assert_eq!(parsed.as_str(), format!("{local}@{domain}").to_lowercase());
        }

        #[test]
        fn whatever_parses_is_normalised_and_has_one_at(s in any::<String>()) {
            if let Ok(email) = Email::parse(&s) {
                let e = email.as_str();
                prop_assert_eq!(e.matches('@').count(), 1);
                prop_assert_eq!(e, e.trim());
                prop_assert_eq!(e.to_lowercase(), e);
                prop_assert!(e.chars().count() <= MAX_LEN && e.len() >= 3);
                prop_assert!(!e.chars().any(char::is_whitespace));
            }
        }

        #[test]
        fn parsing_is_idempotent(s in any::<String>()) {
            if let Ok(email) = Email::parse(&s) {
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
            }
        }
    }
}
