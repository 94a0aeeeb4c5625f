//! Behaviour of `Vault` as the database layer sees it: sealing, opening, moving, tampering,
//! rotation and key checks, one file per subject; the fixtures they share are here.

mod binding;
mod key_check;
mod redaction;
mod rotation;
mod sealing;
mod tampering;

use std::error::Error;
use std::sync::Arc;

use proptest::prelude::*;
use uuid::Uuid;

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

fn shared_vault() -> Result<Vault, TestCaseError> {
    vault(&[("k1", 1), ("k2", 2)], None).map_err(|e| TestCaseError::fail(e.to_string()))
}

/// A vault whose active key is "k1", with every valid id one bit away from "k1" configured with
/// k1's own key bytes: a flipped id then reaches the AEAD and must be caught by the kek id in the
/// wrap AAD, not by a failed lookup.
fn vault_with_k1s_neighbours() -> Result<Vault, Box<dyn Error>> {
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
    vault(&keys, Some("k1"))
}
