//! Key-check values: a constant sealed directly under one KEK, stored in the `keyring` table, so
//! boot can prove each configured key is the same key that wrote the data.
//!
//! Layout: `version (1) ‖ nonce (12) ‖ AES-256-GCM(KEK, KEY_CHECK_PLAINTEXT) (16) ‖ tag (16)`,
//! with the kcv AAD (`aad::key_check_aad`), which binds the kek id: a KCV can't be relabelled
//! as another key's.

use super::cipher::{Gcm, random_nonce};
use super::envelope::{FORMAT_VERSION, NONCE_LEN, TAG_LEN};
use super::{KekId, Vault, VaultError, aad};

/// Public and fixed; its only job is to be recognisable after a successful open.
const KEY_CHECK_PLAINTEXT: [u8; 16] = *b"finchgate-kcv-v1";

/// Length of every key-check value.
pub const KEY_CHECK_LEN: usize = 1 + NONCE_LEN + KEY_CHECK_PLAINTEXT.len() + TAG_LEN;

impl Vault {
    /// A fresh key-check value for the configured KEK `id` (random nonce, so two calls differ).
    pub fn key_check_value(&self, id: &KekId) -> Result<Vec<u8>, VaultError> {
        let kek = Gcm::new(self.kek(id)?.expose())?;
        let nonce = random_nonce(&self.rng)?;
        let mut body = KEY_CHECK_PLAINTEXT;
        let tag = kek.seal(nonce, &aad::key_check_aad(id), &mut body)?;
        let mut kcv = Vec::with_capacity(KEY_CHECK_LEN);
        kcv.push(FORMAT_VERSION);
        kcv.extend_from_slice(&nonce);
        kcv.extend_from_slice(&body);
        kcv.extend_from_slice(&tag);
        Ok(kcv)
    }

    /// Checks that the configured KEK `id` opens `kcv`: `UnknownKey` if `id` isn't configured,
    /// `Malformed` for a wrong version or length, `Integrity` if the key (or the id) differs
    /// from the one that made it.
    pub fn verify_key_check(&self, id: &KekId, kcv: &[u8]) -> Result<(), VaultError> {
        let kek = Gcm::new(self.kek(id)?.expose())?;
        let (&version, rest) = kcv
            .split_first()
            .ok_or(VaultError::Malformed("empty key check value"))?;
        if version != FORMAT_VERSION {
            return Err(VaultError::Malformed("unsupported key check value version"));
        }
        if kcv.len() != KEY_CHECK_LEN {
            return Err(VaultError::Malformed(
                "key check value has the wrong length",
            ));
        }
        let (nonce, sealed) =
            rest.split_first_chunk::<NONCE_LEN>()
                .ok_or(VaultError::Malformed(
                    "key check value has the wrong length",
                ))?;
        let mut buf = sealed.to_vec();
        let opened = kek.open(*nonce, &aad::key_check_aad(id), &mut buf)?;
        // The tag already proved the key; comparing the constant guards against a KCV that was
        // deliberately made under this key with some other plaintext.
        if *opened != KEY_CHECK_PLAINTEXT {
            return Err(VaultError::Integrity);
        }
        Ok(())
    }
}
