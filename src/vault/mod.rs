//! Envelope encryption for the secrets finchgate stores: Finch access tokens and tenant client secrets.
//!
//! Each value gets a fresh random DEK; the value is sealed under the DEK and the DEK under the
//! active KEK, both with AES-256-GCM and both with AAD rebuilt from the row's identity, so a
//! ciphertext only opens in the row it was written for. The envelope records which KEK wrapped
//! its DEK, which lets rotation re-wrap DEKs without touching values. Pure and I/O-free: the
//! database layer stores `Sealed` and calls back in to open, re-wrap and check keys. Nothing here
//! logs, and no error carries key or plaintext bytes.

mod aad;
mod cipher;
mod envelope;
mod key_check;
mod keyring;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};
use secrecy::SecretString;
use zeroize::Zeroizing;

pub use aad::{Purpose, RowContext};
pub use envelope::{
    Envelope, FORMAT_VERSION, MAX_ENVELOPE_LEN, MAX_PLAINTEXT_LEN, NONCE_LEN, TAG_LEN,
    WRAPPED_DEK_LEN,
};
pub use key_check::KEY_CHECK_LEN;
pub use keyring::{
    KEY_LEN, KekId, KekIdError, KeyProvider, Keyring, KeyringError, MAX_KEK_ID_LEN, MasterKey,
};

use cipher::{Gcm, random_nonce};

/// Everything that can go wrong sealing or opening. Messages never contain key, plaintext or
/// ciphertext bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The envelope (or key check) names a KEK that is not configured.
    #[error("key-encryption key \"{0}\" is not configured")]
    UnknownKey(KekId),
    /// The bytes are not a well-formed envelope / key-check value.
    #[error("malformed vault data: {0}")]
    Malformed(&'static str),
    /// Some AEAD tag did not verify. One variant for both layers, so callers (and attackers)
    /// can't tell which layer failed.
    #[error(
        "integrity check failed: the ciphertext was altered, moved to another row, or sealed under a different key"
    )]
    Integrity,
    /// `seal` refuses values whose envelope would exceed `MAX_ENVELOPE_LEN`.
    #[error("value too large to seal: at most {max} bytes")]
    PlaintextTooLarge { max: usize },
    /// The system RNG (or ring's key setup) failed.
    #[error("cryptographic failure: the system random number generator or cipher setup failed")]
    Crypto,
}

/// A sealed value ready to store: the envelope bytes plus, as its own column, the id of the KEK
/// that wrapped the DEK (the same id the envelope header carries), for rotation queries.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub kek_id: KekId,
    pub envelope: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("kek_id", &self.kek_id)
            .field("envelope_len", &self.envelope.len())
            .finish()
    }
}

/// The outcome of `Vault::rewrap`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Rewrap {
    /// The DEK already is under the active KEK; the stored row needs no update.
    AlreadyActive,
    /// The DEK is now under the active KEK; store this in place of the old envelope.
    Rewrapped(Sealed),
}

/// Seals and opens envelopes with the configured KEKs. Cheap to share (`Send + Sync`); build
/// once and keep it in the application state.
pub struct Vault {
    keys: Arc<dyn KeyProvider>,
    rng: SystemRandom,
}

impl Vault {
    pub fn new(keys: Arc<dyn KeyProvider>) -> Self {
        Self {
            keys,
            rng: SystemRandom::new(),
        }
    }

    /// The KEK new envelopes (and re-wraps) use.
    pub fn active_kek_id(&self) -> &KekId {
        self.keys.active_id()
    }

    /// Every configured KEK id, for the boot check and `keys status`.
    pub fn kek_ids(&self) -> Vec<&KekId> {
        self.keys.key_ids()
    }

    /// Seals `plaintext` for the row `ctx` under a fresh DEK wrapped by the active KEK.
    pub fn seal(&self, ctx: &RowContext, plaintext: &[u8]) -> Result<Sealed, VaultError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(VaultError::PlaintextTooLarge {
                max: MAX_PLAINTEXT_LEN,
            });
        }
        let kek_id = self.keys.active_id();
        // The data key and both nonces from one draw: a third of a seal's time was the random
        // source's system call, once per field (docs/benchmarks.md). Same generator, same bytes.
        let mut fresh = Zeroizing::new([0u8; KEY_LEN + 2 * NONCE_LEN]);
        self.rng
            .fill(&mut fresh[..])
            .map_err(|_| VaultError::Crypto)?;
        let (dek_bytes, nonces) = fresh.split_at(KEY_LEN);
        let (value_nonce_bytes, dek_nonce_bytes) = nonces.split_at(NONCE_LEN);
        let mut dek = Zeroizing::new([0u8; KEY_LEN]);
        dek.copy_from_slice(dek_bytes);
        let mut value_nonce = [0u8; NONCE_LEN];
        value_nonce.copy_from_slice(value_nonce_bytes);
        let mut dek_nonce = [0u8; NONCE_LEN];
        dek_nonce.copy_from_slice(dek_nonce_bytes);
        // Sized up front so the plaintext is never left behind by a reallocation, and zeroizing
        // because it holds plaintext until the seal below succeeds.
        let mut value = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_LEN));
        value.extend_from_slice(plaintext);
        let tag = Gcm::new(&dek)?.seal(value_nonce, &aad::value_aad(ctx), &mut value)?;
        value.extend_from_slice(&tag);
        let wrapped_dek = self.wrap_dek(ctx, kek_id, &dek, dek_nonce)?;
        let envelope =
            Envelope::new(kek_id.clone(), dek_nonce, &wrapped_dek, value_nonce, &value).to_bytes();
        Ok(Sealed {
            kek_id: kek_id.clone(),
            envelope,
        })
    }

    /// Opens an envelope stored in the row `ctx`. Every failure is an `Err` and no partial
    /// plaintext ever leaves this function.
    pub fn open(
        &self,
        ctx: &RowContext,
        envelope: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let envelope = Envelope::parse(envelope)?;
        self.with_dek(ctx, &envelope, |dek| open_value(dek, ctx, &envelope))
    }

    /// `open` for values that are text (tokens, client secrets).
    pub fn open_string(
        &self,
        ctx: &RowContext,
        envelope: &[u8],
    ) -> Result<SecretString, VaultError> {
        let bytes = self.open(ctx, envelope)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| VaultError::Malformed("sealed value is not UTF-8"))?;
        // Copies into an exactly-sized box; `bytes` is zeroized when it drops.
        Ok(SecretString::from(text))
    }

    /// Re-wraps the envelope's DEK under the active KEK, for rotation. The value nonce and
    /// ciphertext are carried over byte for byte.
    ///
    /// Both layers are authenticated first, also when nothing needs to change, so a rotation
    /// run reports damaged or misplaced rows instead of carrying them forward, and `Ok` always
    /// means "this row opens". Already under the active key: `Rewrap::AlreadyActive`, which
    /// makes re-running an interrupted batch harmless.
    pub fn rewrap(&self, ctx: &RowContext, envelope: &[u8]) -> Result<Rewrap, VaultError> {
        let envelope = Envelope::parse(envelope)?;
        let active = self.keys.active_id();
        self.with_dek(ctx, &envelope, |dek| {
            open_value(dek, ctx, &envelope)?;
            if envelope.kek_id() == active {
                return Ok(Rewrap::AlreadyActive);
            }
            let dek_nonce = random_nonce(&self.rng)?;
            let wrapped_dek = self.wrap_dek(ctx, active, dek, dek_nonce)?;
            let rewrapped = Envelope::new(
                active.clone(),
                dek_nonce,
                &wrapped_dek,
                envelope.value_nonce(),
                envelope.value_ciphertext(),
            );
            Ok(Rewrap::Rewrapped(Sealed {
                kek_id: active.clone(),
                envelope: rewrapped.to_bytes(),
            }))
        })
    }

    /// The kek id in an envelope's header, without opening it (for checking the stored kek id
    /// column and for the boot check's "every kek id in the data is configured").
    pub fn envelope_kek_id(envelope: &[u8]) -> Result<KekId, VaultError> {
        Envelope::parse(envelope).map(Envelope::into_kek_id)
    }

    fn kek(&self, id: &KekId) -> Result<&MasterKey, VaultError> {
        self.keys
            .key(id)
            .ok_or_else(|| VaultError::UnknownKey(id.clone()))
    }

    /// Seals `dek` under the KEK `kek_id` for the row `ctx`: returns (nonce, ciphertext ‖ tag).
    fn wrap_dek(
        &self,
        ctx: &RowContext,
        kek_id: &KekId,
        dek: &[u8; KEY_LEN],
        nonce: [u8; NONCE_LEN],
    ) -> Result<[u8; WRAPPED_DEK_LEN], VaultError> {
        let kek = Gcm::new(self.kek(kek_id)?.expose())?;
        // Holds the plaintext DEK until sealed in place, hence zeroizing.
        let mut wrapped = Zeroizing::new([0u8; WRAPPED_DEK_LEN]);
        let (body, tag_slot) = wrapped.split_at_mut(KEY_LEN);
        body.copy_from_slice(dek);
        let tag = kek.seal(nonce, &aad::wrap_aad(ctx, kek_id), body)?;
        tag_slot.copy_from_slice(&tag);
        Ok(*wrapped)
    }

    /// Unwraps the envelope's DEK and lends it to `f`. The DEK lives only in this call's
    /// zeroizing buffer: never copied out, never cached.
    fn with_dek<T>(
        &self,
        ctx: &RowContext,
        envelope: &Envelope<'_>,
        f: impl FnOnce(&[u8; KEY_LEN]) -> Result<T, VaultError>,
    ) -> Result<T, VaultError> {
        let kek = Gcm::new(self.kek(envelope.kek_id())?.expose())?;
        let mut buf = Zeroizing::new(*envelope.wrapped_dek());
        let aad = aad::wrap_aad(ctx, envelope.kek_id());
        let dek = kek.open(envelope.dek_nonce(), &aad, &mut buf[..])?;
        let dek = <&[u8; KEY_LEN]>::try_from(&*dek).map_err(|_| VaultError::Integrity)?;
        f(dek)
    }
}

/// Opens the value layer with an unwrapped DEK.
fn open_value(
    dek: &[u8; KEY_LEN],
    ctx: &RowContext,
    envelope: &Envelope<'_>,
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    // Decrypt into a zeroizing copy: on a failed tag ring leaves it partly decrypted.
    let mut buf = Zeroizing::new(envelope.value_ciphertext().to_vec());
    let plaintext_len = Gcm::new(dek)?
        .open(envelope.value_nonce(), &aad::value_aad(ctx), &mut buf)?
        .len();
    buf.truncate(plaintext_len);
    Ok(buf)
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("kek_ids", &self.keys.key_ids())
            .field("active", self.keys.active_id())
            .finish_non_exhaustive()
    }
}
