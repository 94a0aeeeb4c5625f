//! TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps) and recovery codes: the pure parts of
//! two-factor sign-in, without I/O. [`crate::auth::two_factor`] stores and checks them.
//!
//! A code is accepted for the current step and one step either side (clock skew); the caller
//! stores the accepted step so the same code (or an older one) is never accepted again.

use totp_rs::{Algorithm, Secret, TOTP};
use zeroize::Zeroizing;

use crate::primitives::{RandomError, constant_time_eq, random_bytes, sha256};

/// Digits of a code.
pub const DIGITS: usize = 6;
/// Seconds per time step.
pub const STEP_SECONDS: i64 = 30;
/// Steps accepted either side of the current one.
pub const SKEW_STEPS: i64 = 1;
/// Bytes of a secret: 160 bits, RFC 4226's recommendation for HMAC-SHA-1.
pub const SECRET_BYTES: usize = 20;
/// Recovery codes issued at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// What authenticator apps show as the account's issuer.
pub const ISSUER: &str = "finchgate";

/// A TOTP secret's raw bytes, wiped from memory when dropped.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    /// A fresh secret from the system's CSPRNG.
    pub fn generate() -> Result<Self, RandomError> {
        let bytes = random_bytes::<SECRET_BYTES>()?;
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret in base32 (RFC 4648, no padding), as authenticator apps take it when typed.
    pub fn base32(&self) -> Zeroizing<String> {
        match Secret::Raw(self.0.to_vec()).to_encoded() {
            Secret::Encoded(text) => Zeroizing::new(text.trim_end_matches('=').to_owned()),
            Secret::Raw(_) => Zeroizing::new(String::new()),
        }
    }

    /// The `otpauth://` URI the QR code carries (Key Uri Format: label `issuer:account`).
    pub fn otpauth_uri(&self, account: &str) -> Zeroizing<String> {
        let encode =
            |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
        Zeroizing::new(format!(
            "otpauth://totp/{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            encode(&format!("{ISSUER}:{account}")),
            self.base32().as_str(),
            encode(ISSUER),
        ))
    }

    fn totp(&self) -> Option<TOTP> {
        TOTP::new(
            Algorithm::SHA1,
            DIGITS,
            0,
            STEP_SECONDS.unsigned_abs(),
            self.0.to_vec(),
        )
        .ok()
    }

    /// The code of time step `step` (`unix_seconds / 30`).
    pub fn code_at_step(&self, step: i64) -> Option<String> {
        let time = u64::try_from(step.checked_mul(STEP_SECONDS)?).ok()?;
        Some(self.totp()?.generate(time))
    }

    /// The step within ±[`SKEW_STEPS`] of `unix_seconds` whose code is `code`, latest first.
    pub fn matching_step(&self, code: &str, unix_seconds: i64) -> Option<i64> {
        let code = code.trim();
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = unix_seconds.div_euclid(STEP_SECONDS);
        let mut found = None;
        // Every candidate is computed and compared, so the time taken does not tell which matched.
        for step in (now - SKEW_STEPS..=now + SKEW_STEPS).rev() {
            if let Some(expected) = self.code_at_step(step)
                && constant_time_eq(expected.as_bytes(), code.as_bytes())
                && found.is_none()
            {
                found = Some(step);
            }
        }
        found
    }
}

/// The QR code of `data` as an inline SVG document (no script, no external reference).
pub fn qr_svg(data: &str) -> Option<String> {
    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .dark_color(qrcode::render::svg::Color("#000000"))
            .light_color(qrcode::render::svg::Color("#ffffff"))
            .build(),
    )
}

/// A recovery code as shown to the person: 80 random bits in base32, four groups of four
/// (`abcd-efgh-ijkl-mnop`).
pub fn new_recovery_code() -> Result<Zeroizing<String>, RandomError> {
    let bytes = random_bytes::<10>()?;
    let raw = match Secret::Raw(bytes.to_vec()).to_encoded() {
        Secret::Encoded(text) => Zeroizing::new(text.to_lowercase()),
        Secret::Raw(_) => return Err(RandomError),
    };
    let grouped: String = raw
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join("-");
    Ok(Zeroizing::new(grouped))
}

/// How a recovery code is stored: SHA-256 of its normalised form (lower case, no separators).
///
/// A plain SHA-256 is enough here, unlike for passwords: a code carries 80 random bits, so
/// guessing it from the hash would take about 2^79 hash computations, out of reach, and a
/// deliberately slow hash would add nothing but cost to every sign-in with a code.
pub fn recovery_code_hash(code: &str) -> Option<Vec<u8>> {
    let normalised: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (normalised.len() == 16 && normalised.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| sha256(normalised.as_bytes()))
}

/// Whether what someone typed is shaped like a TOTP code (rather than a recovery code).
pub fn looks_like_totp_code(input: &str) -> bool {
    let input = input.trim();
    input.len() == DIGITS && input.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_6238_test_vector_for_sha1_matches() {
        // RFC 6238 appendix B: secret "12345678901234567890", T = 59 s → 94287082 (8 digits);
        // its last six digits are the 6-digit code.
        let secret = TotpSecret::from_bytes(b"12345678901234567890");
        assert_eq!(secret.code_at_step(1).as_deref(), Some("287082"));
        assert_eq!(secret.matching_step("287082", 59), Some(1));
    }

    #[test]
    fn one_step_either_side_is_accepted_and_two_are_not() {
        let secret = TotpSecret::generate().unwrap();
        let now = 1_800_000_015;
        let step = now / STEP_SECONDS;
        for delta in [-1, 0, 1] {
            let code = secret.code_at_step(step + delta).unwrap();
            assert_eq!(secret.matching_step(&code, now), Some(step + delta));
        }
        for delta in [-2, 2] {
            let code = secret.code_at_step(step + delta).unwrap();
            // A different step's code may collide by chance (1 in a million); only then skip.
            if (-1..=1).all(|d| secret.code_at_step(step + d).unwrap() != code) {
                assert_eq!(secret.matching_step(&code, now), None);
            }
        }
        assert_eq!(secret.matching_step("12345", now), None);
        assert_eq!(secret.matching_step("abcdef", now), None);
    }

    #[test]
    fn recovery_codes_are_random_and_hash_the_same_however_typed() {
        let a = new_recovery_code().unwrap();
        let b = new_recovery_code().unwrap();
        assert_ne!(*a, *b);
        assert_eq!(a.len(), 19);
        let hash = recovery_code_hash(&a).unwrap();
        assert_eq!(
            recovery_code_hash(&a.to_uppercase().replace('-', " ")),
            Some(hash)
        );
        assert_eq!(recovery_code_hash("too-short"), None);
    }

    #[test]
    fn the_qr_code_is_an_svg_and_the_uri_names_the_account() {
        let secret = TotpSecret::generate().unwrap();
        let uri = secret.otpauth_uri("ops@example.com");
        assert!(uri.starts_with("otpauth://totp/finchgate%3Aops%40example.com?secret="));
        assert!(uri.contains(secret.base32().as_str()));
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.contains("<svg") && !svg.contains("<script"));
    }
}
