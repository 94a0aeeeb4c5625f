//! AES-256-GCM and nonce generation on top of ring, the only place the vault calls ring's AEAD.
//!
//! Keys are turned into ring keys just in time and dropped right after use: ring does not
//! zeroize its expanded key schedules, so none may outlive the operation.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use super::VaultError;
use super::envelope::{NONCE_LEN, TAG_LEN};
use super::keyring::KEY_LEN;

/// `LessSafeKey` because nonces are random per message, not a `NonceSequence` counter.
pub(super) struct Gcm(LessSafeKey);

impl Gcm {
    pub(super) fn new(key: &[u8; KEY_LEN]) -> Result<Self, VaultError> {
        // Fails only for a wrong key length, which the array type rules out.
        let key = UnboundKey::new(&AES_256_GCM, key).map_err(|_| VaultError::Crypto)?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// Encrypts `in_out` in place and returns the tag.
    pub(super) fn seal(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], VaultError> {
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), in_out)
            .map_err(|_| VaultError::Crypto)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts `ciphertext ‖ tag` in place and returns the plaintext prefix. Any failure is
    /// `Integrity`, with no detail. On failure ring leaves `in_out` partly overwritten, so the
    /// caller must hold it in a zeroizing buffer and discard it.
    pub(super) fn open<'b>(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        in_out: &'b mut [u8],
    ) -> Result<&'b mut [u8], VaultError> {
        self.0
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), in_out)
            .map_err(|_| VaultError::Integrity)
    }
}

/// A fresh random 96-bit nonce. Random rather than counter nonces: DEKs are single-use, and KEK
/// wraps stay far below the 2^32 random-nonce bound per key (SP 800-38D §8.3), which the
/// database side counts per kek id.
pub(super) fn random_nonce(rng: &SystemRandom) -> Result<[u8; NONCE_LEN], VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| VaultError::Crypto)?;
    Ok(nonce)
}
