//! argon2id password hashing and verification on the blocking pool, with bounded concurrency.
//!
//! Each hash costs ~19 MiB and tens of milliseconds of CPU, so hashing runs behind a semaphore
//! sized to the machine: a burst of logins queues instead of starving the executor or memory.
//! The 19 MiB memory matrices are kept and reused, one per permit: allocated per hash, glibc
//! kept freed ones in per-thread arenas, and a burst of sign-ins left hundreds of MiB resident
//! (docs/benchmarks.md, "Peak RSS").

use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::phc::{Output, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret as _, SecretString};
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;
use zeroize::Zeroize as _;

/// OWASP's argon2id minimum (m = 19 MiB, t = 2, p = 1), also the argon2 crate's default.
pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// Longest password accepted for hashing: verification work must not grow with attacker input.
pub const MAX_PASSWORD_BYTES: usize = crate::domain::password_policy::MAX_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("the hashing pool is gone")]
    Closed,
}

/// Length of a fresh hash's random salt (the PHC string format's recommendation).
const SALT_LEN: usize = 16;
/// Length of a fresh hash's output.
const OUTPUT_LEN: usize = 32;

/// Hashes and verifies passwords on the blocking pool, at most `permits` at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    matrices: Arc<Matrices>,
}

/// Spare argon2 memory matrices. A hash takes one (or allocates one when none is spare) and gives
/// it back zeroized, so at most `permits` of them exist and they are allocated once.
#[derive(Default)]
struct Matrices(Mutex<Vec<Vec<Block>>>);

impl Matrices {
    /// A matrix of at least `blocks` blocks.
    fn take(&self, blocks: usize) -> Vec<Block> {
        let mut spare = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match spare.pop() {
            Some(matrix) if matrix.len() >= blocks => matrix,
            // Only a stored hash with a larger memory cost than the current one gets here: it gets
            // a one-off matrix, and the spare one stays for the next hash.
            other => {
                spare.extend(other);
                drop(spare);
                vec![Block::new(); blocks]
            }
        }
    }

    /// Wipes `matrix` (it holds values derived from the password) and keeps it for the next
    /// hash. Oversized ones (see `take`) are dropped instead: they are rare.
    fn give_back(&self, mut matrix: Vec<Block>) {
        matrix.iter_mut().for_each(|block| block.zeroize());
        if matrix.len() == current_params().block_count() {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(matrix);
        }
    }

    /// Runs argon2 with a spare matrix.
    fn hash_into(
        &self,
        argon2: &Argon2<'_>,
        params: &Params,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> argon2::Result<()> {
        let mut matrix = self.take(params.block_count());
        let result = argon2.hash_password_into_with_memory(password, salt, out, &mut matrix[..]);
        self.give_back(matrix);
        result
    }
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Valid { needs_rehash: bool },
    Invalid,
}

impl PasswordHasher {
    pub fn new(permits: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            matrices: Arc::default(),
        }
    }

    /// One permit per core: hashing is CPU-bound.
    pub fn for_this_machine() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Returns the PHC string of a fresh argon2id hash with a random salt.
    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        if password.expose_secret().len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        let password = password.clone();
        let matrices = Arc::clone(&self.matrices);
        self.blocking(move || {
            let failed = |e: &dyn std::fmt::Display| PasswordError::Hashing(e.to_string());
            let params = current_params();
            let salt = crate::primitives::random_bytes::<SALT_LEN>()
                .map_err(|_| PasswordError::Hashing("the random source failed".into()))?;
            let mut out = [0u8; OUTPUT_LEN];
            let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
            matrices
                .hash_into(
                    &argon2,
                    &params,
                    password.expose_secret().as_bytes(),
                    salt.as_ref(),
                    &mut out,
                )
                .map_err(|e| failed(&e))?;
            let phc = PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                params: (&params).try_into().map_err(|e| failed(&e))?,
                salt: Some(Salt::new(salt.as_ref()).map_err(|e| failed(&e))?),
                hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
            };
            Ok(phc.to_string())
        })
        .await
    }

    /// Checks a password. With no stored hash (unknown user), a dummy hash is verified so the
    /// time taken does not reveal whether the account exists.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<String>,
    ) -> Result<Verification, PasswordError> {
        if password.expose_secret().len() > MAX_PASSWORD_BYTES {
            return Ok(Verification::Invalid);
        }
        let password = password.clone();
        let matrices = Arc::clone(&self.matrices);
        self.blocking(move || {
            let (phc, real) = match stored {
                Some(phc) => (phc, true),
                None => (dummy_hash().to_owned(), false),
            };
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return Ok(Verification::Invalid);
            };
            let ok = matches_stored(&matrices, password.expose_secret().as_bytes(), &parsed);
            Ok(if ok && real {
                Verification::Valid {
                    needs_rehash: is_weaker_than_current(&parsed),
                }
            } else {
                Verification::Invalid
            })
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Closed)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| PasswordError::Closed)?
    }
}

fn current_params() -> Params {
    // The constants are valid argon2 parameters; `Params::DEFAULT` is the same triple.
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, Some(OUTPUT_LEN)).unwrap_or(Params::DEFAULT)
}

/// Whether `password` hashes to `stored` with `stored`'s algorithm, version, parameters and salt;
/// the outputs are compared in constant time. Anything unusable in `stored` is a mismatch.
fn matches_stored(matrices: &Matrices, password: &[u8], stored: &PasswordHash) -> bool {
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(stored.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = stored
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let Ok(params) = Params::try_from(stored) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    if matrices
        .hash_into(&argon2, &params, password, salt, &mut out)
        .is_err()
    {
        return false;
    }
    bool::from(out.ct_eq(expected.as_bytes()))
}

/// A real argon2id hash (of a random string nobody knows) at current parameters.
fn dummy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$nWpfuD0RxxNfBPoDsg0nvzGx2yMJLFyf6ebQF42ZpIE"
}

/// Whether a stored hash uses another algorithm or parameters below the current ones.
fn is_weaker_than_current(hash: &argon2::password_hash::phc::PasswordHash) -> bool {
    if hash.algorithm.as_str() != "argon2id" {
        return true;
    }
    let Ok(params) = Params::try_from(hash) else {
        return true;
    };
    params.m_cost() < MEMORY_KIB || params.t_cost() < ITERATIONS
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    #[tokio::test]
    async fn hashes_interoperate_with_the_argon2_crates_own_hashing_and_verification() {
        let hasher = PasswordHasher::new(1);
        let password = SecretString::from("interoperable");
        let ours = hasher.hash(&password).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"interoperable", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"other", &parsed)
                .is_err()
        );
        let theirs = Argon2::default()
            .hash_password(b"interoperable")
            .unwrap()
            .to_string();
        assert_eq!(
            hasher.verify(&password, Some(theirs)).await.unwrap(),
            Verification::Valid {
                needs_rehash: false
            }
        );
    }

    #[tokio::test]
    async fn a_stronger_stored_hash_verifies_with_a_larger_one_off_matrix() {
        let strong = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(2 * MEMORY_KIB, 2, 1, None).unwrap(),
        )
        .hash_password(b"strong")
        .unwrap()
        .to_string();
        let hasher = PasswordHasher::new(1);
        let verdict = hasher
            .verify(&SecretString::from("strong"), Some(strong))
            .await
            .unwrap();
        assert_eq!(
            verdict,
            Verification::Valid {
                needs_rehash: false
            }
        );
        assert!(
            hasher.matrices.0.lock().unwrap().is_empty(),
            "the oversized matrix is not kept"
        );
        // With a spare matrix of the current size, a stronger hash leaves it in place.
        let current = hasher.hash(&SecretString::from("current")).await.unwrap();
        assert_eq!(hasher.matrices.0.lock().unwrap().len(), 1);
        let strong_again = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(2 * MEMORY_KIB, 2, 1, None).unwrap(),
        )
        .hash_password(b"strong")
        .unwrap()
        .to_string();
        assert_eq!(
            hasher
                .verify(&SecretString::from("strong"), Some(strong_again))
                .await
                .unwrap(),
            Verification::Valid {
                needs_rehash: false
            }
        );
        assert_eq!(
            hasher.matrices.0.lock().unwrap().len(),
            1,
            "the spare matrix survives a stronger hash's verification"
        );
        assert!(matches!(
            hasher
                .verify(&SecretString::from("current"), Some(current))
                .await
                .unwrap(),
            Verification::Valid { .. }
        ));
    }

    #[tokio::test]
    async fn matrices_are_reused_one_per_permit_and_kept_wiped() {
        let hasher = PasswordHasher::new(2);
        let password = SecretString::from("reuse me");
        let hashes = futures_util::future::join_all((0..6).map(|_| hasher.hash(&password))).await;
        for phc in hashes {
            let verdict = hasher.verify(&password, Some(phc.unwrap())).await.unwrap();
            assert_eq!(
                verdict,
                Verification::Valid {
                    needs_rehash: false
                }
            );
        }
        let spare = hasher.matrices.0.lock().unwrap();
        assert!(
            (1..=2).contains(&spare.len()),
            "12 hashes with 2 permits leave at most 2 matrices: {}",
            spare.len()
        );
        for matrix in spare.iter() {
            assert_eq!(matrix.len(), current_params().block_count());
            assert!(
                matrix
                    .iter()
                    .all(|block| block.as_ref().iter().all(|&w| w == 0)),
                "a spare matrix holds nothing derived from a password"
            );
        }
    }

    #[tokio::test]
    async fn a_hash_is_argon2id_at_owasp_parameters_and_verifies() {
        let hasher = PasswordHasher::new(2);
        let password = SecretString::from("correct horse battery staple");
        let phc = hasher.hash(&password).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let verdict = hasher.verify(&password, Some(phc.clone())).await.unwrap();
        assert_eq!(
            verdict,
            Verification::Valid {
                needs_rehash: false
            }
        );
        let wrong = hasher
            .verify(&SecretString::from("nope"), Some(phc))
            .await
            .unwrap();
        assert_eq!(wrong, Verification::Invalid);
    }

    #[tokio::test]
    async fn two_hashes_of_one_password_differ() {
        let hasher = PasswordHasher::new(2);
        let password = SecretString::from("same password twice");
        assert_ne!(
            hasher.hash(&password).await.unwrap(),
            hasher.hash(&password).await.unwrap()
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = PasswordHasher::new(1);
        let verdict = hasher
            .verify(&SecretString::from("anything"), None)
            .await
            .unwrap();
        assert_eq!(verdict, Verification::Invalid);
    }

    #[tokio::test]
    async fn a_weaker_stored_hash_asks_for_a_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 1, 1, None).unwrap(),
        )
        .hash_password(b"legacy password")
        .unwrap()
        .to_string();
        let verdict = PasswordHasher::new(1)
            .verify(&SecretString::from("legacy password"), Some(weak))
            .await
            .unwrap();
        assert_eq!(verdict, Verification::Valid { needs_rehash: true });
    }
}
