//! Rotation: re-wrapping under the active key, retired keys, reading an envelope's key id.

use super::*;

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
