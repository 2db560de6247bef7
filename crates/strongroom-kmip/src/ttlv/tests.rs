use super::*;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '|')
        .collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
        .collect()
}

fn roundtrip_item(item: &Ttlv) -> Vec<u8> {
    let mut out = Vec::new();
    encode(item, &mut out);
    assert_eq!(out.len(), encoded_len(item));
    out
}

/// The encoding examples of the KMIP specification (1.x §9.1.2), each one wrapped in a
/// structure so that it is a message.
#[test]
fn specification_examples() {
    let cases: Vec<(Ttlv, &str)> = vec![
        (Ttlv::integer(Tag(0x420020), 8), "420020|02|00000004|0000000800000000"),
        (
            Ttlv::new(Tag(0x420020), Value::LongInteger(123_456_789_000_000_000)),
            "420020|03|00000008|01B69B4BA5749200",
        ),
        (
            Ttlv::new(
                Tag(0x420020),
                Value::BigInteger(hex("0000000003FD35EB6BC2DF4618080000")),
            ),
            "420020|04|00000010|0000000003FD35EB6BC2DF4618080000",
        ),
        (Ttlv::enumeration(Tag(0x420020), 255), "420020|05|00000004|000000FF00000000"),
        (Ttlv::boolean(Tag(0x420020), true), "420020|06|00000008|0000000000000001"),
        (
            Ttlv::text(Tag(0x420020), "Hello World"),
            "420020|07|0000000B|48656C6C6F20576F726C640000000000",
        ),
        (Ttlv::bytes(Tag(0x420020), vec![1, 2, 3]), "420020|08|00000003|0102030000000000"),
        (
            Ttlv::date_time(Tag(0x420020), 0x47DA_67F8),
            "420020|09|00000008|0000000047DA67F8",
        ),
        (
            Ttlv::new(Tag(0x420020), Value::Interval(864_000)),
            "420020|0A|00000004|000D2F0000000000",
        ),
        (
            Ttlv::structure(
                Tag(0x420020),
                vec![
                    Ttlv::enumeration(Tag(0x420004), 254),
                    Ttlv::integer(Tag(0x420005), 255),
                ],
            ),
            "420020|01|00000020|420004|05|00000004|000000FE00000000|420005|02|00000004|000000FF00000000",
        ),
    ];
    for (item, wire) in cases {
        assert_eq!(roundtrip_item(&item), hex(wire), "{item:?}");
        let msg = Ttlv::structure(Tag::REQUEST_MESSAGE, vec![item.clone()]);
        let bytes = roundtrip_item(&msg);
        assert_eq!(decode(&bytes, &Limits::default()), Ok(msg));
    }
}

fn kind_of(bytes: &[u8]) -> DecodeErrorKind {
    match decode(bytes, &Limits::default()) {
        Err(e) => e.kind,
        Ok(v) => panic!("decoded {v:?}"),
    }
}

#[test]
fn malformed_input_is_refused_with_its_reason() {
    let good = hex("420078|01|00000010|420020|02|00000004|0000000800000000");
    assert!(decode(&good, &Limits::default()).is_ok());
    // Truncated anywhere.
    for n in 0..good.len() {
        assert!(
            decode(&good[..n], &Limits::default()).is_err(),
            "prefix {n}"
        );
    }
    assert_eq!(
        kind_of(&hex("420078|01|00000010|420020|02|00000004|00000008000000")),
        DecodeErrorKind::Truncated
    );
    // Integer with length 8.
    assert_eq!(
        kind_of(&hex(
            "420078|01|00000010|420020|02|00000008|0000000800000000"
        )),
        DecodeErrorKind::BadLength
    );
    // Padding not zero.
    assert_eq!(
        kind_of(&hex(
            "420078|01|00000010|420020|02|00000004|0000000800000001"
        )),
        DecodeErrorKind::BadPadding
    );
    // Unknown type byte.
    assert_eq!(
        kind_of(&hex(
            "420078|01|00000010|420020|0F|00000004|0000000800000000"
        )),
        DecodeErrorKind::UnknownType(0x0F)
    );
    // Boolean 2.
    assert_eq!(
        kind_of(&hex(
            "420078|01|00000010|420020|06|00000008|0000000000000002"
        )),
        DecodeErrorKind::BadBoolean
    );
    // Text that is not UTF-8.
    assert_eq!(
        kind_of(&hex(
            "420078|01|00000010|420020|07|00000002|FFFE000000000000"
        )),
        DecodeErrorKind::BadUtf8
    );
    // A child that claims more than its parent holds.
    assert_eq!(
        kind_of(&hex(
            "420078|01|00000010|420020|08|00000010|0000000800000000"
        )),
        DecodeErrorKind::Truncated
    );
    // Bytes after the message.
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0; 8]);
    assert_eq!(kind_of(&trailing), DecodeErrorKind::Trailing);
    // A message that is not a structure.
    assert_eq!(
        kind_of(&hex("420020|02|00000004|0000000800000000")),
        DecodeErrorKind::NotStructure
    );
    // A structure length that is not a multiple of 8.
    assert_eq!(
        kind_of(&hex("420078|01|00000004|0000000000000000")),
        DecodeErrorKind::BadLength
    );
}

#[test]
fn nesting_and_size_and_count_are_bounded() {
    let limits = Limits::default();
    let mut item = Ttlv::integer(Tag(0x420020), 1);
    for _ in 0..limits.max_depth {
        item = Ttlv::structure(Tag(0x420078), vec![item]);
    }
    let mut ok = Vec::new();
    encode(&item, &mut ok);
    assert!(decode(&ok, &limits).is_ok());
    let deeper = Ttlv::structure(Tag(0x420078), vec![item]);
    let mut bytes = Vec::new();
    encode(&deeper, &mut bytes);
    assert_eq!(kind_of(&bytes), DecodeErrorKind::TooDeep);

    let small = Limits {
        max_message: 64,
        ..Limits::default()
    };
    let big = Ttlv::structure(Tag(0x420078), vec![Ttlv::bytes(Tag(0x420020), vec![0; 64])]);
    let mut bytes = Vec::new();
    encode(&big, &mut bytes);
    assert_eq!(
        decode(&bytes, &small).map_err(|e| e.kind),
        Err(DecodeErrorKind::TooLarge)
    );
    let header: [u8; 8] = bytes[..8].try_into().unwrap_or([0; 8]);
    assert_eq!(
        message_len(&header, &small).map_err(|e| e.kind),
        Err(DecodeErrorKind::TooLarge)
    );
    assert_eq!(message_len(&header, &Limits::default()), Ok(bytes.len()));

    let few = Limits {
        max_items: 3,
        ..Limits::default()
    };
    let many = Ttlv::structure(Tag(0x420078), vec![Ttlv::integer(Tag(0x420020), 1); 3]);
    let mut bytes = Vec::new();
    encode(&many, &mut bytes);
    assert_eq!(
        decode(&bytes, &few).map_err(|e| e.kind),
        Err(DecodeErrorKind::TooManyItems)
    );
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i32>().prop_map(Value::Integer),
        any::<i64>().prop_map(Value::LongInteger),
        (1usize..4, any::<u64>()).prop_map(|(n, x)| {
            Value::BigInteger(
                x.to_be_bytes()
                    .iter()
                    .cycle()
                    .take(n * 8)
                    .copied()
                    .collect(),
            )
        }),
        any::<u32>().prop_map(Value::Enumeration),
        any::<bool>().prop_map(Value::Boolean),
        ".{0,40}".prop_map(Value::TextString),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::ByteString),
        any::<i64>().prop_map(Value::DateTime),
        any::<u32>().prop_map(Value::Interval),
        any::<i64>().prop_map(Value::DateTimeExtended),
    ]
}

fn item() -> impl Strategy<Value = Ttlv> {
    let tag = (0u32..0x0100_0000).prop_map(Tag);
    let leaf_item = (tag.clone(), leaf()).prop_map(|(t, v)| Ttlv::new(t, v));
    leaf_item.prop_recursive(6, 64, 8, move |inner| {
        (tag.clone(), proptest::collection::vec(inner, 0..8))
            .prop_map(|(t, items)| Ttlv::structure(t, items))
    })
}

proptest! {
    #[test]
    fn every_tree_round_trips(items in proptest::collection::vec(item(), 0..6)) {
        let msg = Ttlv::structure(Tag::REQUEST_MESSAGE, items);
        let mut bytes = Vec::new();
        encode(&msg, &mut bytes);
        prop_assert_eq!(bytes.len() % 8, 0);
        prop_assert_eq!(decode(&bytes, &Limits::default()), Ok(msg));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes, &Limits::default());
    }

    #[test]
    fn every_corruption_is_refused_or_decodes_to_some_tree(
        items in proptest::collection::vec(item(), 1..4),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let msg = Ttlv::structure(Tag::REQUEST_MESSAGE, items);
        let mut bytes = Vec::new();
        encode(&msg, &mut bytes);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(tree) = decode(&bytes, &Limits::default()) {
            // Whatever decodes re-encodes to exactly the input: nothing is lost or invented.
            let mut again = Vec::new();
            encode(&tree, &mut again);
            prop_assert_eq!(again, bytes);
        }
    }
}
