//! What a callback may carry, checked before anything is looked up: the lengths and alphabets of
//! the code, the state and Finch Connect's `error`. A pure function of the input, so the fuzzer
//! (`fuzz/`, target `callback_input`) and the property tests here can drive it.

use secrecy::{ExposeSecret as _, SecretString};

use crate::domain::failure::{self, Failure};
use crate::primitives::looks_like_token;

/// What arrived on the callback, before any check.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CallbackInput {
    pub code: Option<SecretString>,
    pub state: Option<SecretString>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Longest authorization code accepted.
pub const MAX_CODE_LEN: usize = 256;
/// Longest `error` accepted.
pub const MAX_ERROR_LEN: usize = 64;

/// A callback's input that passed the shape checks.
#[derive(Debug)]
pub struct Shaped {
    /// The authorization code (base64url-ish, at most [`MAX_CODE_LEN`] bytes).
    pub code: Option<SecretString>,
    /// Finch Connect's `error` (lowercase and `_`, at most [`MAX_ERROR_LEN`] bytes).
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// A token-shaped state ([`looks_like_token`]), or absent (redirect-flow fallback).
    pub state: Option<SecretString>,
}

fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

fn valid_error(error: &str) -> bool {
    !error.is_empty()
        && error.len() <= MAX_ERROR_LEN
        && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// The shape checks: a code or an error must be present, and each part present must have its
/// shape. What fails here is never looked up, recorded or sent anywhere.
pub fn check_shape(input: CallbackInput) -> Result<Shaped, Failure> {
    let code = match input.code {
        Some(code) if valid_code(code.expose_secret()) => Some(code),
        Some(_) => return Err(failure::STATE_INVALID),
        None => None,
    };
    let error = match input.error {
        Some(e) if valid_error(&e) => Some(e),
        Some(_) => return Err(failure::STATE_INVALID),
        None => None,
    };
    if code.is_none() && error.is_none() {
        return Err(failure::STATE_INVALID);
    }
    let state = match input.state {
        Some(state) if looks_like_token(state.expose_secret()) => Some(state),
        Some(_) => return Err(failure::STATE_INVALID),
        None => None,
    };
    Ok(Shaped {
        code,
        error,
        error_description: input.error_description,
        state,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::primitives::TOKEN_CHARS;

    /// The callback's query string as actix's `web::Query` reads it.
    fn from_query(raw: &str) -> Option<CallbackInput> {
        serde_urlencoded::from_str(raw).ok()
    }

    fn shaped(code: Option<&str>, state: Option<&str>, error: Option<&str>) -> Option<Shaped> {
        check_shape(CallbackInput {
            code: code.map(SecretString::from),
            state: state.map(SecretString::from),
            error: error.map(str::to_owned),
            error_description: None,
        })
        .ok()
    }

    proptest! {
        #[test]
        fn what_passes_has_the_promised_shape(
            code in proptest::option::of(any::<String>()),
            state in proptest::option::of(any::<String>()),
            error in proptest::option::of(any::<String>()),
        ) {
            let input = CallbackInput {
                code: code.map(SecretString::from),
                state: state.map(SecretString::from),
                error,
                error_description: None,
            };
            if let Ok(shaped) = check_shape(input) {
                prop_assert!(shaped.code.is_some() || shaped.error.is_some());
                if let Some(code) = &shaped.code {
                    prop_assert!(valid_code(code.expose_secret()));
                }
                if let Some(state) = &shaped.state {
                    prop_assert_eq!(state.expose_secret().len(), TOKEN_CHARS);
                }
            }
        }

        #[test]
        fn a_well_formed_callback_always_passes(
            code in "[A-Za-z0-9._~-]{1,256}",
            state in "[A-Za-z0-9_-]{43}",
        ) {
            let query = format!("code={code}&state={state}");
            let input = from_query(&query).expect("a plain query parses");
            let shaped = check_shape(input).expect("a well-formed callback passes");
            prop_assert_eq!(shaped.code.map(|c| c.expose_secret().to_owned()), Some(code));
            prop_assert_eq!(shaped.state.map(|s| s.expose_secret().to_owned()), Some(state));
        }

        #[test]
        fn a_state_of_any_other_length_is_refused(state in "[A-Za-z0-9_-]{0,200}") {
            prop_assume!(state.len() != TOKEN_CHARS);
            prop_assert!(shaped(Some("abc"), Some(&state), None).is_none());
        }

        #[test]
        fn one_character_outside_the_code_alphabet_refuses_the_callback(
            prefix in "[A-Za-z0-9._~-]{0,100}",
            bad in any::<char>().prop_filter("outside the alphabet", |c| {
                !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
            }),
            suffix in "[A-Za-z0-9._~-]{0,100}",
        ) {
            let code = format!("{prefix}{bad}{suffix}");
            prop_assert!(shaped(Some(&code), None, None).is_none());
        }

        #[test]
        fn an_error_outside_lowercase_and_underscores_refuses_the_callback(
            error in "[a-z_]{0,10}[^a-z_][a-z_]{0,10}",
        ) {
            prop_assert!(shaped(None, None, Some(&error)).is_none());
        }
    }

    #[test]
    fn a_callback_needs_a_code_or_an_error_and_nothing_oversized() {
        let state = "A".repeat(TOKEN_CHARS);
        assert!(shaped(None, Some(&state), None).is_none(), "state alone");
        assert!(shaped(Some(""), Some(&state), None).is_none(), "empty code");
        assert!(shaped(Some(&"a".repeat(MAX_CODE_LEN + 1)), None, None).is_none());
        assert!(shaped(Some(&"a".repeat(MAX_CODE_LEN)), None, None).is_some());
        assert!(shaped(None, None, Some(&"a".repeat(MAX_ERROR_LEN + 1))).is_none());
        assert!(shaped(None, None, Some("access_denied")).is_some());
    }
}
