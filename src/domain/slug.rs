//! Tenant slugs: the url-safe name in `/t/{slug}/`, checked exactly as the database's CHECK does.

use std::fmt;

/// Longest slug (a DNS label's limit, so a slug can also name a subdomain).
pub const MAX_LEN: usize = 63;

/// A valid tenant slug: 1–63 characters from `a-z`, `0-9` and `-`, not starting or ending with `-`
/// (the `tenants.slug` CHECK: `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

/// Why a slug was refused, worded for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("Enter a slug (lower-case letters, digits and hyphens, e.g. \"acme-payroll\").")]
    Empty,
    #[error("A slug has at most {MAX_LEN} characters.")]
    TooLong,
    #[error(
        "A slug may contain only lower-case letters a-z, digits 0-9 and hyphens; {0:?} is not allowed."
    )]
    InvalidCharacter(char),
    #[error("A slug cannot start or end with a hyphen.")]
    EdgeHyphen,
}

impl Slug {
    /// Checks a slug. Surrounding whitespace (a form field, a shell argument) is ignored; anything
    /// else that is not already a valid slug is refused rather than rewritten, so what the person
    /// typed is what ends up in their URLs.
    pub fn parse(raw: &str) -> Result<Self, SlugError> {
        let slug = raw.trim();
        if slug.is_empty() {
            return Err(SlugError::Empty);
        }
        if let Some(bad) = slug
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(SlugError::InvalidCharacter(bad));
        }
        // Only ASCII from here on, so bytes are characters.
        if slug.len() > MAX_LEN {
            return Err(SlugError::TooLong);
        }
        if slug.starts_with('-') || slug.ends_with('-') {
            return Err(SlugError::EdgeHyphen);
        }
        Ok(Self(slug.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Slug {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The database's CHECK, transcribed: what `parse` must accept, exactly.
    fn matches_db_check(s: &str) -> bool {
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        let chars: Vec<char> = s.chars().collect();
        match chars.as_slice() {
            [] => false,
            [only] => ok_char(*only),
            [first, middle @ .., last] => {
                ok_char(*first)
                    && ok_char(*last)
                    && middle.len() <= 61
                    && middle.iter().all(|c| ok_char(*c) || *c == '-')
            }
        }
    }

    #[test]
    fn typical_slugs_are_accepted() {
        for ok in ["a", "7", "acme", "acme-payroll", "a-b-c", "x1"] {
            assert_eq!(Slug::parse(ok).unwrap().as_str(), ok);
        }
        let longest = "a".repeat(MAX_LEN);
        assert_eq!(Slug::parse(&longest).unwrap().as_str(), longest);
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        assert_eq!(Slug::parse("  acme\n").unwrap().as_str(), "acme");
    }

    #[test]
    fn bad_slugs_are_refused_with_the_reason() {
        assert_eq!(Slug::parse(""), Err(SlugError::Empty));
        assert_eq!(Slug::parse("   "), Err(SlugError::Empty));
        assert_eq!(Slug::parse("Acme"), Err(SlugError::InvalidCharacter('A')));
        assert_eq!(
            Slug::parse("acme_co"),
            Err(SlugError::InvalidCharacter('_'))
        );
        assert_eq!(
            Slug::parse("acme co"),
            Err(SlugError::InvalidCharacter(' '))
        );
        assert_eq!(Slug::parse("acmé"), Err(SlugError::InvalidCharacter('é')));
        assert_eq!(Slug::parse("a/b"), Err(SlugError::InvalidCharacter('/')));
        assert_eq!(Slug::parse("-acme"), Err(SlugError::EdgeHyphen));
        assert_eq!(Slug::parse("acme-"), Err(SlugError::EdgeHyphen));
        assert_eq!(Slug::parse("-"), Err(SlugError::EdgeHyphen));
        assert_eq!(Slug::parse(&"a".repeat(64)), Err(SlugError::TooLong));
    }

    proptest! {
        #[test]
        fn everything_the_database_accepts_parses(s in "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?") {
            let slug = Slug::parse(&s).unwrap();
            prop_assert_eq!(slug.as_str(), s.as_str());
        }

        #[test]
        fn parse_agrees_with_the_database_check(s in "[a-zA-Z0-9_ ./-]{0,70}") {
            let trimmed = s.trim();
            prop_assert_eq!(Slug::parse(&s).is_ok(), matches_db_check(trimmed));
        }

        #[test]
        fn parse_never_panics_and_only_accepts_db_valid_slugs(s in any::<String>()) {
            if let Ok(slug) = Slug::parse(&s) {
                prop_assert!(matches_db_check(slug.as_str()));
            }
        }
    }
}
