//! The password policy (SECURITY.md PW-3, ASVS 5.0 6.2.1–6.2.12): long enough, not absurdly long,
//! not one of the most common passwords, and nothing else.
//!
//! No composition rules (no "one digit, one symbol"), and the password is checked exactly as
//! received: no trimming, no truncation, no normalisation. Whatever passes here is hashed as is.

use std::collections::HashSet;
use std::sync::LazyLock;

/// Fewest characters accepted.
pub const MIN_CHARS: usize = 8;
/// What forms recommend: long passphrases beat clever short passwords.
pub const RECOMMENDED_CHARS: usize = 15;
/// Most bytes accepted, so that hashing cannot be turned into a denial of service (PW-4).
pub const MAX_BYTES: usize = 1024;

/// The 3,000 most common passwords (lower case), see the header of the file for its source.
const COMMON_PASSWORDS_FILE: &str = include_str!("../../static/common-passwords.txt");

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    COMMON_PASSWORDS_FILE
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// Why a password was refused, worded for the person choosing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "Use at least {MIN_CHARS} characters; {RECOMMENDED_CHARS} or more is recommended (a few unrelated words make a good passphrase)."
    )]
    TooShort,
    #[error("Use at most {MAX_BYTES} bytes.")]
    TooLong,
    #[error(
        "That is one of the most commonly used passwords, so it is easy to guess. Choose another."
    )]
    Common,
}

/// Checks a new password against the policy.
pub fn check(password: &str) -> Result<(), PolicyError> {
    if password.len() > MAX_BYTES {
        return Err(PolicyError::TooLong);
    }
    if password.chars().count() < MIN_CHARS {
        return Err(PolicyError::TooShort);
    }
    if is_common(password) {
        return Err(PolicyError::Common);
    }
    Ok(())
}

/// Why a new password typed twice (a set-password form) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NewPasswordError {
    #[error("The two passwords differ. Type the same password in both fields.")]
    Differ,
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// Checks a new password typed twice: the same both times, then [`check`].
pub fn check_typed_twice(password: &str, again: &str) -> Result<(), NewPasswordError> {
    if password != again {
        return Err(NewPasswordError::Differ);
    }
    Ok(check(password)?)
}

/// Whether a password is on the common-password list, ignoring case.
pub fn is_common(password: &str) -> bool {
    COMMON.contains(password.to_lowercase().as_str())
}

/// A one-line hint for forms.
pub fn hint() -> String {
    format!(
        "At least {MIN_CHARS} characters; {RECOMMENDED_CHARS} or more is recommended. Any characters are fine, spaces included."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_password_typed_twice_must_match_then_meet_the_policy() {
        let good = "correct horse battery staple";
        assert_eq!(check_typed_twice(good, good), Ok(()));
        assert_eq!(
            check_typed_twice(good, "correct horse battery stapler"),
            Err(NewPasswordError::Differ)
        );
        assert_eq!(
            check_typed_twice("short", "short"),
            Err(NewPasswordError::Policy(PolicyError::TooShort))
        );
    }

    #[test]
    fn the_list_holds_three_thousand_distinct_lower_case_passwords() {
        assert_eq!(COMMON.len(), 3000);
        assert!(
            COMMON
                .iter()
                .all(|p| p.to_lowercase() == *p && !p.is_empty())
        );
        assert!(COMMON.contains("password") && COMMON.contains("123456"));
    }

    #[test]
    fn the_policy_table() {
        let cases: &[(&str, Result<(), PolicyError>)] = &[
            ("", Err(PolicyError::TooShort)),
            ("seven77", Err(PolicyError::TooShort)),
            ("eight888", Ok(())),
            // Common, in any case.
            ("password", Err(PolicyError::Common)),
            ("PASSWORD", Err(PolicyError::Common)),
            ("Password", Err(PolicyError::Common)),
            ("12345678", Err(PolicyError::Common)),
            ("iloveyou", Err(PolicyError::Common)),
            ("trustno1", Err(PolicyError::Common)),
            ("baseball", Err(PolicyError::Common)),
            ("football", Err(PolicyError::Common)),
            ("qwertyuiop", Err(PolicyError::Common)),
            ("1qaz2wsx", Err(PolicyError::Common)),
            // No composition rules: all lower case, all digits, spaces — all fine if long and rare.
            ("correct horse battery staple", Ok(())),
            ("73920418", Ok(())),
            ("zzzzzzzzzzzzzzzz", Ok(())),
            // Characters, not bytes, count towards the minimum.
            ("ääääääää", Ok(())),
            ("äääääää", Err(PolicyError::TooShort)),
            ("🦀🦀🦀🦀🦀🦀🦀🦀", Ok(())),
        ];
        for (password, expected) in cases {
            assert_eq!(check(password), *expected, "{password:?}");
        }
    }

    #[test]
    fn long_passwords_are_allowed_up_to_1024_bytes() {
        assert_eq!(check(&"x".repeat(64)), Ok(()));
        assert_eq!(check(&"x".repeat(MAX_BYTES)), Ok(()));
        assert_eq!(check(&"x".repeat(MAX_BYTES + 1)), Err(PolicyError::TooLong));
        // 342 three-byte characters = 1026 bytes: the limit is in bytes.
        assert_eq!(check(&"€".repeat(342)), Err(PolicyError::TooLong));
    }

    #[test]
    fn the_password_is_checked_as_received_without_trimming() {
        // Seven characters plus a space is eight: accepted, not trimmed to seven.
        assert_eq!(check("seven77 "), Ok(()));
        // Surrounding spaces make a common password a different one.
        assert_eq!(check(" password "), Ok(()));
        assert_eq!(check("password"), Err(PolicyError::Common));
    }

    #[test]
    fn the_messages_recommend_fifteen_characters() {
        assert!(PolicyError::TooShort.to_string().contains("15 or more"));
        assert!(hint().contains("15 or more"));
    }

    proptest! {
        #[test]
        fn rare_passwords_of_eight_to_a_thousand_characters_pass(p in "[a-z0-9 ]{8,1000}") {
            prop_assume!(!is_common(&p));
            prop_assert_eq!(check(&p), Ok(()));
        }

        #[test]
        fn anything_shorter_than_eight_characters_fails(p in ".{0,7}") {
            prop_assert_eq!(check(&p), Err(PolicyError::TooShort));
        }

        #[test]
        fn a_common_password_fails_in_any_case(index in 0usize..3000, flips in any::<u64>()) {
            let mut list: Vec<&str> = COMMON.iter().copied().collect();
            list.sort_unstable();
            let base = list[index];
            let varied: String = base
                .chars()
                .enumerate()
                .map(|(i, c)| if flips >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c })
                .collect();
            let expected = if base.chars().count() < MIN_CHARS {
                Err(PolicyError::TooShort)
            } else {
                Err(PolicyError::Common)
            };
            prop_assert_eq!(check(&varied), expected);
        }
    }
}
