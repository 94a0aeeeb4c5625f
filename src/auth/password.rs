//! argon2id password hashing and verification on the blocking pool, with bounded concurrency.
//!
//! Each hash costs ~19 MiB and tens of milliseconds of CPU, so hashing runs behind a semaphore
//! sized to the machine: a burst of logins queues instead of starving the executor or memory.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::Semaphore;

/// OWASP's argon2id minimum (m = 19 MiB, t = 2, p = 1), also the argon2 crate's default.
pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// Longest password accepted for hashing: verification work must not grow with attacker input.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("the hashing pool is gone")]
    Closed,
}

/// Hashes and verifies passwords on the blocking pool, at most `permits` at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
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
        self.blocking(move || {
            hasher()
                .hash_password(password.expose_secret().as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| PasswordError::Hashing(e.to_string()))
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
        self.blocking(move || {
            let (phc, real) = match stored {
                Some(phc) => (phc, true),
                None => (dummy_hash().to_owned(), false),
            };
            let Ok(parsed) = argon2::password_hash::phc::PasswordHash::new(&phc) else {
                return Ok(Verification::Invalid);
            };
            let ok = Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
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

fn hasher() -> Argon2<'static> {
    // The constants are valid argon2 parameters; `Params::DEFAULT` is the same triple.
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
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
    use super::*;

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
