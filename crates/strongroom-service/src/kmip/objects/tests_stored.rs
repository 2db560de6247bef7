//! Property test of the stored KMIP object attributes (v1): what the service writes to
//! the keystore's `attributes` column reads back the same, whatever the client's
//! attributes (nested structures, custom names, every TTLV type); a column of another
//! format version or that is not the format is refused, not misread.
#![allow(clippy::unwrap_used)]
use proptest::prelude::*;
use strongroom_model::{InstanceId, UnixMillis};

use super::*;
use crate::kmip::model::{AttrValue, Attribute};

fn value() -> impl Strategy<Value = AttrValue> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(AttrValue::Int),
        any::<i64>().prop_map(AttrValue::Long),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(AttrValue::Big),
        any::<u32>().prop_map(AttrValue::Enum),
        any::<bool>().prop_map(AttrValue::Bool),
        any::<String>().prop_map(AttrValue::Text),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(AttrValue::Bytes),
        any::<i64>().prop_map(AttrValue::DateTime),
        any::<u32>().prop_map(AttrValue::Interval),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        proptest::collection::vec((any::<u32>(), inner), 0..4).prop_map(AttrValue::Struct)
    })
}

fn attributes() -> impl Strategy<Value = StoredAttributes> {
    let attrs = proptest::collection::vec(
        ("(x-|y-)?[A-Za-z ]{1,24}", value()).prop_map(|(n, v)| Attribute::new(n, v)),
        0..6,
    );
    let dates = any::<[Option<i64>; 4]>();
    let ids = any::<[Option<[u8; 16]>; 2]>();
    (
        attrs,
        any::<(u32, Option<u32>, Option<i32>, Option<u32>, Option<u32>)>(),
        dates,
        any::<Option<(u32, Option<String>)>>(),
        any::<i64>(),
        ids,
        any::<(bool, bool)>(),
    )
        .prop_map(
            |(
                attrs,
                (format, algorithm, length, subtype, presented),
                d,
                revocation,
                changed,
                [u, x],
                (born_sensitive, born_unextractable),
            )| {
                StoredAttributes {
                    v: 1,
                    attrs,
                    format,
                    algorithm,
                    length,
                    subtype,
                    presented,
                    activated: d[0],
                    deactivated: d[1],
                    compromised: d[2],
                    destroyed: d[3],
                    revocation,
                    changed,
                    updated_by: u.map(Uuid::from_bytes),
                    destroyed_by: x.map(Uuid::from_bytes),
                    born_sensitive,
                    born_unextractable,
                }
            },
        )
}

fn record(attributes: Vec<u8>) -> KmipObjectRecord {
    KmipObjectRecord {
        instance: InstanceId(Uuid::nil()),
        adapter: Uuid::nil(),
        id: Uuid::nil(),
        object_type: 2,
        state: 2,
        name: None,
        algorithm: None,
        row_version: 1,
        created_at: UnixMillis(0),
        created_by: String::new(),
        updated_at: UnixMillis(0),
        destroyed_at: None,
        attributes,
        material: None,
    }
}

proptest! {
    #[test]
    fn stored_attributes_round_trip_and_other_versions_are_refused(
        st in attributes(),
        other in 2u32..,
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = encode(&st).unwrap();
        let back = stored(&record(bytes.clone())).unwrap();
        prop_assert_eq!(&back.attrs, &st.attrs);
        // Every other field: the same bytes again.
        prop_assert_eq!(encode(&back).unwrap(), bytes.clone());
        let newer = StoredAttributes { v: other, ..st };
        let e = stored(&record(encode(&newer).unwrap())).unwrap_err();
        prop_assert!(e.message.contains("format version"), "{}", e.message);
        let short = bytes[..cut.index(bytes.len())].to_vec();
        prop_assert!(stored(&record(short)).is_err());
    }
}
