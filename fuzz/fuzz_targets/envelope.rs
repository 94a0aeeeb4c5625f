//! Envelope parsing and opening on arbitrary bytes: never a panic; a parsed envelope re-encodes to
//! the same bytes; nothing but a genuine seal opens, and a genuine seal changed anywhere does not.
#![no_main]

use std::sync::{Arc, LazyLock};

use finchgate::vault::{Envelope, Keyring, Purpose, RowContext, Vault};
use libfuzzer_sys::fuzz_target;

static VAULT: LazyLock<Vault> = LazyLock::new(|| {
    // A fixed, public test key: fine for a fuzzer, never for anything else.
    let keyring = Keyring::parse("fuzz:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", None)
        .expect("the fuzz key parses");
    Vault::new(Arc::new(keyring))
});

static CONTEXT: LazyLock<RowContext> =
    LazyLock::new(|| RowContext::new(Purpose::AccessToken, uuid::Uuid::nil(), uuid::Uuid::max()));

static SEALED: LazyLock<Vec<u8>> = LazyLock::new(|| {
    VAULT
        .seal(&CONTEXT, b"a sandbox access token")
        .expect("sealing works")
        .envelope
});

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::parse(data) {
        assert_eq!(envelope.to_bytes(), data, "parse and encode are inverse");
    }
    assert!(
        VAULT.open(&CONTEXT, data).is_err() || data == SEALED.as_slice(),
        "only a genuine seal opens"
    );
    // The genuine seal with the input XORed over it (and cut to the input's length if shorter).
    let mut changed = SEALED.clone();
    for (byte, flip) in changed.iter_mut().zip(data) {
        *byte ^= flip;
    }
    if data.len() < changed.len() && !data.is_empty() {
        changed.truncate(data.len());
    }
    match VAULT.open(&CONTEXT, &changed) {
        Ok(plain) => {
            assert_eq!(changed, *SEALED, "an altered envelope opened");
            assert_eq!(plain.as_slice(), b"a sandbox access token");
        }
        Err(_) => assert_ne!(changed, *SEALED, "the genuine seal failed to open"),
    }
});
