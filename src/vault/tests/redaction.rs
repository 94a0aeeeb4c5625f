//! What `Debug` and error messages show: the problem, never key bytes, plaintext or ciphertext.

use super::*;

#[test]
fn debug_output_of_vault_types_shows_no_key_bytes_or_ciphertext() -> TestResult {
    let vault = vault(&[("k1", 0xAB)], None)?;
    let sealed = vault.seal(&token_row(), b"plain-secret")?;
    let debug = format!(
        "{vault:?} {sealed:?} {:?}",
        Envelope::parse(&sealed.envelope)?
    );
    assert!(debug.contains("\"k1\""), "{debug}");
    for leak in ["171", "plain-secret", "[REDACTED]"] {
        assert!(!debug.contains(leak), "{debug} contains {leak}");
    }
    // Any run of envelope bytes as `Debug` would print them, e.g. "12, 200, 3".
    for window in sealed.envelope.windows(3) {
        let run = format!("{window:?}");
        let run = run.trim_start_matches('[').trim_end_matches(']');
        assert!(!debug.contains(run), "{debug} contains {run}");
    }
    Ok(())
}

#[test]
fn error_messages_name_the_problem_without_data() -> TestResult {
    let messages = [
        VaultError::UnknownKey(id("k1")?).to_string(),
        VaultError::Malformed("envelope truncated").to_string(),
        VaultError::Integrity.to_string(),
        VaultError::PlaintextTooLarge { max: 10 }.to_string(),
        VaultError::Crypto.to_string(),
    ];
    assert_eq!(messages[0], "key-encryption key \"k1\" is not configured");
    assert_eq!(messages[1], "malformed vault data: envelope truncated");
    assert!(messages.iter().all(|m| !m.contains('\n')));
    Ok(())
}
