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
