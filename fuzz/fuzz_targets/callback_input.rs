//! The callback's input on arbitrary bytes, as a query string (redirect flow) and as a JSON body
//! (embedded flow): parsing and the shape checks never panic, and what passes has the promised shape.
#![no_main]

use finchgate::connect::callback::{CallbackInput, check_shape};
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret as _;

fn check(input: CallbackInput) {
    if let Ok(shaped) = check_shape(input) {
        assert!(shaped.code.is_some() || shaped.error.is_some());
        if let Some(state) = &shaped.state {
            let state = state.expose_secret();
            assert_eq!(state.len(), 43);
            assert!(
                state
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
        if let Some(code) = &shaped.code {
            assert!(code.expose_secret().len() <= 256);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = serde_urlencoded::from_bytes::<CallbackInput>(data) {
        check(input);
    }
    if let Ok(input) = serde_json::from_slice::<CallbackInput>(data) {
        check(input);
    }
});
