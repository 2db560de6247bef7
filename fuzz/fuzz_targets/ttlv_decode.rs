//! The TTLV decoder on arbitrary bytes: it must never panic, hang or allocate beyond its
//! input, and whatever it accepts must encode back to exactly the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_kmip::ttlv::{decode, encode, message_len, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(header) = <[u8; 8]>::try_from(data.get(..8).unwrap_or(&[])) {
        let _ = message_len(&header, &limits);
    }
    if let Ok(tree) = decode(data, &limits) {
        let mut again = Vec::new();
        encode(&tree, &mut again);
        assert_eq!(again, data, "a decoded message re-encodes differently");
    }
});
