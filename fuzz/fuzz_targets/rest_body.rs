//! The REST adapter's JSON body readers — the strict parser (duplicate and case-folded
//! names), the Key Protect collection envelope, key, policy, instance policy, import and
//! KMIP adapter bodies: arbitrary bytes get an error, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_rest::convert::*;

const KEY_FIELDS: &[&str] = &[
    "type",
    "name",
    "description",
    "extractable",
    "payload",
    "encryptednonce",
    "iv",
    "encryptionalgorithm",
    "rotation",
    "dualauthdelete",
    "transportkeyalgorithm",
    "expirationdate",
    "aliases",
];

fuzz_target!(|data: &[u8]| {
    let _ = parse_kmip_adapter(data, false);
    let _ = parse_kmip_certificate(data);
    let Ok(Some(obj)) = parse_object(data) else {
        return;
    };
    let _ = parse_policy_body(obj.clone(), None);
    let _ = parse_policy_body(obj.clone(), Some("rotation"));
    let _ = parse_instance_policies(obj.clone());
    if let Ok(fields) = Fields::new(obj.clone(), KEY_FIELDS) {
        let _ = parse_secure_import(&fields);
        let _ = parse_transport_key(&fields);
        let _ = parse_policy_overrides(&fields, true);
    }
    if let Ok(resource) = single_resource(obj) {
        if let Ok(fields) = Fields::new(resource, KEY_FIELDS) {
            let _ = parse_secure_import(&fields);
            let _ = parse_policy_overrides(&fields, false);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = month_bounds(Some(text), strongroom_model::UnixMillis(0));
        let _ = parse_states(text);
        let _ = parse_ts("t", text);
        let _ = b64_field("f", text);
    }
});
