//! An envelope opens only in its own row (purpose, tenant, row id) and under its own key.

use super::*;
use crate::vault::aad::tests::arb_context;

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

proptest! {
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

    /// Stronger than a random pair of contexts, which differ in every part at once: an AAD that
    /// left out one part would pass that test but not this one.
    #[test]
    fn changing_any_one_part_of_the_row_context_fails_to_open(
        plaintext in prop::collection::vec(any::<u8>(), 0..64),
        ctx in arb_context(),
        other_tenant in any::<u128>(),
        other_row in any::<u128>(),
    ) {
        let mut others = vec![
            RowContext::new(ctx.purpose(), Uuid::from_u128(other_tenant), ctx.row_id()),
            RowContext::new(ctx.purpose(), ctx.tenant_id(), Uuid::from_u128(other_row)),
        ];
        for purpose in [Purpose::FinchClientSecret, Purpose::AccessToken, Purpose::KeyCheck] {
            others.push(RowContext::new(purpose, ctx.tenant_id(), ctx.row_id()));
        }
        let vault = shared_vault()?;
        let sealed = vault.seal(&ctx, &plaintext)?;
        for other in others.into_iter().filter(|other| *other != ctx) {
            prop_assert_eq!(vault.open(&other, &sealed.envelope), Err(VaultError::Integrity));
            prop_assert_eq!(vault.rewrap(&other, &sealed.envelope), Err(VaultError::Integrity));
        }
    }
}
