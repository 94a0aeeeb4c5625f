//! Key-encryption keys (KEKs): their ids, the raw key bytes, and the configured keyring.
//!
//! Key material only ever lives in `MasterKey` (a zeroize-on-drop heap box). Nothing in this
//! module prints, clones or echoes key bytes, including the parse errors: a misplaced `:` can
//! turn a key into an "id", so ids are echoed only once they have passed `KekId` validation.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use zeroize::Zeroizing;

use super::VaultError;

/// Length of every KEK and DEK: AES-256.
pub const KEY_LEN: usize = 32;

/// Longest key id; the envelope stores its length in one byte and the AAD length-prefixes it.
pub const MAX_KEK_ID_LEN: usize = 64;

/// The id of a key-encryption key, `^[A-Za-z0-9_.-]{1,64}$`.
///
/// Ids are public (stored next to every ciphertext and in the `keyring` table), so this type
/// implements `Display`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KekId(String);

/// Why a string is not a valid `KekId`. Deliberately does not echo the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("key id must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', '-'")]
pub struct KekIdError;

impl KekId {
    pub fn parse(id: &str) -> Result<Self, KekIdError> {
        let valid_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
        if (1..=MAX_KEK_ID_LEN).contains(&id.len()) && id.bytes().all(valid_char) {
            Ok(Self(id.to_owned()))
        } else {
            Err(KekIdError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KekId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KekId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for KekId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A 32-byte key-encryption key.
///
/// Heap-allocated and zeroized on drop (`SecretBox`), so moving a `MasterKey` never leaves a
/// stack copy behind. Not `Clone`, `Display` or `Serialize`; `Debug` prints `[REDACTED]`.
pub struct MasterKey(SecretBox<[u8; KEY_LEN]>);

impl MasterKey {
    /// Copies `bytes` into a zeroizing heap box; the caller remains responsible for its copy.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        Self(SecretBox::init_with_mut(|key: &mut [u8; KEY_LEN]| {
            key.copy_from_slice(bytes);
        }))
    }

    /// Only the vault's own cipher code reads key bytes.
    pub(super) fn expose(&self) -> &[u8; KEY_LEN] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

/// Where the vault gets its KEKs. `Keyring` (keys from configuration) is the only
/// implementation today; the trait keeps the vault independent of where keys live, leaving room
/// for an external KMS later.
pub trait KeyProvider: Send + Sync {
    /// The key new envelopes are wrapped under.
    fn active_id(&self) -> &KekId;

    /// The key with this id, if configured.
    fn key(&self, id: &KekId) -> Option<&MasterKey>;

    /// Every configured key id, in configuration order (for the boot check and `keys status`).
    fn key_ids(&self) -> Vec<&KekId>;
}

/// Why `FINCHGATE_MASTER_KEYS` / `FINCHGATE_ACTIVE_KEY_ID` were rejected. Each message is one
/// line meant for the operator and never contains key material; items are numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    #[error("empty: expected comma-separated id:base64 items")]
    Empty,
    #[error("item {item} is empty")]
    EmptyItem { item: usize },
    #[error("item {item}: expected id:base64")]
    MissingSeparator { item: usize },
    #[error("item {item}: {source}")]
    InvalidId { item: usize, source: KekIdError },
    #[error("key \"{id}\": value is not valid standard base64")]
    InvalidBase64 { id: KekId },
    #[error("key \"{id}\": expected 32 bytes after base64 decoding, got {got}")]
    WrongLength { id: KekId, got: usize },
    #[error("duplicate key id \"{id}\"")]
    DuplicateId { id: KekId },
    #[error("FINCHGATE_ACTIVE_KEY_ID: {0}")]
    InvalidActiveId(KekIdError),
    #[error("FINCHGATE_ACTIVE_KEY_ID \"{id}\" is not among the configured keys")]
    UnknownActive { id: KekId },
}

struct KeyEntry {
    id: KekId,
    key: MasterKey,
}

/// The configured KEKs (in configuration order) and which one wraps new DEKs.
///
/// Invariant: non-empty, ids unique, `active` is one of the entries' ids.
pub struct Keyring {
    entries: Vec<KeyEntry>,
    active: KekId,
}

impl Keyring {
    /// Parses `FINCHGATE_MASTER_KEYS` (`id:base64,id:base64`, standard padded base64 of exactly
    /// 32 bytes, whitespace around items ignored) and the optional `FINCHGATE_ACTIVE_KEY_ID`.
    ///
    /// Without an active id the last listed key is active: operators append new keys, so the
    /// last one is the newest. A blank active id counts as unset, because deployment tooling
    /// often exports empty variables instead of omitting them.
    pub fn parse(master_keys: &str, active: Option<&str>) -> Result<Self, KeyringError> {
        if master_keys.trim().is_empty() {
            return Err(KeyringError::Empty);
        }
        let mut keys = Vec::new();
        for (index, raw) in master_keys.split(',').enumerate() {
            let item = index + 1;
            let raw = raw.trim();
            if raw.is_empty() {
                return Err(KeyringError::EmptyItem { item });
            }
            let (id, encoded) = raw
                .split_once(':')
                .ok_or(KeyringError::MissingSeparator { item })?;
            let id = KekId::parse(id).map_err(|source| KeyringError::InvalidId { item, source })?;
            // Decode into a pre-sized zeroizing buffer: the decoded bytes are the key itself,
            // also when decoding fails halfway. The decoder's error is dropped because it
            // quotes the offending character.
            let estimate = base64::decoded_len_estimate(encoded.len());
            let mut decoded = Zeroizing::new(Vec::with_capacity(estimate));
            if STANDARD.decode_vec(encoded, &mut decoded).is_err() {
                return Err(KeyringError::InvalidBase64 { id });
            }
            let Ok(bytes) = <&[u8; KEY_LEN]>::try_from(decoded.as_slice()) else {
                return Err(KeyringError::WrongLength {
                    id,
                    got: decoded.len(),
                });
            };
            keys.push((id, MasterKey::from_bytes(bytes)));
        }
        let active = match active.map(str::trim).filter(|a| !a.is_empty()) {
            Some(a) => Some(KekId::parse(a).map_err(KeyringError::InvalidActiveId)?),
            None => None,
        };
        Self::new(keys, active)
    }

    /// Builds a keyring from already-decoded keys (tests, a future key-file loader).
    /// `active: None` selects the last key.
    pub fn new(keys: Vec<(KekId, MasterKey)>, active: Option<KekId>) -> Result<Self, KeyringError> {
        let mut entries: Vec<KeyEntry> = Vec::with_capacity(keys.len());
        for (id, key) in keys {
            if entries.iter().any(|e| e.id == id) {
                return Err(KeyringError::DuplicateId { id });
            }
            entries.push(KeyEntry { id, key });
        }
        let active = match active {
            Some(id) if entries.iter().any(|e| e.id == id) => id,
            Some(id) => return Err(KeyringError::UnknownActive { id }),
            None => entries.last().ok_or(KeyringError::Empty)?.id.clone(),
        };
        Ok(Self { entries, active })
    }

    /// A fresh random key, standard base64, for `finchgate keys generate`.
    pub fn generate_key() -> Result<SecretString, VaultError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(&mut key[..])
            .map_err(|_| VaultError::Crypto)?;
        // `encode` allocates exactly the encoded length, so the String -> Box<str> conversion
        // inside `SecretString::from` does not reallocate and leave an unzeroized copy.
        Ok(SecretString::from(STANDARD.encode(&key[..])))
    }
}

impl KeyProvider for Keyring {
    fn active_id(&self) -> &KekId {
        &self.active
    }

    fn key(&self, id: &KekId) -> Option<&MasterKey> {
        self.entries.iter().find(|e| &e.id == id).map(|e| &e.key)
    }

    fn key_ids(&self) -> Vec<&KekId> {
        self.entries.iter().map(|e| &e.id).collect()
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.key_ids())
            .field("active", &self.active)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const K16: &str = "AAAAAAAAAAAAAAAAAAAAAA==";

    fn b64(byte: u8) -> String {
        STANDARD.encode([byte; KEY_LEN])
    }

    fn id(s: &str) -> Result<KekId, KekIdError> {
        KekId::parse(s)
    }

    #[test]
    fn valid_key_ids_are_accepted_and_invalid_ones_rejected() {
        for ok in ["a", "k1", "2025-01.prod_A", &"x".repeat(64)] {
            assert!(KekId::parse(ok).is_ok(), "{ok:?} should be valid");
        }
        for bad in ["", "k 1", "k:1", "k/1", "ключ", "k1\n", &"x".repeat(65)] {
            assert_eq!(
                KekId::parse(bad),
                Err(KekIdError),
                "{bad:?} should be invalid"
            );
        }
    }

    #[test]
    fn the_last_listed_key_is_active_by_default() -> Result<(), KeyringError> {
        let ring = Keyring::parse(&format!("k1:{},k2:{}", b64(1), b64(2)), None)?;
        assert_eq!(ring.active_id().as_str(), "k2");
        assert_eq!(
            ring.key_ids(),
            vec![&KekId("k1".into()), &KekId("k2".into())]
        );
        Ok(())
    }

    #[test]
    fn an_explicit_active_key_wins_and_whitespace_around_items_is_tolerated()
    -> Result<(), KeyringError> {
        let ring = Keyring::parse(
            &format!("  k1:{} ,\n\tk2:{}\n", b64(1), b64(2)),
            Some(" k1 "),
        )?;
        assert_eq!(ring.active_id().as_str(), "k1");
        let k1 = ring.key(&KekId("k1".into())).map(|k| *k.expose());
        assert_eq!(k1, Some([1u8; KEY_LEN]));
        Ok(())
    }

    #[test]
    fn a_blank_active_key_id_counts_as_unset() -> Result<(), KeyringError> {
        let ring = Keyring::parse(&format!("k1:{},k2:{}", b64(1), b64(2)), Some("  "))?;
        assert_eq!(ring.active_id().as_str(), "k2");
        Ok(())
    }

    #[test]
    fn keyring_parse_errors_are_precise_and_never_echo_key_material() {
        let k = b64(7);
        let cases: Vec<(String, Option<&str>, &str)> = vec![
            (
                String::new(),
                None,
                "empty: expected comma-separated id:base64 items",
            ),
            (
                " \n ".into(),
                None,
                "empty: expected comma-separated id:base64 items",
            ),
            (format!("k1:{k},,k2:{k}"), None, "item 2 is empty"),
            (format!("k1:{k},"), None, "item 2 is empty"),
            (k.clone(), None, "item 1: expected id:base64"),
            (
                format!("k 1:{k}"),
                None,
                "item 1: key id must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', '-'",
            ),
            (
                format!(":{k}"),
                None,
                "item 1: key id must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', '-'",
            ),
            (
                "k1:not*base64!".into(),
                None,
                "key \"k1\": value is not valid standard base64",
            ),
            (
                format!("k1: {k}"),
                None,
                "key \"k1\": value is not valid standard base64",
            ),
            (
                format!("k1:{k},k2:{K16}"),
                None,
                "key \"k2\": expected 32 bytes after base64 decoding, got 16",
            ),
            (
                "k1:".into(),
                None,
                "key \"k1\": expected 32 bytes after base64 decoding, got 0",
            ),
            (
                format!("k1:{k},k1:{}", b64(8)),
                None,
                "duplicate key id \"k1\"",
            ),
            (
                format!("k1:{k}"),
                Some("k9"),
                "FINCHGATE_ACTIVE_KEY_ID \"k9\" is not among the configured keys",
            ),
            (
                format!("k1:{k}"),
                Some("k/9"),
                "FINCHGATE_ACTIVE_KEY_ID: key id must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', '-'",
            ),
        ];
        for (input, active, expected) in cases {
            let message = match Keyring::parse(&input, active) {
                Ok(ring) => panic!("{input:?} / {active:?} parsed into {ring:?}"),
                Err(e) => e.to_string(),
            };
            assert_eq!(message, expected, "input {input:?} / {active:?}");
            assert!(!message.contains(&k) && !message.contains(K16));
            assert!(!message.contains('\n'), "one line: {message:?}");
        }
    }

    #[test]
    fn debug_output_of_keys_and_keyrings_shows_no_key_bytes() -> Result<(), KeyringError> {
        let encoded = b64(0xAB);
        let ring = Keyring::parse(&format!("k1:{encoded}"), None)?;
        let key_debug = format!("{:?}", MasterKey::from_bytes(&[0xAB; KEY_LEN]));
        assert_eq!(key_debug, "MasterKey([REDACTED])");
        let ring_debug = format!("{ring:?} {ring:#?}");
        assert!(ring_debug.contains("\"k1\""), "{ring_debug}");
        for leak in [encoded.as_str(), "171", "ab", "AB", "q6ur"] {
            assert!(!ring_debug.contains(leak), "{ring_debug} contains {leak}");
        }
        Ok(())
    }

    #[test]
    fn a_master_key_is_neither_display_nor_clone() {
        // Inherent associated consts shadow the blanket trait only when the bound holds
        // (the `impls` crate's trick), which turns "does not implement" into a value.
        struct Probe<T>(std::marker::PhantomData<T>);
        trait No {
            const DISPLAY: bool = false;
            const CLONE: bool = false;
        }
        impl<T> No for Probe<T> {}
        impl<T: fmt::Display> Probe<T> {
            const DISPLAY: bool = true;
        }
        impl<T: Clone> Probe<T> {
            const CLONE: bool = true;
        }
        // Checked at compile time: adding such an impl breaks the build of the tests.
        const {
            assert!(!<Probe<MasterKey>>::DISPLAY);
            assert!(!<Probe<MasterKey>>::CLONE);
            assert!(!<Probe<Keyring>>::CLONE);
            assert!(
                <Probe<KekId>>::DISPLAY && <Probe<KekId>>::CLONE,
                "the probe itself works"
            );
        }
    }

    #[test]
    fn generated_keys_are_32_random_bytes_in_standard_base64() -> Result<(), VaultError> {
        let a = Keyring::generate_key()?;
        let b = Keyring::generate_key()?;
        assert_ne!(a.expose_secret(), b.expose_secret());
        let ring = Keyring::parse(&format!("k1:{}", a.expose_secret()), None);
        assert!(ring.is_ok());
        Ok(())
    }

    #[test]
    fn a_keyring_needs_at_least_one_key() -> Result<(), KekIdError> {
        assert_eq!(
            Keyring::new(Vec::new(), None).err(),
            Some(KeyringError::Empty)
        );
        let unknown = id("k1")?;
        assert_eq!(
            Keyring::new(Vec::new(), Some(unknown.clone())).err(),
            Some(KeyringError::UnknownActive { id: unknown })
        );
        Ok(())
    }

    proptest! {
        #[test]
        fn key_id_parsing_matches_its_regex(s in "\\PC{0,70}") {
            let expected = (1..=64).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            prop_assert_eq!(KekId::parse(&s).is_ok(), expected);
        }

        #[test]
        fn any_list_of_distinct_valid_keys_parses_in_order(
            ids in prop::collection::btree_set("[A-Za-z0-9_.-]{1,64}", 1..6),
            byte in any::<u8>(),
        ) {
            let ids: Vec<String> = ids.into_iter().collect();
            let spec = ids.iter().map(|i| format!(" {i}:{} ", b64(byte))).collect::<Vec<_>>().join(",");
            let ring = Keyring::parse(&spec, None)?;
            let parsed: Vec<&str> = ring.key_ids().into_iter().map(KekId::as_str).collect();
            prop_assert_eq!(&parsed, &ids);
            prop_assert_eq!(Some(ring.active_id().as_str()), ids.last().map(String::as_str));
        }
    }
}
