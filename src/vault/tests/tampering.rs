//! Envelopes changed after sealing: flipped bits, cuts, appended bytes, other versions.

use super::*;

#[test]
fn every_single_bit_flip_of_an_envelope_fails_to_open() -> TestResult {
    // Every valid id one bit away from "k1" is configured with k1's own key bytes, so a flipped
    // id reaches the AEAD and must be caught by the kek id in the wrap AAD, not by a lookup.
    let mut keys = vec![("k1".to_owned(), 1)];
    for (i, bit) in (0..2).flat_map(|i| (0..8).map(move |bit| (i, bit))) {
        let mut neighbour = *b"k1";
        if let Some(byte) = neighbour.get_mut(i) {
            *byte ^= 1 << bit;
        }
        if let Ok(n) = std::str::from_utf8(&neighbour).map(KekId::parse) {
            keys.extend(n.ok().map(|n| (n.to_string(), 1)));
        }
    }
    assert!(keys.len() > 8, "enough neighbours to matter: {keys:?}");
    let keys: Vec<(&str, u8)> = keys.iter().map(|(i, b)| (i.as_str(), *b)).collect();
    let vault = vault(&keys, Some("k1"))?;
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
    fn arbitrary_bytes_never_panic_or_open(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let vault = shared_vault()?;
        let ctx = token_row();
        prop_assert!(vault.open(&ctx, &bytes).is_err());
        prop_assert!(vault.rewrap(&ctx, &bytes).is_err());
        let _ = Vault::envelope_kek_id(&bytes);
        prop_assert!(vault.verify_key_check(vault.active_kek_id(), &bytes).is_err());
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_header_never_panic_or_open(
        id in prop_oneof![Just("k1".to_owned()), Just("k2".to_owned()), "[a-z0-9]{1,8}"],
        rest in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let vault = shared_vault()?;
        let mut bytes = vec![FORMAT_VERSION, u8::try_from(id.len())?];
        bytes.extend_from_slice(id.as_bytes());
        bytes.extend(rest);
        prop_assert!(vault.open(&token_row(), &bytes).is_err());
    }

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
