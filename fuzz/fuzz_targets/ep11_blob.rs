//! What arrives as a key blob, a State or a Key Protect ciphertext, on arbitrary bytes:
//! the EP11 object parser, the attribute block decoder (whose accepted input must encode
//! back to itself), the master key id reader and the WDEK parser must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_engine::ep11::{object, Attrs};
use strongroom_engine::{blob_mk_id, Wdek};

fuzz_target!(|data: &[u8]| {
    let _ = object::parse(data);
    if let Some(a) = Attrs::decode(data) {
        let again = a.encode();
        assert_eq!(
            Attrs::decode(&again),
            Some(a),
            "an attribute block decodes stably"
        );
    }
    let _ = blob_mk_id(data);
    let _ = Wdek::parse(data);
});
