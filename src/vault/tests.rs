//! Behaviour of `Vault` as the database layer sees it: sealing, opening, moving, tampering,
//! rotation and key checks.

use std::collections::HashSet;
use std::error::Error;
use std::sync::Arc;

use proptest::prelude::*;
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::aad::tests::arb_context;
use super::*;

type TestResult = Result<(), Box<dyn Error>>;

/// A vault over keys whose bytes are `[byte; 32]`; `active: None` = the last one.
fn vault(keys: &[(&str, u8)], active: Option<&str>) -> Result<Vault, Box<dyn Error>> {
    let keys = keys
        .iter()
        .map(|&(id, byte)| Ok((KekId::parse(id)?, MasterKey::from_bytes(&[byte; KEY_LEN]))))
        .collect::<Result<Vec<_>, KekIdError>>()?;
    let active = active.map(KekId::parse).transpose()?;
    Ok(Vault::new(Arc::new(Keyring::new(keys, active)?)))
}

fn id(s: &str) -> Result<KekId, KekIdError> {
    KekId::parse(s)
}

fn token_row() -> RowContext {
    RowContext::new(
        Purpose::AccessToken,
        Uuid::from_u128(0xA1),
        Uuid::from_u128(0xC1),
    )
}

/// Offset of the value nonce in an envelope whose kek id is 2 bytes long.
const VALUE_PART_AT: usize = 2 + 2 + NONCE_LEN + WRAPPED_DEK_LEN;

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

fn assert_does_not_open_in(other: RowContext) -> TestResult {
    let vault = vault(&[("k1", 1)], None)?;
    let sealed = vault.seal(&token_row(), b"tenant A's token")?;
    assert_eq!(
        vault.open(&other, &sealed.envelope),
        Err(VaultError::Integrity)
    );
    assert_eq!(
        vault.rewrap(&other, &sealed.envelope),
        Err(VaultError::Integrity)
    );
    Ok(())
}

#[test]
fn a_ciphertext_moved_to_another_row_does_not_open() -> TestResult {
    let row = token_row();
    assert_does_not_open_in(RowContext::new(
        row.purpose(),
        row.tenant_id(),
        Uuid::from_u128(0xC2),
    ))
}

#[test]
fn a_ciphertext_moved_to_another_tenant_does_not_open() -> TestResult {
    let row = token_row();
    assert_does_not_open_in(RowContext::new(
        row.purpose(),
        Uuid::from_u128(0xA2),
        row.row_id(),
    ))?;
    assert_does_not_open_in(RowContext::new(row.purpose(), Uuid::nil(), row.row_id()))
}

#[test]
fn a_ciphertext_moved_to_another_purpose_does_not_open() -> TestResult {
    let row = token_row();
    for purpose in [Purpose::FinchClientSecret, Purpose::KeyCheck] {
        assert_does_not_open_in(RowContext::new(purpose, row.tenant_id(), row.row_id()))?;
    }
    Ok(())
}

#[test]
fn swapping_the_tenant_and_row_ids_does_not_open() -> TestResult {
    let row = token_row();
    assert_does_not_open_in(RowContext::new(
        row.purpose(),
        row.row_id(),
        row.tenant_id(),
    ))
}

#[test]
fn an_envelope_relabelled_to_another_kek_id_with_the_same_key_bytes_does_not_open() -> TestResult {
    let vault = vault(&[("k1", 1), ("k2", 1)], Some("k1"))?;
    let mut envelope = vault.seal(&token_row(), b"value")?.envelope;
    if let Some(last_id_byte) = envelope.get_mut(3) {
        *last_id_byte = b'2';
    }
    assert_eq!(Vault::envelope_kek_id(&envelope)?, id("k2")?);
    assert_eq!(
        vault.open(&token_row(), &envelope),
        Err(VaultError::Integrity)
    );
    Ok(())
}

#[test]
fn an_envelope_under_a_different_key_with_the_same_id_does_not_open() -> TestResult {
    let sealed = vault(&[("k1", 1)], None)?.seal(&token_row(), b"value")?;
    let impostor = vault(&[("k1", 2)], None)?;
    assert_eq!(
        impostor.open(&token_row(), &sealed.envelope),
        Err(VaultError::Integrity)
    );
    Ok(())
}

#[test]
fn an_envelope_sealed_under_k1_survives_rotation_to_k2() -> TestResult {
    let row = token_row();
    let before = vault(&[("k1", 1)], None)?;
    let sealed = before.seal(&row, b"long-lived token")?;

    // k2 is added and, being last, becomes active; k1 envelopes still open.
    let during = vault(&[("k1", 1), ("k2", 2)], None)?;
    assert_eq!(during.active_kek_id(), &id("k2")?);
    assert_eq!(
        during.open(&row, &sealed.envelope)?.as_slice(),
        b"long-lived token"
    );

    let Rewrap::Rewrapped(moved) = during.rewrap(&row, &sealed.envelope)? else {
        panic!("an envelope under k1 must be re-wrapped when k2 is active");
    };
    assert_eq!(moved.kek_id, id("k2")?);
    assert_eq!(Vault::envelope_kek_id(&moved.envelope)?, id("k2")?);
    // Only the DEK layer changed: value nonce and ciphertext are carried over byte for byte.
    assert_eq!(
        moved.envelope.get(VALUE_PART_AT..),
        sealed.envelope.get(VALUE_PART_AT..)
    );
    assert_ne!(
        moved.envelope.get(..VALUE_PART_AT),
        sealed.envelope.get(..VALUE_PART_AT)
    );
    assert_eq!(
        during.open(&row, &moved.envelope)?.as_slice(),
        b"long-lived token"
    );
    assert_eq!(during.rewrap(&row, &moved.envelope)?, Rewrap::AlreadyActive);

    // k1 retired: the re-wrapped envelope opens, a leftover k1 envelope names the missing key.
    let after = vault(&[("k2", 2)], None)?;
    assert_eq!(
        after.open(&row, &moved.envelope)?.as_slice(),
        b"long-lived token"
    );
    assert_eq!(
        after.open(&row, &sealed.envelope),
        Err(VaultError::UnknownKey(id("k1")?))
    );
    assert_eq!(
        after.rewrap(&row, &sealed.envelope),
        Err(VaultError::UnknownKey(id("k1")?))
    );
    Ok(())
}

#[test]
fn new_envelopes_use_the_configured_active_key_even_if_it_is_not_the_last() -> TestResult {
    let vault = vault(&[("k1", 1), ("k2", 2)], Some("k1"))?;
    assert_eq!(vault.seal(&token_row(), b"v")?.kek_id, id("k1")?);
    Ok(())
}

#[test]
fn rewrap_refuses_an_envelope_whose_value_was_damaged() -> TestResult {
    let row = token_row();
    let mut envelope = vault(&[("k1", 1)], None)?.seal(&row, b"value")?.envelope;
    if let Some(last) = envelope.last_mut() {
        *last ^= 1;
    }
    let during = vault(&[("k1", 1), ("k2", 2)], None)?;
    assert_eq!(during.rewrap(&row, &envelope), Err(VaultError::Integrity));
    Ok(())
}

#[test]
fn the_kek_id_of_an_envelope_can_be_read_without_opening_it() -> TestResult {
    let sealed = vault(&[("2025-06.prod", 1)], None)?.seal(&token_row(), b"v")?;
    assert_eq!(Vault::envelope_kek_id(&sealed.envelope)?, sealed.kek_id);
    assert_eq!(sealed.kek_id.as_str(), "2025-06.prod");
    assert!(Vault::envelope_kek_id(b"\x01").is_err());
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
fn a_key_check_value_verifies_under_its_own_key_only() -> TestResult {
    let vault = vault(&[("k1", 1), ("k2", 2)], None)?;
    let kcv = vault.key_check_value(&id("k1")?)?;
    assert_eq!(kcv.len(), KEY_CHECK_LEN);
    assert_ne!(
        kcv,
        vault.key_check_value(&id("k1")?)?,
        "fresh nonce each time"
    );
    vault.verify_key_check(&id("k1")?, &kcv)?;
    assert_eq!(
        vault.verify_key_check(&id("k2")?, &kcv),
        Err(VaultError::Integrity)
    );
    assert_eq!(
        vault.verify_key_check(&id("k9")?, &kcv),
        Err(VaultError::UnknownKey(id("k9")?))
    );
    Ok(())
}

#[test]
fn a_key_check_fails_with_a_different_key_under_the_same_id() -> TestResult {
    let kcv = vault(&[("k1", 1)], None)?.key_check_value(&id("k1")?)?;
    let changed = vault(&[("k1", 3)], None)?;
    assert_eq!(
        changed.verify_key_check(&id("k1")?, &kcv),
        Err(VaultError::Integrity)
    );
    Ok(())
}

#[test]
fn a_key_check_fails_under_another_id_with_the_same_key_bytes() -> TestResult {
    let vault = vault(&[("k1", 1), ("k2", 1)], None)?;
    let kcv = vault.key_check_value(&id("k1")?)?;
    assert_eq!(
        vault.verify_key_check(&id("k2")?, &kcv),
        Err(VaultError::Integrity)
    );
    Ok(())
}

#[test]
fn a_damaged_key_check_value_is_rejected() -> TestResult {
    let vault = vault(&[("k1", 1)], None)?;
    let k1 = id("k1")?;
    let kcv = vault.key_check_value(&k1)?;
    for byte in 1..kcv.len() {
        let mut damaged = kcv.clone();
        if let Some(b) = damaged.get_mut(byte) {
            *b ^= 0x01;
        }
        assert_eq!(
            vault.verify_key_check(&k1, &damaged),
            Err(VaultError::Integrity)
        );
    }
    let cases: [(&[u8], &str); 4] = [
        (&[], "empty key check value"),
        (&[2; KEY_CHECK_LEN], "unsupported key check value version"),
        (
            kcv.get(..KEY_CHECK_LEN - 1).unwrap_or_default(),
            "key check value has the wrong length",
        ),
        (
            &[&kcv[..], &[0]].concat(),
            "key check value has the wrong length",
        ),
    ];
    for (bad, reason) in cases {
        assert_eq!(
            vault.verify_key_check(&k1, bad),
            Err(VaultError::Malformed(reason))
        );
    }
    // An envelope is not a key check value, even under the same key.
    let envelope = vault.seal(&token_row(), b"0123456789abcdef")?.envelope;
    assert!(vault.verify_key_check(&k1, &envelope).is_err());
    Ok(())
}

#[test]
fn debug_output_of_vault_types_shows_no_key_bytes_or_ciphertext() -> TestResult {
    let vault = vault(&[("k1", 0xAB)], None)?;
    let sealed = vault.seal(&token_row(), b"plain-secret")?;
    let debug = format!(
        "{vault:?} {sealed:?} {:?}",
        Envelope::parse(&sealed.envelope)?
    );
    assert!(debug.contains("\"k1\""), "{debug}");
    for leak in ["171", "plain-secret", "[REDACTED]"] {
        assert!(!debug.contains(leak), "{debug} contains {leak}");
    }
    // Any run of envelope bytes as `Debug` would print them, e.g. "12, 200, 3".
    for window in sealed.envelope.windows(3) {
        let run = format!("{window:?}");
        let run = run.trim_start_matches('[').trim_end_matches(']');
        assert!(!debug.contains(run), "{debug} contains {run}");
    }
    Ok(())
}

#[test]
fn error_messages_name_the_problem_without_data() -> TestResult {
    let messages = [
        VaultError::UnknownKey(id("k1")?).to_string(),
        VaultError::Malformed("envelope truncated").to_string(),
        VaultError::Integrity.to_string(),
        VaultError::PlaintextTooLarge { max: 10 }.to_string(),
        VaultError::Crypto.to_string(),
    ];
    assert_eq!(messages[0], "key-encryption key \"k1\" is not configured");
    assert_eq!(messages[1], "malformed vault data: envelope truncated");
    assert!(messages.iter().all(|m| !m.contains('\n')));
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

fn shared_vault() -> Result<Vault, TestCaseError> {
    vault(&[("k1", 1), ("k2", 2)], None).map_err(|e| TestCaseError::fail(e.to_string()))
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

    #[test]
    fn opening_in_any_other_context_fails_with_integrity(
        plaintext in prop::collection::vec(any::<u8>(), 0..256),
        a in arb_context(),
        b in arb_context(),
    ) {
        prop_assume!(a != b);
        let vault = shared_vault()?;
        let sealed = vault.seal(&a, &plaintext)?;
        prop_assert_eq!(vault.open(&b, &sealed.envelope), Err(VaultError::Integrity));
        prop_assert_eq!(vault.rewrap(&b, &sealed.envelope), Err(VaultError::Integrity));
    }

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
