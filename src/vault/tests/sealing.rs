//! Sealing and opening in the row a value was sealed for: round trips, sizes, fresh nonces.

use std::collections::HashSet;

use secrecy::ExposeSecret;

use super::*;
use crate::vault::aad::tests::arb_context;

#[test]
fn a_sealed_value_opens_in_its_own_row() -> TestResult {
    let vault = vault(&[("k1", 1)], None)?;
    let sealed = vault.seal(&token_row(), b"access-token-123")?;
    assert_eq!(sealed.kek_id.as_str(), "k1");
    assert_eq!(
        sealed.envelope.len(),
        VALUE_PART_AT + NONCE_LEN + 16 + TAG_LEN
    );
    assert_eq!(
        vault.open(&token_row(), &sealed.envelope)?.as_slice(),
        b"access-token-123"
    );
    let text = vault.open_string(&token_row(), &sealed.envelope)?;
    assert_eq!(text.expose_secret(), "access-token-123");
    Ok(())
}

#[test]
fn an_empty_value_round_trips() -> TestResult {
    let vault = vault(&[("k1", 1)], None)?;
    let sealed = vault.seal(&token_row(), b"")?;
    assert!(vault.open(&token_row(), &sealed.envelope)?.is_empty());
    Ok(())
}

#[test]
fn the_same_plaintext_sealed_twice_gives_different_envelopes() -> TestResult {
    let vault = vault(&[("k1", 1)], None)?;
    let a = vault.seal(&token_row(), b"same")?;
    let b = vault.seal(&token_row(), b"same")?;
    assert_ne!(a.envelope, b.envelope);
    let (a, b) = (Envelope::parse(&a.envelope)?, Envelope::parse(&b.envelope)?);
    assert_ne!(a.dek_nonce(), b.dek_nonce());
    assert_ne!(a.wrapped_dek(), b.wrapped_dek());
    assert_ne!(a.value_nonce(), b.value_nonce());
    assert_ne!(a.value_ciphertext(), b.value_ciphertext());
    Ok(())
}

#[test]
fn values_up_to_the_limit_seal_and_larger_ones_are_refused() -> TestResult {
    let longest_id = "x".repeat(MAX_KEK_ID_LEN);
    let vault = vault(&[(&longest_id, 1)], None)?;
    let biggest = vec![7u8; MAX_PLAINTEXT_LEN];
    let sealed = vault.seal(&token_row(), &biggest)?;
    assert_eq!(sealed.envelope.len(), MAX_ENVELOPE_LEN);
    assert_eq!(
        vault.open(&token_row(), &sealed.envelope)?.as_slice(),
        &biggest[..]
    );
    assert_eq!(
        vault.seal(&token_row(), &vec![7u8; MAX_PLAINTEXT_LEN + 1]),
        Err(VaultError::PlaintextTooLarge {
            max: MAX_PLAINTEXT_LEN
        })
    );
    Ok(())
}

#[test]
fn a_value_that_is_not_utf8_is_not_opened_as_a_string() -> TestResult {
    let vault = vault(&[("k1", 1)], None)?;
    let sealed = vault.seal(&token_row(), &[0xFF, 0xFE])?;
    assert_eq!(
        vault.open_string(&token_row(), &sealed.envelope).err(),
        Some(VaultError::Malformed("sealed value is not UTF-8"))
    );
    Ok(())
}

#[test]
fn a_vault_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Vault>();
}

#[test]
fn no_nonce_repeats_across_100_000_seals() -> TestResult {
    const SEALS: usize = 100_000;
    let vault = vault(&[("k1", 1)], None)?;
    let row = token_row();
    let mut wrap_nonces = HashSet::with_capacity(SEALS);
    let mut value_nonces = HashSet::with_capacity(SEALS);
    for i in 0..SEALS {
        let sealed = vault.seal(&row, &i.to_le_bytes())?;
        let envelope = Envelope::parse(&sealed.envelope)?;
        assert!(
            wrap_nonces.insert(envelope.dek_nonce()),
            "wrap nonce repeated at seal {i}"
        );
        assert!(
            value_nonces.insert(envelope.value_nonce()),
            "value nonce repeated at seal {i}"
        );
    }
    Ok(())
}

proptest! {
    #[test]
    fn any_plaintext_round_trips_in_any_context(
        plaintext in prop::collection::vec(any::<u8>(), 0..4096),
        ctx in arb_context(),
    ) {
        let vault = shared_vault()?;
        let sealed = vault.seal(&ctx, &plaintext)?;
        prop_assert_eq!(sealed.envelope.len(), VALUE_PART_AT + NONCE_LEN + plaintext.len() + TAG_LEN);
        let opened = vault.open(&ctx, &sealed.envelope)?;
        prop_assert_eq!(opened.as_slice(), &plaintext[..]);
    }

    /// A sealed envelope, and the same envelope re-wrapped under another key, parse and encode
    /// back to the very same bytes: `seal`, `rewrap` and the parser agree on the layout, and a
    /// re-wrap carries the value part over unchanged under a fresh wrap nonce.
    #[test]
    fn a_sealed_or_rewrapped_envelope_re_encodes_to_the_same_bytes(
        plaintext in prop::collection::vec(any::<u8>(), 0..256),
        ctx in arb_context(),
    ) {
        let before = vault(&[("k1", 1)], None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let sealed = before.seal(&ctx, &plaintext)?;
        let parsed = Envelope::parse(&sealed.envelope)?;
        prop_assert_eq!(&parsed.to_bytes(), &sealed.envelope);
        prop_assert_eq!(parsed.kek_id(), &sealed.kek_id);
        prop_assert_eq!(parsed.value_ciphertext().len(), plaintext.len() + TAG_LEN);

        let during = shared_vault()?;
        let Rewrap::Rewrapped(moved) = during.rewrap(&ctx, &sealed.envelope)? else {
            return Err(TestCaseError::fail("a k1 envelope is re-wrapped when k2 is active"));
        };
        let reparsed = Envelope::parse(&moved.envelope)?;
        prop_assert_eq!(&reparsed.to_bytes(), &moved.envelope);
        prop_assert_eq!(reparsed.kek_id(), &moved.kek_id);
        prop_assert_eq!(moved.kek_id.as_str(), "k2");
        prop_assert_ne!(reparsed.dek_nonce(), parsed.dek_nonce());
        prop_assert_eq!(reparsed.value_nonce(), parsed.value_nonce());
        prop_assert_eq!(reparsed.value_ciphertext(), parsed.value_ciphertext());
        let opened = during.open(&ctx, &moved.envelope)?;
        prop_assert_eq!(opened.as_slice(), &plaintext[..]);
    }
}
