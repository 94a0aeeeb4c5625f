//! The stored envelope's byte layout: a strict parser and its encoder, no cryptography.
//!
//! Layout, version 1:
//!
//! ```text
//! offset       size      field
//! 0            1         format version, 0x01
//! 1            1         n = kek id length, 1..=64
//! 2            n         kek id, ASCII [A-Za-z0-9_.-]
//! 2+n          12        DEK nonce
//! 14+n         48        wrapped DEK: AES-256-GCM(KEK, DEK) = 32 bytes ciphertext ‖ 16 bytes tag
//! 62+n         12        value nonce
//! 74+n         ≥16       value ciphertext ‖ 16-byte tag, to the end of the input
//! ```
//!
//! The value ciphertext has no length field: it runs to the end, so bytes appended to an envelope
//! become part of it and fail the GCM tag rather than being ignored.
//!
//! The parser is exposed for fuzzing: any input yields `Ok` or `Err`, never a panic, which this
//! module backs by denying indexing, slicing and unchecked arithmetic outright.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::fmt;

use super::VaultError;
use super::keyring::{KEY_LEN, KekId, MAX_KEK_ID_LEN};

/// The only envelope (and AAD) format version this code writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// AES-GCM nonce length (96 bits).
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// A DEK sealed under a KEK: ciphertext plus tag.
pub const WRAPPED_DEK_LEN: usize = KEY_LEN + TAG_LEN;
/// Upper bound on a whole envelope, checked before anything else is read.
pub const MAX_ENVELOPE_LEN: usize = 64 * 1024;
/// Everything but the plaintext, for the longest kek id.
const MAX_OVERHEAD: usize = 2 + MAX_KEK_ID_LEN + NONCE_LEN + WRAPPED_DEK_LEN + NONCE_LEN + TAG_LEN;
/// The largest plaintext `seal` accepts: its envelope fits `MAX_ENVELOPE_LEN` under any kek id,
/// so re-wrapping to a longer id can never produce an envelope the parser would reject.
pub const MAX_PLAINTEXT_LEN: usize = MAX_ENVELOPE_LEN - MAX_OVERHEAD;

/// A parsed envelope borrowing from the stored bytes. All fields are ciphertext or public.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    kek_id: KekId,
    dek_nonce: [u8; NONCE_LEN],
    wrapped_dek: &'a [u8; WRAPPED_DEK_LEN],
    value_nonce: [u8; NONCE_LEN],
    value_ciphertext: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// Parses a version-1 envelope. Rejects, as `VaultError::Malformed`: more than
    /// `MAX_ENVELOPE_LEN` bytes, a version other than 1, a kek id length outside 1..=64, a kek id
    /// with characters outside `[A-Za-z0-9_.-]`, and any input too short for its fields. Does
    /// not check the kek id is configured nor authenticate anything; `Vault::open` does.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, VaultError> {
        if bytes.len() > MAX_ENVELOPE_LEN {
            return Err(VaultError::Malformed("envelope longer than 64 KiB"));
        }
        let (&version, rest) = bytes
            .split_first()
            .ok_or(VaultError::Malformed("empty envelope"))?;
        if version != FORMAT_VERSION {
            return Err(VaultError::Malformed("unsupported envelope version"));
        }
        let (&id_len, rest) = rest.split_first().ok_or(TRUNCATED)?;
        let id_len = usize::from(id_len);
        if !(1..=MAX_KEK_ID_LEN).contains(&id_len) {
            return Err(VaultError::Malformed("kek id length out of range"));
        }
        let (id, rest) = rest.split_at_checked(id_len).ok_or(TRUNCATED)?;
        let kek_id = std::str::from_utf8(id)
            .ok()
            .and_then(|id| KekId::parse(id).ok())
            .ok_or(VaultError::Malformed("kek id has invalid characters"))?;
        let (dek_nonce, rest) = rest.split_first_chunk::<NONCE_LEN>().ok_or(TRUNCATED)?;
        let (wrapped_dek, rest) = rest
            .split_first_chunk::<WRAPPED_DEK_LEN>()
            .ok_or(TRUNCATED)?;
        let (value_nonce, value_ciphertext) =
            rest.split_first_chunk::<NONCE_LEN>().ok_or(TRUNCATED)?;
        if value_ciphertext.len() < TAG_LEN {
            return Err(TRUNCATED);
        }
        // Only reachable with a short kek id; `seal` never produces it, so neither may a parse.
        if value_ciphertext.len() > MAX_PLAINTEXT_LEN.saturating_add(TAG_LEN) {
            return Err(VaultError::Malformed("value ciphertext too long"));
        }
        Ok(Self {
            kek_id,
            dek_nonce: *dek_nonce,
            wrapped_dek,
            value_nonce: *value_nonce,
            value_ciphertext,
        })
    }

    /// Assembles an envelope from its parts (used by `seal` and `rewrap`).
    pub(super) fn new(
        kek_id: KekId,
        dek_nonce: [u8; NONCE_LEN],
        wrapped_dek: &'a [u8; WRAPPED_DEK_LEN],
        value_nonce: [u8; NONCE_LEN],
        value_ciphertext: &'a [u8],
    ) -> Self {
        Self {
            kek_id,
            dek_nonce,
            wrapped_dek,
            value_nonce,
            value_ciphertext,
        }
    }

    /// The stored form; `Envelope::parse(&e.to_bytes()) == Ok(e)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let id = self.kek_id.as_str().as_bytes();
        let mut out = Vec::with_capacity(self.value_ciphertext.len().saturating_add(MAX_OVERHEAD));
        out.push(FORMAT_VERSION);
        // `KekId` caps ids at 64 bytes, so the length always fits its byte.
        out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(id);
        out.extend_from_slice(&self.dek_nonce);
        out.extend_from_slice(self.wrapped_dek);
        out.extend_from_slice(&self.value_nonce);
        out.extend_from_slice(self.value_ciphertext);
        out
    }

    pub fn kek_id(&self) -> &KekId {
        &self.kek_id
    }

    pub fn into_kek_id(self) -> KekId {
        self.kek_id
    }

    pub fn dek_nonce(&self) -> [u8; NONCE_LEN] {
        self.dek_nonce
    }

    pub fn wrapped_dek(&self) -> &'a [u8; WRAPPED_DEK_LEN] {
        self.wrapped_dek
    }

    pub fn value_nonce(&self) -> [u8; NONCE_LEN] {
        self.value_nonce
    }

    /// Value ciphertext followed by its 16-byte tag.
    pub fn value_ciphertext(&self) -> &'a [u8] {
        self.value_ciphertext
    }
}

/// Ciphertext isn't secret, but it has no business in logs either: show only the shape.
impl fmt::Debug for Envelope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("version", &FORMAT_VERSION)
            .field("kek_id", &self.kek_id)
            .field("value_ciphertext_len", &self.value_ciphertext.len())
            .finish_non_exhaustive()
    }
}

const TRUNCATED: VaultError = VaultError::Malformed("envelope truncated");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::keyring::KekIdError;
    use proptest::prelude::*;

    fn sample(kek_id: &str, ciphertext: &[u8]) -> Result<Vec<u8>, KekIdError> {
        let wrapped = [0x5A; WRAPPED_DEK_LEN];
        let envelope = Envelope::new(
            KekId::parse(kek_id)?,
            [1; 12],
            &wrapped,
            [2; 12],
            ciphertext,
        );
        Ok(envelope.to_bytes())
    }

    #[test]
    fn an_envelope_has_the_documented_layout() -> Result<(), Box<dyn std::error::Error>> {
        let bytes = sample("k1", &[9; 17])?;
        let mut expected = vec![1, 2, b'k', b'1'];
        expected.extend_from_slice(&[1; 12]);
        expected.extend_from_slice(&[0x5A; 48]);
        expected.extend_from_slice(&[2; 12]);
        expected.extend_from_slice(&[9; 17]);
        assert_eq!(bytes, expected);
        let parsed = Envelope::parse(&bytes)?;
        assert_eq!(parsed.kek_id().as_str(), "k1");
        assert_eq!(parsed.dek_nonce(), [1; 12]);
        assert_eq!(parsed.wrapped_dek(), &[0x5A; 48]);
        assert_eq!(parsed.value_nonce(), [2; 12]);
        assert_eq!(parsed.value_ciphertext(), &[9; 17]);
        Ok(())
    }

    #[test]
    fn malformed_envelopes_are_rejected_with_a_reason() -> Result<(), KekIdError> {
        let good = sample("k1", &[0; 16])?;
        let with = |i: usize, b: u8| {
            let mut v = good.clone();
            if let Some(slot) = v.get_mut(i) {
                *slot = b;
            }
            v
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "empty envelope"),
            (with(0, 0), "unsupported envelope version"),
            (with(0, 2), "unsupported envelope version"),
            (with(0, 0xFF), "unsupported envelope version"),
            (vec![1], "envelope truncated"),
            (with(1, 0), "kek id length out of range"),
            (with(1, 65), "kek id length out of range"),
            (with(1, 0xFF), "kek id length out of range"),
            (with(2, b'/'), "kek id has invalid characters"),
            (with(2, 0xC3), "kek id has invalid characters"),
            (
                good.get(..good.len() - 1)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default(),
                "envelope truncated",
            ),
            (vec![1; MAX_ENVELOPE_LEN + 1], "envelope longer than 64 KiB"),
            (
                sample("k", &vec![0; MAX_PLAINTEXT_LEN + TAG_LEN + 1])?,
                "value ciphertext too long",
            ),
        ];
        for (bytes, reason) in cases {
            assert_eq!(
                Envelope::parse(&bytes),
                Err(VaultError::Malformed(reason)),
                "{reason}"
            );
        }
        Ok(())
    }

    #[test]
    fn the_largest_sealable_value_fits_under_the_longest_kek_id()
    -> Result<(), Box<dyn std::error::Error>> {
        let bytes = sample(&"x".repeat(64), &vec![0; MAX_PLAINTEXT_LEN + TAG_LEN])?;
        assert_eq!(bytes.len(), MAX_ENVELOPE_LEN);
        Envelope::parse(&bytes)?;
        Ok(())
    }

    #[test]
    fn debug_output_of_an_envelope_shows_no_ciphertext() -> Result<(), Box<dyn std::error::Error>> {
        let bytes = sample("k1", &[0xEE; 20])?;
        let debug = format!("{:?}", Envelope::parse(&bytes)?);
        assert!(!debug.contains("238") && !debug.contains("90,"), "{debug}");
        Ok(())
    }

    /// The bytes of a well-formed envelope with arbitrary fields.
    fn arb_envelope() -> impl Strategy<Value = Vec<u8>> {
        (
            "[A-Za-z0-9_.-]{1,64}",
            any::<[u8; NONCE_LEN]>(),
            any::<[u8; WRAPPED_DEK_LEN]>(),
            any::<[u8; NONCE_LEN]>(),
            prop::collection::vec(any::<u8>(), TAG_LEN..120),
        )
            .prop_filter_map(
                "a valid kek id",
                |(id, dek_nonce, wrapped, value_nonce, ciphertext)| {
                    let id = KekId::parse(&id).ok()?;
                    Some(
                        Envelope::new(id, dek_nonce, &wrapped, value_nonce, &ciphertext).to_bytes(),
                    )
                },
            )
    }

    proptest! {
        // Each case tries hundreds of changes or cuts of its envelope.
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// With the next one, replaces two "never panics" properties (the `envelope` fuzz
        /// target's job) whose random inputs were rarely envelopes at all. The encoding is
        /// canonical: no two byte strings stand for one envelope. Every header byte (version,
        /// id length, id) is tried with every value, every other byte with one.
        #[test]
        fn an_envelope_with_any_byte_changed_parses_only_to_exactly_its_bytes(
            envelope in arb_envelope(),
            value in any::<u8>(),
        ) {
            let id_end = usize::from(*envelope.get(1).unwrap_or(&0)).saturating_add(2);
            for at in 0..envelope.len() {
                let values = if at < id_end { 0..=u8::MAX } else { value..=value };
                for value in values {
                    let mut changed = envelope.clone();
                    if let Some(byte) = changed.get_mut(at) {
                        *byte = value;
                    }
                    match Envelope::parse(&changed) {
                        Ok(parsed) => prop_assert_eq!(parsed.to_bytes(), changed),
                        // Past the kek id every field is opaque bytes of a fixed (or the
                        // remaining) length.
                        Err(e) => prop_assert!(at < id_end, "{} at {} refused: {:?}", value, at, e),
                    }
                }
            }
        }

        #[test]
        fn every_prefix_of_an_envelope_parses_only_if_it_keeps_a_whole_tag(
            envelope in arb_envelope(),
        ) {
            let full = Envelope::parse(&envelope)?;
            let value_at = full.kek_id().as_str().len().saturating_add(2 + NONCE_LEN + WRAPPED_DEK_LEN + NONCE_LEN);
            for len in 0..envelope.len() {
                let prefix = envelope.get(..len).unwrap_or_default();
                match Envelope::parse(prefix) {
                    Ok(parsed) => {
                        let kept = len.checked_sub(value_at).filter(|kept| *kept >= TAG_LEN);
                        prop_assert!(kept.is_some(), "a cut to {} bytes parsed", len);
                        prop_assert_eq!(parsed.kek_id(), full.kek_id());
                        prop_assert_eq!(parsed.dek_nonce(), full.dek_nonce());
                        prop_assert_eq!(parsed.wrapped_dek(), full.wrapped_dek());
                        prop_assert_eq!(parsed.value_nonce(), full.value_nonce());
                        prop_assert_eq!(
                            Some(parsed.value_ciphertext()),
                            kept.and_then(|kept| full.value_ciphertext().get(..kept))
                        );
                    }
                    Err(e) => {
                        prop_assert!(len < value_at.saturating_add(TAG_LEN), "a cut to {} bytes: {:?}", len, e);
                        let reason = if len == 0 { "empty envelope" } else { "envelope truncated" };
                        prop_assert_eq!(e, VaultError::Malformed(reason));
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn encoding_then_parsing_gives_back_every_field(
            id in "[A-Za-z0-9_.-]{1,64}",
            dek_nonce in any::<[u8; 12]>(),
            wrapped in prop::collection::vec(any::<u8>(), WRAPPED_DEK_LEN),
            value_nonce in any::<[u8; 12]>(),
            ciphertext in prop::collection::vec(any::<u8>(), TAG_LEN..300),
        ) {
            let wrapped = <&[u8; WRAPPED_DEK_LEN]>::try_from(wrapped.as_slice())?;
            let envelope = Envelope::new(KekId::parse(&id)?, dek_nonce, wrapped, value_nonce, &ciphertext);
            let bytes = envelope.to_bytes();
            prop_assert_eq!(Envelope::parse(&bytes)?, envelope);
        }
    }
}
