//! The DER readers of the engine and of the PKCS#11 library on arbitrary bytes: they must
//! never panic, and what one accepts must hold together (a TLV read is no longer than its
//! input; an SPKI's parts re-encode to a structure the reader accepts again).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_engine::der;

fuzz_target!(|data: &[u8]| {
    // A walk over TLVs, as every reader does.
    let mut rest = data;
    while let Some((_, content, after)) = der::read_tlv(rest) {
        assert!(content.len() + after.len() < rest.len());
        let _ = der::uint_value(content);
        rest = after;
    }
    let _ = der::tlv_len(data);
    if let Some((alg, key)) = der::spki(data) {
        let curve = (!alg.curve.is_empty()).then_some(alg.curve);
        let again = der::build_spki(alg.oid, curve, key);
        let (alg2, key2) = der::spki(&again).expect("a rebuilt SPKI reads again");
        assert_eq!((alg2.oid, key2), (alg.oid, key));
    }
    let _ = der::pkcs8_algorithm(data);
    let _ = der::pkcs8_private_key(data);
    let _ = der::dh_pkcs8(data);
    let _ = der::dh_spki(data);
    let _ = strongroom_pkcs11::der::public_of_spki(data);
    let _ = strongroom_pkcs11::der::integers_of(data);
});
