//! Key-check values: each verifies under its own key and id only.

use super::*;

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

/// Takes over the key-check half of the removed "arbitrary bytes never open" property: not
/// random bytes (which fail the length check) but every one-bit change of a genuine value.
#[test]
fn every_single_bit_flip_of_a_key_check_value_fails_to_verify() -> TestResult {
    let vault = vault(&[("k1", 1)], None)?;
    let k1 = id("k1")?;
    let kcv = vault.key_check_value(&k1)?;
    vault.verify_key_check(&k1, &kcv)?;
    for bit in 0..KEY_CHECK_LEN * 8 {
        let mut flipped = kcv.clone();
        if let Some(byte) = flipped.get_mut(bit / 8) {
            *byte ^= 1 << (bit % 8);
        }
        let verified = vault.verify_key_check(&k1, &flipped);
        match (bit / 8, &verified) {
            (0, Err(VaultError::Malformed(_))) | (1.., Err(VaultError::Integrity)) => {}
            _ => panic!("flipping bit {bit} gave {verified:?}"),
        }
    }
    Ok(())
}
