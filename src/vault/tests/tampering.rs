//! Envelopes changed after sealing: flipped bits, cuts, appended bytes, other versions.

use super::*;
use crate::vault::aad::tests::arb_context;

#[test]
fn every_single_bit_flip_of_an_envelope_fails_to_open() -> TestResult {
    let vault = vault_with_k1s_neighbours()?;
    let sealed = vault.seal(&token_row(), b"tok")?;

    for byte in 0..sealed.envelope.len() {
        for bit in 0..8 {
            let mut tampered = sealed.envelope.clone();
            if let Some(b) = tampered.get_mut(byte) {
                *b ^= 1 << bit;
            }
            let result = vault.open(&token_row(), &tampered);
            match (byte, &result) {
                (0, Err(VaultError::Malformed(_))) => {}
                // A new kek id length either breaks the layout or swallows random nonce bytes
                // into an id that is not configured.
                (1, Err(VaultError::Malformed(_) | VaultError::UnknownKey(_))) => {}
                // kek id: either no longer a valid id, or a configured one that the AAD rejects
                (2 | 3, Err(VaultError::Malformed(_) | VaultError::Integrity)) => {}
                (4.., Err(VaultError::Integrity)) => {}
                _ => panic!("flip of byte {byte} bit {bit} gave {result:?}"),
            }
            if let Err(e) = result {
                assert!(!e.to_string().contains("tok"));
            }
        }
    }
    Ok(())
}

#[test]
fn an_envelope_truncated_at_any_length_fails_to_open() -> TestResult {
    let vault = vault(&[("k1", 1)], None)?;
    let sealed = vault.seal(&token_row(), b"a token of some length")?;
    for len in 0..sealed.envelope.len() {
        let truncated = sealed.envelope.get(..len).unwrap_or_default();
        assert!(
            matches!(
                vault.open(&token_row(), truncated),
                Err(VaultError::Malformed(_) | VaultError::Integrity)
            ),
            "truncated to {len}"
        );
    }
    Ok(())
}

#[test]
fn bytes_appended_to_an_envelope_make_it_fail_to_open() -> TestResult {
    let vault = vault(&[("k1", 1)], None)?;
    let mut envelope = vault.seal(&token_row(), b"value")?.envelope;
    envelope.push(0);
    assert_eq!(
        vault.open(&token_row(), &envelope),
        Err(VaultError::Integrity)
    );
    Ok(())
}

#[test]
fn an_envelope_with_another_version_byte_fails_to_open() -> TestResult {
    let vault = vault(&[("k1", 1)], None)?;
    let sealed = vault.seal(&token_row(), b"value")?;
    for version in [0u8, 2, 0x80, 0xFF] {
        let mut envelope = sealed.envelope.clone();
        if let Some(v) = envelope.first_mut() {
            *v = version;
        }
        assert_eq!(
            vault.open(&token_row(), &envelope),
            Err(VaultError::Malformed("unsupported envelope version"))
        );
    }
    Ok(())
}

#[test]
fn an_oversized_envelope_is_rejected_before_parsing() -> TestResult {
    let vault = vault(&[("k1", 1)], None)?;
    let mut envelope = vault.seal(&token_row(), b"value")?.envelope;
    envelope.resize(MAX_ENVELOPE_LEN + 1, 0);
    assert_eq!(
        vault.open(&token_row(), &envelope),
        Err(VaultError::Malformed("envelope longer than 64 KiB"))
    );
    Ok(())
}

proptest! {
    #[test]
    fn a_tampered_envelope_never_opens(
        plaintext in prop::collection::vec(any::<u8>(), 0..64),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 1..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
        extra in prop::collection::vec(any::<u8>(), 0..4),
    ) {
        let vault = shared_vault()?;
        let sealed = vault.seal(&token_row(), &plaintext)?;
        let mut tampered = sealed.envelope.clone();
        for (at, mask) in edits {
            let at = at.index(tampered.len());
            if let Some(b) = tampered.get_mut(at) {
                *b ^= mask;
            }
        }
        if let Some(cut) = cut {
            tampered.truncate(cut.index(tampered.len()));
        }
        tampered.extend(extra);
        prop_assume!(tampered != sealed.envelope);
        prop_assert!(vault.open(&token_row(), &tampered).is_err());
    }
}

// Each case below tries every bit, or every length, of its envelope: fewer cases, each one
// exhaustive. Together they replace two "arbitrary bytes never panic or open" properties, whose
// random inputs almost never got past the header; panics are the `envelope` fuzz target's job.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_single_bit_flip_of_any_sealed_envelope_fails_to_open(
        plaintext in prop::collection::vec(any::<u8>(), 0..48),
        ctx in arb_context(),
    ) {
        let vault = vault_with_k1s_neighbours().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let sealed = vault.seal(&ctx, &plaintext)?;
        let opened = vault.open(&ctx, &sealed.envelope)?;
        prop_assert_eq!(opened.as_slice(), &plaintext[..]);
        for bit in 0..sealed.envelope.len() * 8 {
            let mut flipped = sealed.envelope.clone();
            if let Some(byte) = flipped.get_mut(bit / 8) {
                *byte ^= 1 << (bit % 8);
            }
            prop_assert!(vault.open(&ctx, &flipped).is_err(), "flipping bit {} opened", bit);
        }
    }

    #[test]
    fn every_truncation_of_any_sealed_envelope_fails_to_open(
        plaintext in prop::collection::vec(any::<u8>(), 0..48),
        ctx in arb_context(),
    ) {
        let vault = shared_vault()?;
        let sealed = vault.seal(&ctx, &plaintext)?;
        let opened = vault.open(&ctx, &sealed.envelope)?;
        prop_assert_eq!(opened.as_slice(), &plaintext[..]);
        for len in 0..sealed.envelope.len() {
            let cut = sealed.envelope.get(..len).unwrap_or_default();
            let opened = vault.open(&ctx, cut);
            prop_assert!(
                matches!(opened, Err(VaultError::Malformed(_) | VaultError::Integrity)),
                "cut to {} bytes: {:?}", len, opened
            );
            prop_assert!(vault.rewrap(&ctx, cut).is_err(), "cut to {} bytes re-wrapped", len);
        }
    }
}
