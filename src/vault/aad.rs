//! Associated data that binds a ciphertext to the row it belongs to.
//!
//! The AAD is never stored: it is rebuilt at open time from the row's identity (purpose, tenant
//! id, row id) and the envelope's kek id, so a ciphertext copied to another row, tenant, column
//! or key fails its GCM tag check. Every field is fixed-width or length-prefixed, so no two
//! different contexts can encode to the same bytes, and each layer starts with its own label, so
//! a value-layer ciphertext can never be accepted as a DEK wrap or a key-check value.

use uuid::Uuid;

use super::envelope::FORMAT_VERSION;
use super::keyring::KekId;

/// What a sealed value is. Part of the AAD, so a client secret can't be swapped with a token.
///
/// The labels are wire format: never rename one, never reuse one for a new purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Purpose {
    /// A tenant's Finch `client_secret` (row: the tenant).
    FinchClientSecret,
    /// A connection's Finch access token (row: the connection).
    AccessToken,
    /// The key-check value sealed under each KEK (no row: tenant and row are nil).
    KeyCheck,
    /// A user's TOTP secret (row: the user; tenant: theirs, nil for operators).
    TotpSecret,
    /// An API answer kept for `Idempotency-Key` replays (row: the API key; tenant: its own).
    /// It may hold a secret returned once (a connect link's URL).
    IdempotentAnswer,
}

impl Purpose {
    pub const fn label(self) -> &'static str {
        match self {
            Self::FinchClientSecret => "finch-client-secret",
            Self::AccessToken => "access-token",
            Self::KeyCheck => "key-check",
            Self::TotpSecret => "totp-secret",
            Self::IdempotentAnswer => "idempotent-answer",
        }
    }
}

/// The identity of the row a value is stored in. The database layer builds it from the row's
/// own columns, both when sealing and when opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RowContext {
    purpose: Purpose,
    tenant_id: Uuid,
    row_id: Uuid,
}

impl RowContext {
    /// `tenant_id` is `Uuid::nil()` for rows that belong to no tenant.
    pub const fn new(purpose: Purpose, tenant_id: Uuid, row_id: Uuid) -> Self {
        Self {
            purpose,
            tenant_id,
            row_id,
        }
    }

    pub const fn purpose(&self) -> Purpose {
        self.purpose
    }

    pub const fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    pub const fn row_id(&self) -> Uuid {
        self.row_id
    }
}

/// Which AEAD operation the AAD is for; the label is the first field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layer {
    /// The value, sealed under its DEK.
    Value,
    /// The DEK, sealed under a KEK.
    DekWrap,
    /// The key-check constant, sealed directly under a KEK.
    KeyCheck,
}

impl Layer {
    const fn label(self) -> &'static [u8] {
        match self {
            Self::Value => b"finchgate.vault.value",
            Self::DekWrap => b"finchgate.vault.dek-wrap",
            Self::KeyCheck => b"finchgate.vault.kcv",
        }
    }
}

/// The value-layer AAD:
/// `lp(label) ‖ version ‖ lp(purpose) ‖ tenant_id (16) ‖ row_id (16)`.
///
/// It leaves the kek id out on purpose: rotation re-wraps the DEK without touching the value
/// ciphertext, and the value is already tied to its kek id through the DEK wrap, whose AAD has it.
pub(super) fn value_aad(ctx: &RowContext) -> Vec<u8> {
    encode(Layer::Value, ctx, None)
}

/// The DEK-wrap AAD: `lp(label) ‖ version ‖ lp(purpose) ‖ tenant_id ‖ row_id ‖ lp(kek_id)`.
pub(super) fn wrap_aad(ctx: &RowContext, kek_id: &KekId) -> Vec<u8> {
    encode(Layer::DekWrap, ctx, Some(kek_id))
}

/// The key-check AAD: the wrap layout with the kcv label, purpose `key-check`, nil ids.
pub(super) fn key_check_aad(kek_id: &KekId) -> Vec<u8> {
    let ctx = RowContext::new(Purpose::KeyCheck, Uuid::nil(), Uuid::nil());
    encode(Layer::KeyCheck, &ctx, Some(kek_id))
}

fn encode(layer: Layer, ctx: &RowContext, kek_id: Option<&KekId>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(128);
    push_prefixed(&mut aad, layer.label());
    aad.push(FORMAT_VERSION);
    push_prefixed(&mut aad, ctx.purpose.label().as_bytes());
    aad.extend_from_slice(ctx.tenant_id.as_bytes());
    aad.extend_from_slice(ctx.row_id.as_bytes());
    if let Some(id) = kek_id {
        push_prefixed(&mut aad, id.as_str().as_bytes());
    }
    aad
}

/// One length byte, then the bytes. Every prefixed field here is at most 64 bytes (labels are
/// constants, kek ids are capped by `KekId`), so the length always fits.
fn push_prefixed(aad: &mut Vec<u8>, field: &[u8]) {
    debug_assert!(field.len() <= usize::from(u8::MAX));
    aad.push(u8::try_from(field.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(field);
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::vault::keyring::KekIdError;
    use proptest::prelude::*;

    fn arb_purpose() -> impl Strategy<Value = Purpose> {
        prop_oneof![
            Just(Purpose::FinchClientSecret),
            Just(Purpose::AccessToken),
            Just(Purpose::KeyCheck),
        ]
    }

    pub(in crate::vault) fn arb_context() -> impl Strategy<Value = RowContext> {
        (arb_purpose(), any::<u128>(), any::<u128>())
            .prop_map(|(p, t, r)| RowContext::new(p, Uuid::from_u128(t), Uuid::from_u128(r)))
    }

    #[test]
    fn the_value_aad_has_the_documented_layout() {
        let ctx = RowContext::new(
            Purpose::AccessToken,
            Uuid::from_u128(0x0102),
            Uuid::from_u128(0x0304),
        );
        let mut expected = vec![21];
        expected.extend_from_slice(b"finchgate.vault.value");
        expected.push(1);
        expected.push(12);
        expected.extend_from_slice(b"access-token");
        expected.extend_from_slice(&[0; 14]);
        expected.extend_from_slice(&[1, 2]);
        expected.extend_from_slice(&[0; 14]);
        expected.extend_from_slice(&[3, 4]);
        assert_eq!(value_aad(&ctx), expected);
    }

    #[test]
    fn the_wrap_aad_extends_the_row_fields_with_the_kek_id() -> Result<(), KekIdError> {
        let ctx = RowContext::new(Purpose::FinchClientSecret, Uuid::nil(), Uuid::nil());
        let wrap = wrap_aad(&ctx, &KekId::parse("k1")?);
        let mut expected = vec![24];
        expected.extend_from_slice(b"finchgate.vault.dek-wrap");
        expected.push(1);
        expected.push(19);
        expected.extend_from_slice(b"finch-client-secret");
        expected.extend_from_slice(&[0; 32]);
        expected.extend_from_slice(&[2, b'k', b'1']);
        assert_eq!(wrap, expected);
        Ok(())
    }

    #[test]
    fn the_three_layers_never_share_an_aad() -> Result<(), KekIdError> {
        let id = KekId::parse("k1")?;
        let ctx = RowContext::new(Purpose::KeyCheck, Uuid::nil(), Uuid::nil());
        let all = [value_aad(&ctx), wrap_aad(&ctx, &id), key_check_aad(&id)];
        assert_ne!(all[0], all[1]);
        assert_ne!(all[1], all[2]);
        assert_ne!(all[0], all[2]);
        Ok(())
    }

    proptest! {
        #[test]
        fn different_contexts_or_kek_ids_give_different_aads(
            a in arb_context(),
            b in arb_context(),
            ka in "[A-Za-z0-9_.-]{1,64}",
            kb in "[A-Za-z0-9_.-]{1,64}",
        ) {
            let (ka, kb) = (KekId::parse(&ka)?, KekId::parse(&kb)?);
            prop_assert_eq!(value_aad(&a) == value_aad(&b), a == b);
            prop_assert_eq!(wrap_aad(&a, &ka) == wrap_aad(&b, &kb), a == b && ka == kb);
            prop_assert_eq!(key_check_aad(&ka) == key_check_aad(&kb), ka == kb);
            prop_assert_ne!(value_aad(&a), wrap_aad(&b, &kb));
        }
    }
}
