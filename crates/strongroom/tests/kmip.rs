//! KMIP end to end against a real dev server, over mutual TLS, with messages built by our
//! own TTLV codec: version negotiation, batches with the ID placeholder, the 1.x and 2.x
//! attribute forms, custom attributes, and bad input of every kind (which must get a KMIP
//! error or a closed connection, never a crash, a hang or a change of state).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{text_of, Server};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use strongroom_kmip::ttlv::{decode, encode, Limits, Tag, Ttlv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A dev server with its KMIP listener on a free loopback port.
const KMIP: &[&str] = &["--kmip-addr", "127.0.0.1:0"];

struct Dev {
    addr: String,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn dev(dir: &Path) -> Dev {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dev.json")).unwrap()).unwrap();
    let s = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("dev.json lacks {k}"))
            .to_string()
    };
    Dev {
        addr: s("kmip_addr"),
        ca: s("kmip_ca").into(),
        cert: s("kmip_client_cert").into(),
        key: s("kmip_client_key").into(),
    }
}

fn pem_certs(p: &Path) -> Vec<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(p).unwrap(),
    ))
    .collect::<Result<_, _>>()
    .unwrap()
}

fn pem_key(p: &Path) -> PrivateKeyDer<'static> {
    rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(p).unwrap(),
    ))
    .unwrap()
    .unwrap()
}

async fn tls_to(
    d: &Dev,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in pem_certs(&d.ca) {
        roots.add(c).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let (chain, key) = client.unwrap_or_else(|| (pem_certs(&d.cert), pem_key(&d.key)));
    let config = builder.with_client_auth_cert(chain, key).unwrap();
    let tcp = TcpStream::connect(&d.addr).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

async fn send_raw(tls: &mut TlsStream<TcpStream>, bytes: &[u8]) -> Option<Ttlv> {
    tls.write_all(bytes).await.ok()?;
    tls.flush().await.ok()?;
    let mut header = [0u8; 8];
    tokio::time::timeout(Duration::from_secs(20), tls.read_exact(&mut header))
        .await
        .expect("the server neither answered nor closed")
        .ok()?;
    let len = u32::from_be_bytes(header[4..8].try_into().unwrap()) as usize;
    let mut msg = header.to_vec();
    msg.resize(8 + len, 0);
    tls.read_exact(&mut msg[8..]).await.ok()?;
    Some(decode(&msg, &Limits::default()).expect("the server's answer decodes"))
}

async fn call(tls: &mut TlsStream<TcpStream>, msg: &Ttlv) -> Ttlv {
    let mut bytes = Vec::new();
    encode(msg, &mut bytes);
    send_raw(tls, &bytes).await.expect("an answer")
}

fn version(major: i32, minor: i32) -> Ttlv {
    Ttlv::structure(
        Tag::PROTOCOL_VERSION,
        vec![
            Ttlv::integer(Tag::PROTOCOL_VERSION_MAJOR, major),
            Ttlv::integer(Tag::PROTOCOL_VERSION_MINOR, minor),
        ],
    )
}

fn request(v: (i32, i32), items: Vec<(u32, Vec<Ttlv>)>) -> Ttlv {
    let mut fields = vec![Ttlv::structure(
        Tag::REQUEST_HEADER,
        vec![
            version(v.0, v.1),
            Ttlv::integer(Tag::BATCH_COUNT, items.len() as i32),
        ],
    )];
    for (op, payload) in items {
        fields.push(Ttlv::structure(
            Tag::BATCH_ITEM,
            vec![
                Ttlv::enumeration(Tag::OPERATION, op),
                Ttlv::structure(Tag::REQUEST_PAYLOAD, payload),
            ],
        ));
    }
    Ttlv::structure(Tag::REQUEST_MESSAGE, fields)
}

/// The batch items of a response: (status, reason, payload).
fn items(resp: &Ttlv) -> Vec<(u32, Option<u32>, Ttlv)> {
    assert_eq!(resp.tag, Tag::RESPONSE_MESSAGE);
    resp.children(Tag::BATCH_ITEM)
        .map(|i| {
            (
                i.child(Tag::RESULT_STATUS).and_then(Ttlv::as_enum).unwrap(),
                i.child(Tag::RESULT_REASON).and_then(Ttlv::as_enum),
                i.child(Tag::RESPONSE_PAYLOAD)
                    .cloned()
                    .unwrap_or_else(|| Ttlv::structure(Tag::RESPONSE_PAYLOAD, vec![])),
            )
        })
        .collect()
}

fn ok(resp: &Ttlv) -> Vec<Ttlv> {
    items(resp)
        .into_iter()
        .map(|(status, reason, p)| {
            assert_eq!(status, 0, "failed with reason {reason:?}: {resp:?}");
            p
        })
        .collect()
}

fn aes_template(bits: i32) -> Ttlv {
    Ttlv::structure(
        Tag::TEMPLATE_ATTRIBUTE,
        vec![
            Ttlv::attribute(
                "Cryptographic Algorithm",
                Ttlv::enumeration(Tag::ATTRIBUTE_VALUE, 3),
            ),
            Ttlv::attribute(
                "Cryptographic Length",
                Ttlv::integer(Tag::ATTRIBUTE_VALUE, bits),
            ),
            Ttlv::attribute("x-vm", Ttlv::text(Tag::ATTRIBUTE_VALUE, "vm-42")),
        ],
    )
}

const CREATE: u32 = 0x01;
const LOCATE: u32 = 0x08;
const GET: u32 = 0x0A;
const GET_ATTRIBUTES: u32 = 0x0B;
const ADD_ATTRIBUTE: u32 = 0x0D;
const MODIFY_ATTRIBUTE: u32 = 0x0E;
const SET_ATTRIBUTE: u32 = 0x31;
/// Result Status Operation Failed comes with this Result Reason for a bad field.
const INVALID_FIELD: u32 = 0x07;
const DELETE_ATTRIBUTE: u32 = 0x0F;
const ACTIVATE: u32 = 0x12;
const DESTROY: u32 = 0x14;
const QUERY: u32 = 0x18;
const DISCOVER_VERSIONS: u32 = 0x1E;

fn uid_of(p: &Ttlv) -> String {
    p.child(Tag::UNIQUE_IDENTIFIER)
        .and_then(Ttlv::as_text)
        .unwrap()
        .to_string()
}

async fn object_count(s: &Server) -> u64 {
    let r = s
        .client()
        .call(
            "GET",
            "/api/v2/kmip_adapters/dev/kmip_objects?state=1,2,3,4,5,6",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["metadata"]["totalCount"].as_u64().unwrap()
}

/// A KMIP 2.x Name attribute (a tagged item), wrapped in `wrapper` (New Attribute or
/// Current Attribute).
fn v2_name(wrapper: Tag, name: &str) -> Ttlv {
    Ttlv::structure(
        wrapper,
        vec![Ttlv::structure(
            Tag::NAME,
            vec![
                Ttlv::text(Tag::NAME_VALUE, name),
                Ttlv::enumeration(Tag::NAME_TYPE, 1),
            ],
        )],
    )
}

/// Creates an AES-256 key with a request of protocol version `v`; its unique identifier.
async fn create_aes256(t: &mut TlsStream<TcpStream>, v: (i32, i32)) -> String {
    let r = ok(&call(
        t,
        &request(
            v,
            vec![(
                CREATE,
                vec![Ttlv::enumeration(Tag::OBJECT_TYPE, 2), aes_template(256)],
            )],
        ),
    )
    .await);
    uid_of(&r[0])
}

/// The values of the object's attribute `name`, in order, read with a 1.4 GetAttributes.
async fn attribute_values(t: &mut TlsStream<TcpStream>, uid: &str, name: &str) -> Vec<Ttlv> {
    let r = ok(&call(
        t,
        &request(
            (1, 4),
            vec![(
                GET_ATTRIBUTES,
                vec![
                    Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid),
                    Ttlv::text(Tag::ATTRIBUTE_NAME, name),
                ],
            )],
        ),
    )
    .await);
    r[0].children(Tag::ATTRIBUTE)
        .filter_map(|a| a.child(Tag::ATTRIBUTE_VALUE).cloned())
        .collect()
}

/// The object's names, in order.
async fn names_of(t: &mut TlsStream<TcpStream>, uid: &str) -> Vec<String> {
    attribute_values(t, uid, "Name")
        .await
        .iter()
        .map(|v| {
            v.child(Tag::NAME_VALUE)
                .and_then(Ttlv::as_text)
                .unwrap()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn kmip_2_current_attributes_pick_the_value_to_modify_or_delete_and_set_attribute_adds_or_replaces(
) {
    let dir = tempfile::tempdir().unwrap();
    let _s = Server::start_with(dir.path(), KMIP);
    let d = dev(dir.path());
    let mut t = tls_to(&d, None).await.unwrap();
    let uid = create_aes256(&mut t, (1, 4)).await;
    let id = || Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone());
    ok(&call(
        &mut t,
        &request(
            (2, 0),
            vec![
                (ADD_ATTRIBUTE, vec![id(), v2_name(Tag::NEW_ATTRIBUTE, "a")]),
                (ADD_ATTRIBUTE, vec![id(), v2_name(Tag::NEW_ATTRIBUTE, "b")]),
                (ADD_ATTRIBUTE, vec![id(), v2_name(Tag::NEW_ATTRIBUTE, "c")]),
            ],
        ),
    )
    .await);
    assert_eq!(names_of(&mut t, &uid).await, ["a", "b", "c"]);

    // The Current Attribute names the second value: it alone changes.
    ok(&call(
        &mut t,
        &request(
            (2, 0),
            vec![(
                MODIFY_ATTRIBUTE,
                vec![
                    id(),
                    v2_name(Tag::CURRENT_ATTRIBUTE, "b"),
                    v2_name(Tag::NEW_ATTRIBUTE, "b2"),
                ],
            )],
        ),
    )
    .await);
    assert_eq!(names_of(&mut t, &uid).await, ["a", "b2", "c"]);

    // Deleting by Current Attribute removes that value and keeps the others in order.
    ok(&call(
        &mut t,
        &request(
            (2, 0),
            vec![(
                DELETE_ATTRIBUTE,
                vec![id(), v2_name(Tag::CURRENT_ATTRIBUTE, "c")],
            )],
        ),
    )
    .await);
    assert_eq!(names_of(&mut t, &uid).await, ["a", "b2"]);

    // A Current Attribute the object does not hold is an Invalid Field, and changes nothing.
    for (op, extra) in [
        (MODIFY_ATTRIBUTE, Some(v2_name(Tag::NEW_ATTRIBUTE, "z"))),
        (DELETE_ATTRIBUTE, None),
    ] {
        let mut payload = vec![id(), v2_name(Tag::CURRENT_ATTRIBUTE, "nope")];
        payload.extend(extra);
        let r = call(&mut t, &request((2, 0), vec![(op, payload)])).await;
        let (status, reason, _) = items(&r).remove(0);
        assert_eq!((status, reason), (1, Some(INVALID_FIELD)), "{r:?}");
    }
    assert_eq!(names_of(&mut t, &uid).await, ["a", "b2"]);

    // 2.x SetAttribute adds an attribute the object lacks, and replaces it once it has one.
    let other = create_aes256(&mut t, (1, 4)).await;
    for (name, want) in [("s", ["s"]), ("t", ["t"])] {
        ok(&call(
            &mut t,
            &request(
                (2, 0),
                vec![(
                    SET_ATTRIBUTE,
                    vec![
                        Ttlv::text(Tag::UNIQUE_IDENTIFIER, other.clone()),
                        v2_name(Tag::NEW_ATTRIBUTE, name),
                    ],
                )],
            ),
        )
        .await);
        assert_eq!(names_of(&mut t, &other).await, want);
    }
    assert_eq!(
        names_of(&mut t, &uid).await,
        ["a", "b2"],
        "the other object is untouched"
    );
}

const CREATE_KEY_PAIR: u32 = 0x02;
/// Result Reason Permission Denied (a read-only attribute in a 1.x template).
const PERMISSION_DENIED: u32 = 0x0C;

/// The object's links, as (Link Type, Linked Object Identifier).
async fn links_of(t: &mut TlsStream<TcpStream>, uid: &str) -> Vec<(u32, String)> {
    attribute_values(t, uid, "Link")
        .await
        .iter()
        .map(|v| {
            (
                v.child(Tag::LINK_TYPE).and_then(Ttlv::as_enum).unwrap(),
                v.child(Tag::LINKED_OBJECT_IDENTIFIER)
                    .and_then(Ttlv::as_text)
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

/// A 1.4 CreateKeyPair of ECDSA on P-256, with `public` in the public key's template.
fn create_key_pair(public: Vec<Ttlv>) -> Ttlv {
    let common = Ttlv::structure(
        Tag::COMMON_TEMPLATE_ATTRIBUTE,
        vec![
            Ttlv::attribute(
                "Cryptographic Algorithm",
                Ttlv::enumeration(Tag::ATTRIBUTE_VALUE, 6),
            ),
            Ttlv::attribute(
                "Cryptographic Length",
                Ttlv::integer(Tag::ATTRIBUTE_VALUE, 256),
            ),
        ],
    );
    let public = Ttlv::structure(Tag::PUBLIC_KEY_TEMPLATE_ATTRIBUTE, public);
    request((1, 4), vec![(CREATE_KEY_PAIR, vec![common, public])])
}

/// CreateKeyPair stores both keys, each linked to the other, or neither: a template the
/// server refuses for the public key leaves no private key behind.
#[tokio::test]
async fn a_key_pair_is_stored_linked_and_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), KMIP);
    let d = dev(dir.path());
    let mut t = tls_to(&d, None).await.unwrap();
    let before = object_count(&s).await;

    let read_only = Ttlv::attribute("State", Ttlv::enumeration(Tag::ATTRIBUTE_VALUE, 2));
    let refused = call(&mut t, &create_key_pair(vec![read_only])).await;
    let (status, reason, _) = items(&refused).remove(0);
    assert_eq!(
        (status, reason),
        (1, Some(PERMISSION_DENIED)),
        "{refused:?}"
    );
    assert_eq!(object_count(&s).await, before);

    let r = ok(&call(&mut t, &create_key_pair(vec![])).await);
    let id = |tag: Tag| r[0].child(tag).and_then(Ttlv::as_text).unwrap().to_string();
    let (private, public) = (
        id(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER),
        id(Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER),
    );
    // Link Type Public Key Link (0x102) and Private Key Link (0x103).
    assert_eq!(links_of(&mut t, &private).await, [(0x102, public.clone())]);
    assert_eq!(links_of(&mut t, &public).await, [(0x103, private)]);
    assert_eq!(object_count(&s).await, before + 2);
}

#[tokio::test]
async fn versions_batches_placeholders_attributes_and_both_attribute_forms() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), KMIP);
    let d = dev(dir.path());
    let mut t = tls_to(&d, None).await.unwrap();

    // DiscoverVersions: everything we speak, newest first; or the client's intersection.
    let r = ok(&call(&mut t, &request((1, 0), vec![(DISCOVER_VERSIONS, vec![])])).await);
    let got: Vec<(i32, i32)> = r[0]
        .children(Tag::PROTOCOL_VERSION)
        .map(|v| {
            (
                v.child(Tag::PROTOCOL_VERSION_MAJOR)
                    .unwrap()
                    .as_int()
                    .unwrap(),
                v.child(Tag::PROTOCOL_VERSION_MINOR)
                    .unwrap()
                    .as_int()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(2, 1), (2, 0), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0)]
    );
    let r = ok(&call(
        &mut t,
        &request(
            (1, 1),
            vec![(DISCOVER_VERSIONS, vec![version(1, 3), version(3, 0)])],
        ),
    )
    .await);
    assert_eq!(r[0].children(Tag::PROTOCOL_VERSION).count(), 1);
    // An unknown version is refused in a form the client can read.
    let r = items(&call(&mut t, &request((3, 0), vec![(QUERY, vec![])])).await);
    assert_eq!(r[0].0, 1);
    // Query lists operations.
    let r = ok(&call(
        &mut t,
        &request(
            (1, 4),
            vec![(QUERY, vec![Ttlv::enumeration(Tag::QUERY_FUNCTION, 1)])],
        ),
    )
    .await);
    assert!(r[0]
        .children(Tag::OPERATION)
        .any(|o| o.as_enum() == Some(GET)));
    // Query: object types and server information.
    let r = ok(&call(
        &mut t,
        &request(
            (1, 4),
            vec![(
                QUERY,
                vec![
                    Ttlv::enumeration(Tag::QUERY_FUNCTION, 2),
                    Ttlv::enumeration(Tag::QUERY_FUNCTION, 3),
                ],
            )],
        ),
    )
    .await);
    let types: Vec<u32> = r[0]
        .children(Tag::OBJECT_TYPE)
        .filter_map(Ttlv::as_enum)
        .collect();
    assert!(types.contains(&2) && types.contains(&4), "{types:?}");
    assert_eq!(
        r[0].child(Tag::VENDOR_IDENTIFICATION)
            .and_then(Ttlv::as_text),
        Some("Strongroom")
    );

    // One message: Create, then GetAttributes and Activate on the ID placeholder.
    let r = ok(&call(
        &mut t,
        &request(
            (1, 4),
            vec![
                (
                    CREATE,
                    vec![Ttlv::enumeration(Tag::OBJECT_TYPE, 2), aes_template(256)],
                ),
                (
                    GET_ATTRIBUTES,
                    vec![
                        Ttlv::text(Tag::ATTRIBUTE_NAME, "State"),
                        Ttlv::text(Tag::ATTRIBUTE_NAME, "x-vm"),
                    ],
                ),
                (ACTIVATE, vec![]),
                (
                    GET_ATTRIBUTES,
                    vec![Ttlv::text(Tag::ATTRIBUTE_NAME, "State")],
                ),
            ],
        ),
    )
    .await);
    let uid = uid_of(&r[0]);
    let values: Vec<&Ttlv> = r[1]
        .children(Tag::ATTRIBUTE)
        .map(|a| a.child(Tag::ATTRIBUTE_VALUE).unwrap())
        .collect();
    assert_eq!(values[0].as_enum(), Some(1), "Pre-Active");
    assert_eq!(
        values[1].as_text(),
        Some("vm-42"),
        "the custom attribute is kept"
    );
    assert_eq!(uid_of(&r[2]), uid);
    let state = r[3]
        .child(Tag::ATTRIBUTE)
        .unwrap()
        .child(Tag::ATTRIBUTE_VALUE)
        .unwrap();
    assert_eq!(state.as_enum(), Some(2), "Active");

    // Custom attributes: add a second instance, locate by it, delete it.
    let r = ok(&call(
        &mut t,
        &request(
            (1, 4),
            vec![(
                ADD_ATTRIBUTE,
                vec![
                    Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone()),
                    Ttlv::attribute("x-vm", Ttlv::text(Tag::ATTRIBUTE_VALUE, "vm-43")),
                ],
            )],
        ),
    )
    .await);
    assert_eq!(
        r[0].child(Tag::ATTRIBUTE)
            .unwrap()
            .child(Tag::ATTRIBUTE_INDEX)
            .unwrap()
            .as_int(),
        Some(1)
    );
    let r = ok(&call(
        &mut t,
        &request(
            (1, 4),
            vec![(
                LOCATE,
                vec![Ttlv::attribute(
                    "x-vm",
                    Ttlv::text(Tag::ATTRIBUTE_VALUE, "vm-43"),
                )],
            )],
        ),
    )
    .await);
    assert_eq!(
        r[0].children(Tag::UNIQUE_IDENTIFIER)
            .map(uid_of_item)
            .collect::<Vec<_>>(),
        vec![uid.clone()]
    );
    assert_eq!(
        r[0].child(Tag::LOCATED_ITEMS).and_then(Ttlv::as_int),
        Some(1)
    );
    // Located Items counts every match; Maximum Items and Offset Items page the ids.
    let r = ok(&call(
        &mut t,
        &request(
            (1, 4),
            vec![
                (
                    CREATE,
                    vec![Ttlv::enumeration(Tag::OBJECT_TYPE, 2), aes_template(128)],
                ),
                (
                    CREATE,
                    vec![Ttlv::enumeration(Tag::OBJECT_TYPE, 2), aes_template(128)],
                ),
                (
                    LOCATE,
                    vec![
                        Ttlv::integer(Tag::MAXIMUM_ITEMS, 1),
                        Ttlv::integer(Tag::OFFSET_ITEMS, 1),
                        Ttlv::attribute("x-vm", Ttlv::text(Tag::ATTRIBUTE_VALUE, "vm-42")),
                    ],
                ),
            ],
        ),
    )
    .await);
    let second = uid_of(&r[0]);
    assert_eq!(
        r[2].child(Tag::LOCATED_ITEMS).and_then(Ttlv::as_int),
        Some(3)
    );
    assert_eq!(
        r[2].children(Tag::UNIQUE_IDENTIFIER)
            .map(uid_of_item)
            .collect::<Vec<_>>(),
        vec![second]
    );
    ok(&call(
        &mut t,
        &request(
            (1, 4),
            vec![(
                DELETE_ATTRIBUTE,
                vec![
                    Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone()),
                    Ttlv::text(Tag::ATTRIBUTE_NAME, "x-vm"),
                    Ttlv::integer(Tag::ATTRIBUTE_INDEX, 1),
                ],
            )],
        ),
    )
    .await);
    let r = ok(&call(
        &mut t,
        &request(
            (1, 4),
            vec![(
                LOCATE,
                vec![Ttlv::attribute(
                    "x-vm",
                    Ttlv::text(Tag::ATTRIBUTE_VALUE, "vm-43"),
                )],
            )],
        ),
    )
    .await);
    assert_eq!(r[0].children(Tag::UNIQUE_IDENTIFIER).count(), 0);

    // Get in the transparent format.
    let r = ok(&call(
        &mut t,
        &request(
            (1, 4),
            vec![(
                GET,
                vec![
                    Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone()),
                    Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, 7),
                ],
            )],
        ),
    )
    .await);
    let block = r[0]
        .child(Tag::SYMMETRIC_KEY)
        .unwrap()
        .child(Tag::KEY_BLOCK)
        .unwrap();
    let key = block
        .child(Tag::KEY_VALUE)
        .unwrap()
        .child(Tag::KEY_MATERIAL)
        .unwrap()
        .child(Tag::KEY)
        .unwrap();
    assert_eq!(key.as_bytes().unwrap().len(), 32);

    // KMIP 2.0: Create with an Attributes structure, GetAttributes by reference.
    let attrs = Ttlv::structure(
        Tag::ATTRIBUTES,
        vec![
            Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, 3),
            Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, 128),
            Ttlv::structure(
                Tag::NAME,
                vec![
                    Ttlv::text(Tag::NAME_VALUE, "v2-key"),
                    Ttlv::enumeration(Tag::NAME_TYPE, 1),
                ],
            ),
        ],
    );
    let r = ok(&call(
        &mut t,
        &request(
            (2, 0),
            vec![(CREATE, vec![Ttlv::enumeration(Tag::OBJECT_TYPE, 2), attrs])],
        ),
    )
    .await);
    let uid2 = uid_of(&r[0]);
    let r = ok(&call(
        &mut t,
        &request(
            (2, 0),
            vec![(
                GET_ATTRIBUTES,
                vec![
                    Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid2.clone()),
                    Ttlv::enumeration(Tag::ATTRIBUTE_REFERENCE, Tag::CRYPTOGRAPHIC_LENGTH.0),
                    Ttlv::enumeration(Tag::ATTRIBUTE_REFERENCE, Tag::STATE.0),
                ],
            )],
        ),
    )
    .await);
    let a = r[0].child(Tag::ATTRIBUTES).unwrap();
    assert_eq!(
        a.child(Tag::CRYPTOGRAPHIC_LENGTH).and_then(Ttlv::as_int),
        Some(128)
    );
    assert_eq!(a.child(Tag::STATE).and_then(Ttlv::as_enum), Some(1));
    // 2.x reasons: an Active object cannot be destroyed.
    let r = items(
        &call(
            &mut t,
            &request(
                (2, 0),
                vec![(
                    DESTROY,
                    vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone())],
                )],
            ),
        )
        .await,
    );
    assert_eq!(
        (r[0].0, r[0].1),
        (1, Some(0x43)),
        "Wrong Key Lifecycle State"
    );
    drop(s);
}

fn uid_of_item(t: &Ttlv) -> String {
    t.as_text().unwrap().to_string()
}

fn frame(tag: u32, ty: u8, len: u32, body: &[u8]) -> Vec<u8> {
    let mut v = tag.to_be_bytes()[1..].to_vec();
    v.push(ty);
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[tokio::test]
async fn malformed_frames_get_an_error_or_a_closed_connection_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[
            "--kmip-addr",
            "127.0.0.1:0",
            "--kmip-io-timeout",
            "2",
            "--kmip-idle-timeout",
            "3",
            "--kmip-max-connections",
            "4",
        ],
    );
    let d = dev(dir.path());
    let before = object_count(&s).await;

    let mut create = Vec::new();
    encode(
        &request(
            (1, 4),
            vec![(
                CREATE,
                vec![Ttlv::enumeration(Tag::OBJECT_TYPE, 2), aes_template(128)],
            )],
        ),
        &mut create,
    );
    let mut deep = Ttlv::integer(Tag(0x420020), 1);
    for _ in 0..40 {
        deep = Ttlv::structure(Tag::REQUEST_MESSAGE, vec![deep]);
    }
    let mut deep_bytes = Vec::new();
    encode(&deep, &mut deep_bytes);
    let mut bad_len = create.clone();
    bad_len[7] ^= 0x08; // the outer length no longer matches its content
    let mut wrong_type = create.clone();
    wrong_type[11] = 0x05; // the header is no longer a structure
    let mut unknown_type = create.clone();
    unknown_type[19] = 0x0F;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("wrong length", bad_len),
        ("wrong type", wrong_type),
        ("unknown type", unknown_type),
        ("nesting past the limit", deep_bytes),
        ("over the size limit", frame(0x420078, 1, 64 << 20, &[])),
        (
            "not a structure",
            frame(0x420078, 2, 4, &[0, 0, 0, 1, 0, 0, 0, 0]),
        ),
        ("unknown tag", {
            let mut v = Vec::new();
            encode(&Ttlv::structure(Tag(0x54_0000), vec![]), &mut v);
            v
        }),
        ("no batch items", {
            let mut v = Vec::new();
            encode(
                &Ttlv::structure(
                    Tag::REQUEST_MESSAGE,
                    vec![Ttlv::structure(
                        Tag::REQUEST_HEADER,
                        vec![version(1, 4), Ttlv::integer(Tag::BATCH_COUNT, 0)],
                    )],
                ),
                &mut v,
            );
            v
        }),
    ];
    for (what, bytes) in cases {
        let mut t = tls_to(&d, None).await.unwrap();
        // A KMIP refusal, or a closed connection.
        if let Some(resp) = send_raw(&mut t, &bytes).await {
            let r = items(&resp);
            assert_eq!(r.len(), 1, "{what}");
            assert_eq!(r[0].0, 1, "{what}: Operation Failed");
            assert!(
                matches!(r[0].1, Some(4) | Some(7)),
                "{what}: reason {:?}",
                r[0].1
            );
        }
    }
    // A truncated frame: the sender stalls, and is cut off after the I/O timeout.
    let mut t = tls_to(&d, None).await.unwrap();
    t.write_all(&create[..create.len() / 2]).await.unwrap();
    t.flush().await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(15), t.read(&mut buf))
        .await
        .expect("not cut off");
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "a truncated frame got an answer"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // An idle connection is closed.
    let mut idle = tls_to(&d, None).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(15), idle.read(&mut buf))
        .await
        .expect("idle connection kept open");
    assert!(matches!(n, Ok(0) | Err(_)));

    // The number of connections is bounded: the fifth is closed at once.
    let mut open = Vec::new();
    for _ in 0..4 {
        let mut c = tls_to(&d, None).await.unwrap();
        ok(&call(&mut c, &request((1, 4), vec![(DISCOVER_VERSIONS, vec![])])).await);
        open.push(c);
    }
    let fifth = tls_to(&d, None).await;
    if let Ok(mut c) = fifth {
        assert!(
            send_raw(&mut c, &create).await.is_none(),
            "a fifth connection was served"
        );
    }
    drop(open);

    // Nothing was created by any of it, and the server still serves.
    assert_eq!(object_count(&s).await, before);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut t = tls_to(&d, None).await.unwrap();
    ok(&call(
        &mut t,
        &request(
            (1, 4),
            vec![(
                CREATE,
                vec![Ttlv::enumeration(Tag::OBJECT_TYPE, 2), aes_template(128)],
            )],
        ),
    )
    .await);
    assert_eq!(object_count(&s).await, before + 1);
}

#[tokio::test]
async fn an_unregistered_client_certificate_is_refused_at_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let _s = Server::start_with(dir.path(), KMIP);
    let d = dev(dir.path());
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["stranger".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let chain = vec![cert.der().clone()];
    let pk = PrivateKeyDer::from(rustls::pki_types::PrivatePkcs8KeyDer::from(
        key.serialize_der(),
    ));
    let refused = match tls_to(&d, Some((chain, pk))).await {
        Err(_) => true,
        // TLS 1.3: the client learns of the refusal on its first read.
        Ok(mut t) => send_raw(&mut t, &{
            let mut v = Vec::new();
            encode(&request((1, 4), vec![(DISCOVER_VERSIONS, vec![])]), &mut v);
            v
        })
        .await
        .is_none(),
    };
    assert!(refused, "an unregistered certificate was served");
    // The registered one is served.
    let mut t = tls_to(&d, None).await.unwrap();
    ok(&call(&mut t, &request((1, 4), vec![(DISCOVER_VERSIONS, vec![])])).await);
}

fn cli(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(common::bin())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    (out.status.success(), text_of(&out))
}

#[tokio::test]
async fn the_cli_manages_adapters_certificates_and_objects() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), KMIP);
    let d = dev(dir.path());
    let crk = s.client().create_root("vcenter-root").await;
    let (ok_, out) = cli(
        dir.path(),
        &["kmip", "adapter", "create", "vcenter", "--crk", &crk],
    );
    assert!(ok_, "{out}");
    let (_, out) = cli(dir.path(), &["kmip", "adapter", "list", "--output", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["dev", "vcenter"]);
    // A certificate registered with the CLI opens a KMIP connection to its adapter.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["vc".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let pem = dir.path().join("vc.pem");
    std::fs::write(&pem, cert.pem()).unwrap();
    let (ok_, out) = cli(
        dir.path(),
        &[
            "kmip",
            "cert",
            "add",
            "vcenter",
            "--file",
            pem.to_str().unwrap(),
            "--name",
            "vc-01",
        ],
    );
    assert!(ok_, "{out}");
    let client = || {
        Some((
            vec![cert.der().clone()],
            PrivateKeyDer::from(rustls::pki_types::PrivatePkcs8KeyDer::from(
                key.serialize_der(),
            )),
        ))
    };
    let mut t = tls_to(&d, client()).await.unwrap();
    let uid = create_aes256(&mut t, (1, 1)).await;
    let (_, out) = cli(
        dir.path(),
        &["kmip", "objects", "list", "vcenter", "--output", "json"],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["resources"][0]["id"], uid.as_str());
    let (_, out) = cli(
        dir.path(),
        &["kmip", "objects", "list", "dev", "--output", "json"],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["resources"].as_array().unwrap().len(),
        0,
        "another adapter's object listed"
    );
    // The adapter cannot go while its object lives; the certificate can.
    let (ok_, out) = cli(dir.path(), &["kmip", "adapter", "delete", "vcenter"]);
    assert!(
        !ok_ && out.contains("KMIP_ADAPTER_HAS_OBJECTS_ERR"),
        "{out}"
    );
    let (ok_, out) = cli(dir.path(), &["kmip", "cert", "delete", "vcenter", "vc-01"]);
    assert!(ok_, "{out}");
    let (_, out) = cli(dir.path(), &["kmip", "cert", "list", "vcenter"]);
    assert!(out.contains("(none)"), "{out}");
}

#[tokio::test]
async fn a_client_offering_only_the_hybrid_post_quantum_group_connects() {
    let dir = tempfile::tempdir().unwrap();
    let _s = Server::start_with(dir.path(), KMIP);
    let d = dev(dir.path());
    let mut roots = rustls::RootCertStore::empty();
    for c in pem_certs(&d.ca) {
        roots.add(c).unwrap();
    }
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .kx_groups
        .retain(|g| g.name() == rustls::NamedGroup::X25519MLKEM768);
    assert_eq!(provider.kx_groups.len(), 1);
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(pem_certs(&d.cert), pem_key(&d.key))
        .unwrap();
    let tcp = TcpStream::connect(&d.addr).await.unwrap();
    let mut t = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(
        t.get_ref()
            .1
            .negotiated_key_exchange_group()
            .map(|g| g.name()),
        Some(rustls::NamedGroup::X25519MLKEM768)
    );
    ok(&call(&mut t, &request((1, 4), vec![(DISCOVER_VERSIONS, vec![])])).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stops_serving_an_object_another_node_destroyed() {
    let db = common::fresh_postgres_db("sr_kmip_nodes").await;
    let (da, db_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args = ["--keystore-url", db.as_str(), "--kmip-addr", "127.0.0.1:0"];
    let _a = Server::start_with(da.path(), &args);
    // The second node holds the same node files and the same dev KMIP certificates.
    common::copy_node_files(da.path(), db_dir.path());
    let kmip_b = db_dir.path().join("kmip");
    std::fs::create_dir_all(&kmip_b).unwrap();
    for f in std::fs::read_dir(da.path().join("kmip")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), kmip_b.join(f.file_name())).unwrap();
    }
    let _b = Server::start_with(db_dir.path(), &args);
    let (a, b) = (dev(da.path()), dev(db_dir.path()));
    let mut ta = tls_to(&a, None).await.unwrap();
    let mut tb = tls_to(&b, None).await.unwrap();
    let r = ok(&call(
        &mut ta,
        &request(
            (1, 4),
            vec![
                (
                    CREATE,
                    vec![Ttlv::enumeration(Tag::OBJECT_TYPE, 2), aes_template(256)],
                ),
                (ACTIVATE, vec![]),
            ],
        ),
    )
    .await);
    let uid = uid_of(&r[0]);
    let get = request(
        (1, 4),
        vec![(GET, vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone())])],
    );
    // Node B serves it (and keeps it opened).
    for _ in 0..3 {
        ok(&call(&mut tb, &get).await);
    }
    // Node A revokes and destroys it; node B stops serving it.
    ok(&call(
        &mut ta,
        &request(
            (1, 4),
            vec![
                (
                    0x13,
                    vec![
                        Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone()),
                        Ttlv::structure(
                            Tag::REVOCATION_REASON,
                            vec![Ttlv::enumeration(Tag::REVOCATION_REASON_CODE, 2)],
                        ),
                    ],
                ),
                (
                    DESTROY,
                    vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone())],
                ),
            ],
        ),
    )
    .await);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = items(&call(&mut tb, &get).await);
        if r[0].0 == 1 {
            assert_eq!(r[0].1, Some(1), "Item Not Found");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node B still serves a destroyed object"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// allowedNetwork holds on KMIP: a private-only instance's adapter is refused on a public
/// KMIP listener and served on one declared private (`--kmip-network private`).
#[tokio::test]
async fn kmip_follows_the_allowed_network_policy() {
    for (network, served) in [("public", false), ("private", true)] {
        let dir = tempfile::tempdir().unwrap();
        let mut args = KMIP.to_vec();
        args.extend_from_slice(&["--kmip-network", network]);
        let s = Server::start_with(dir.path(), &args);
        let r = s
            .client()
            .call(
                "PUT",
                "/api/v2/instance/policies?policy=allowedNetwork",
                Some(serde_json::json!({
                    "metadata": {"collectionType": "application/vnd.ibm.kms.policy+json", "collectionTotal": 1},
                    "resources": [{"policy_type": "allowedNetwork",
                                   "policy_data": {"enabled": true, "attributes": {"allowed_network": "private-only"}}}]
                })),
            )
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
        let d = dev(dir.path());
        let answer = match tls_to(&d, None).await {
            Err(_) => None,
            Ok(mut t) => {
                send_raw(&mut t, &{
                    let mut v = Vec::new();
                    encode(&request((1, 4), vec![(DISCOVER_VERSIONS, vec![])]), &mut v);
                    v
                })
                .await
            }
        };
        assert_eq!(answer.is_some(), served, "KMIP on a {network} listener");
    }
}

#[tokio::test]
async fn kmip_handshakes_are_counted_by_key_exchange_group() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), KMIP);
    let d = dev(dir.path());
    let mut t = tls_to(&d, None).await.unwrap();
    let group = format!(
        "{:?}",
        t.get_ref()
            .1
            .negotiated_key_exchange_group()
            .unwrap()
            .name()
    );
    // The client's side of a TLS 1.3 handshake ends before the server's: an answer shows
    // that the server has finished (and counted) it too.
    let answer = send_raw(&mut t, &{
        let mut v = Vec::new();
        encode(&request((1, 4), vec![(DISCOVER_VERSIONS, vec![])]), &mut v);
        v
    })
    .await;
    assert!(answer.is_some(), "the KMIP server answered");
    drop(t);
    let text = s.metrics().await;
    let want = format!("strongroom_tls_handshakes_total{{group=\"{group}\",listener=\"kmip\"}} ");
    let n: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(&want))
        .unwrap_or_else(|| panic!("no {want} in:\n{text}"))
        .trim()
        .parse()
        .unwrap();
    assert!(n >= 1);
}

const MAC: u32 = 0x23;
const GET_USAGE_ALLOCATION: u32 = 0x10;
const USAGE_LIMIT_EXCEEDED: u32 = 0x1A;
const INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK: u32 = 0x29;
const NOT_EXTRACTABLE: u32 = 0x17;

/// Creates and activates an AES-256 key with these extra template attributes (1.4).
async fn active_aes_with(t: &mut TlsStream<TcpStream>, extra: Vec<Ttlv>) -> String {
    let mut template = aes_template(256);
    if let strongroom_kmip::ttlv::Value::Structure(items) = &mut template.value {
        items.extend(extra);
    }
    let r = ok(&call(
        t,
        &request(
            (1, 4),
            vec![
                (
                    CREATE,
                    vec![Ttlv::enumeration(Tag::OBJECT_TYPE, 2), template],
                ),
                (ACTIVATE, vec![]),
            ],
        ),
    )
    .await);
    uid_of(&r[0])
}

/// The (status, reason) of a MAC over `data` with key `uid`, in protocol version `v`.
async fn mac_outcome(
    t: &mut TlsStream<TcpStream>,
    v: (i32, i32),
    uid: &str,
    data: &[u8],
) -> (u32, Option<u32>) {
    let r = call(
        t,
        &request(
            v,
            vec![(
                MAC,
                vec![
                    Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid),
                    Ttlv::bytes(Tag::DATA, data),
                ],
            )],
        ),
    )
    .await;
    let (status, reason, _) = items(&r).remove(0);
    (status, reason)
}

/// The Usage Limits Count GetAttributes reports.
async fn usage_count(t: &mut TlsStream<TcpStream>, uid: &str) -> i64 {
    let v = attribute_values(t, uid, "Usage Limits").await;
    v[0].child(Tag::USAGE_LIMITS_COUNT)
        .and_then(Ttlv::as_long)
        .unwrap()
}

/// The Cryptographic Usage Mask and Usage Limits bound what a key does over the wire, with
/// KMIP 1.x's Permission Denied and 2.x's finer reasons; Get Usage Allocation draws on the
/// limits; Get withholds a key that is not Extractable.
#[tokio::test]
async fn the_usage_mask_and_usage_limits_bound_a_key_on_the_wire() {
    use strongroom_kmip::ttlv::Value;
    let dir = tempfile::tempdir().unwrap();
    let _s = Server::start_with(dir.path(), KMIP);
    let d = dev(dir.path());
    let mut t = tls_to(&d, None).await.unwrap();
    let mask = |bits: i32| {
        Ttlv::attribute(
            "Cryptographic Usage Mask",
            Ttlv::integer(Tag::ATTRIBUTE_VALUE, bits),
        )
    };
    let limits = |total: i64, unit: u32| {
        Ttlv::attribute(
            "Usage Limits",
            Ttlv::structure(
                Tag::ATTRIBUTE_VALUE,
                vec![
                    Ttlv::new(Tag::USAGE_LIMITS_TOTAL, Value::LongInteger(total)),
                    Ttlv::new(Tag::USAGE_LIMITS_COUNT, Value::LongInteger(0)),
                    Ttlv::enumeration(Tag::USAGE_LIMITS_UNIT, unit),
                ],
            ),
        )
    };

    // Encrypt|Decrypt: no MAC, in either major version.
    let enc = active_aes_with(&mut t, vec![mask(0x04 | 0x08)]).await;
    assert_eq!(
        mac_outcome(&mut t, (1, 4), &enc, b"m").await,
        (1, Some(PERMISSION_DENIED))
    );
    assert_eq!(
        mac_outcome(&mut t, (2, 1), &enc, b"m").await,
        (1, Some(INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK))
    );

    // MAC Generate with two uses (the client's Count of 0 is ignored): two MACs, then
    // Usage Limit Exceeded (2.x) or Permission Denied (1.x).
    let two = active_aes_with(&mut t, vec![mask(0x80), limits(2, 2)]).await;
    assert_eq!(usage_count(&mut t, &two).await, 2);
    assert_eq!(mac_outcome(&mut t, (2, 1), &two, b"m").await, (0, None));
    assert_eq!(mac_outcome(&mut t, (1, 4), &two, b"m").await, (0, None));
    assert_eq!(usage_count(&mut t, &two).await, 0);
    assert_eq!(
        mac_outcome(&mut t, (2, 1), &two, b"m").await,
        (1, Some(USAGE_LIMIT_EXCEEDED))
    );
    assert_eq!(
        mac_outcome(&mut t, (1, 4), &two, b"m").await,
        (1, Some(PERMISSION_DENIED))
    );

    // Get Usage Allocation of bytes: 6 of 10, then 5 more is refused.
    let bytes = active_aes_with(&mut t, vec![limits(10, 1)]).await;
    let allocate = |n: i64| {
        request(
            (1, 4),
            vec![(
                GET_USAGE_ALLOCATION,
                vec![
                    Ttlv::text(Tag::UNIQUE_IDENTIFIER, bytes.clone()),
                    Ttlv::new(Tag::USAGE_LIMITS_COUNT, Value::LongInteger(n)),
                ],
            )],
        )
    };
    let r = ok(&call(&mut t, &allocate(6)).await);
    assert_eq!(uid_of(&r[0]), bytes);
    assert_eq!(usage_count(&mut t, &bytes).await, 4);
    let (status, reason, _) = items(&call(&mut t, &allocate(5)).await).remove(0);
    assert_eq!((status, reason), (1, Some(PERMISSION_DENIED)));
    // A MAC of 4 bytes takes the rest.
    assert_eq!(
        mac_outcome(&mut t, (2, 1), &bytes, b"1234").await,
        (0, None)
    );
    assert_eq!(usage_count(&mut t, &bytes).await, 0);

    // Not Extractable: Get answers Not Extractable, the key still computes MACs, and the
    // server reports Never Extractable.
    let held = active_aes_with(
        &mut t,
        vec![
            mask(0x80),
            Ttlv::attribute("Extractable", Ttlv::boolean(Tag::ATTRIBUTE_VALUE, false)),
        ],
    )
    .await;
    let get = call(
        &mut t,
        &request(
            (1, 4),
            vec![(GET, vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, held.clone())])],
        ),
    )
    .await;
    let (status, reason, _) = items(&get).remove(0);
    assert_eq!((status, reason), (1, Some(NOT_EXTRACTABLE)), "{get:?}");
    assert_eq!(mac_outcome(&mut t, (1, 4), &held, b"m").await, (0, None));
    let never = attribute_values(&mut t, &held, "Never Extractable").await;
    assert_eq!(never.len(), 1);
    assert_eq!(never[0].as_bool(), Some(true));

    // Query lists Get Usage Allocation.
    let q = ok(&call(
        &mut t,
        &request(
            (1, 4),
            vec![(QUERY, vec![Ttlv::enumeration(Tag::QUERY_FUNCTION, 1)])],
        ),
    )
    .await);
    assert!(q[0]
        .children(Tag::OPERATION)
        .any(|o| o.as_enum() == Some(GET_USAGE_ALLOCATION)));
}
