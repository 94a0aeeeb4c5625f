//! Security primitives behind named functions, in one place (STYLE.md rule 11): SHA-256 for
//! values stored at rest as digests, constant-time comparison, and random tokens from the
//! system's CSPRNG. Everything that hashes a token, compares a secret or mints one calls these.

use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use zeroize::Zeroizing;

/// SHA-256 of `value`: how states, session keys, session bindings and setup-link tokens are
/// stored and looked up.
pub fn sha256(value: impl AsRef<[u8]>) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, value.as_ref())
        .as_ref()
        .to_vec()
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The system's random number generator failed: nothing random can be made, so refuse.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// `N` bytes from the system's CSPRNG, wiped from memory when dropped.
pub fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, RandomError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| RandomError)?;
    Ok(bytes)
}

/// Characters of a [`random_token`]: unpadded base64 of 32 bytes.
pub const TOKEN_CHARS: usize = 43;

/// 32 random bytes (256 bits), URL-safe base64 without padding ([`TOKEN_CHARS`] characters):
/// states, CSRF tokens, session bindings, setup links.
pub fn random_token() -> Result<String, RandomError> {
    let bytes = random_bytes::<32>()?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

/// Whether `candidate` could be a [`random_token`] at all: a cheap check before any lookup.
pub fn looks_like_token(candidate: &str) -> bool {
    candidate.len() == TOKEN_CHARS
        && candidate
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_published_test_vector() {
        let digest = sha256("abc");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn constant_time_eq_is_equality_including_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn tokens_have_the_promised_shape_and_differ() -> Result<(), RandomError> {
        let (a, b) = (random_token()?, random_token()?);
        assert!(looks_like_token(&a) && looks_like_token(&b));
        assert_ne!(a, b);
        Ok(())
    }

    #[test]
    fn only_token_shaped_strings_look_like_tokens() {
        assert!(looks_like_token(&"A".repeat(43)));
        assert!(looks_like_token(&format!("{}x", "-_".repeat(21))));
        assert!(!looks_like_token(&"A".repeat(42)));
        assert!(!looks_like_token(&"A".repeat(44)));
        assert!(!looks_like_token(&format!("{}=", "A".repeat(42))));
        assert!(!looks_like_token(&format!("{}/", "A".repeat(42))));
    }
}
