//! What a KMIP key may be used for: its Cryptographic Usage Mask, checked by every
//! cryptographic operation, and its Usage Limits, which the server counts down and which
//! no use, concurrent ones included, can pass.

use super::*;

fn mask(bits: u32) -> Attribute {
    Attribute::new(
        names::CRYPTOGRAPHIC_USAGE_MASK,
        AttrValue::Int(i32::try_from(bits).unwrap()),
    )
}

/// Usage Limits as a client sends them, with a Count the server must ignore.
fn limits(total: i64, unit: UsageUnit) -> Attribute {
    let unit = match unit {
        UsageUnit::Byte => 1,
        UsageUnit::Object => 2,
    };
    Attribute::new(
        names::USAGE_LIMITS,
        AttrValue::Struct(vec![
            (field::USAGE_LIMITS_TOTAL, AttrValue::Long(total)),
            (field::USAGE_LIMITS_COUNT, AttrValue::Long(999_999)),
            (field::USAGE_LIMITS_UNIT, AttrValue::Enum(unit)),
        ]),
    )
}

/// An active AES-256 key with these attributes.
async fn active_aes(f: &Fixture, s: &KmipSession, attrs: Vec<Attribute>) -> String {
    let id = f
        .svc
        .kmip_create(s, algorithm::AES, 256, attrs)
        .await
        .unwrap()
        .to_string();
    f.svc.kmip_activate(s, &id).await.unwrap();
    id
}

/// The object's Usage Limits, as GetAttributes reports them.
async fn limits_of(f: &Fixture, s: &KmipSession, id: &str) -> UsageLimits {
    let attrs = attributes_of(f, s, id).await;
    let a = attrs
        .iter()
        .find(|a| a.name == names::USAGE_LIMITS)
        .expect("Usage Limits reported");
    UsageLimits::from_value(&a.value).unwrap()
}

const CBC: KmipCipher = KmipCipher::AesCbc { pad: true };

async fn encrypt(f: &Fixture, s: &KmipSession, id: &str, data: &[u8]) -> Result<Vec<u8>> {
    let iv = Some(vec![3u8; 16]);
    f.svc
        .kmip_encrypt(s, id, CBC, iv, b"", data)
        .await
        .map(|(ct, _, _)| ct)
}

#[tokio::test]
async fn the_usage_mask_decides_which_operations_a_key_serves() {
    let f = fixture().await;
    let s = session(&f, f.instance().await, "mask").await;
    let iv = || Some(vec![3u8; 16]);

    // Encrypt only: decrypting and MACs are refused, as Incompatible Cryptographic Usage
    // Mask, and the refusal names the missing bit.
    let enc = active_aes(&f, &s, vec![mask(usage_mask::ENCRYPT)]).await;
    let ct = encrypt(&f, &s, &enc, b"data").await.unwrap();
    let e = f
        .svc
        .kmip_decrypt(&s, &enc, CBC, iv(), b"", &ct, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::KmipUsageMaskForbids);
    assert!(e.message.contains("Decrypt bit"), "{}", e.message);
    assert_eq!(
        kind(f.svc.kmip_mac(&s, &enc, None, b"m").await),
        ErrorKind::KmipUsageMaskForbids
    );

    // Encrypt and Decrypt: both work, the MAC does not.
    let both = active_aes(
        &f,
        &s,
        vec![mask(usage_mask::ENCRYPT | usage_mask::DECRYPT)],
    )
    .await;
    let ct = encrypt(&f, &s, &both, b"data").await.unwrap();
    let pt = f
        .svc
        .kmip_decrypt(&s, &both, CBC, iv(), b"", &ct, None)
        .await
        .unwrap();
    assert_eq!(&pt[..], b"data");
    assert_eq!(
        kind(f.svc.kmip_mac(&s, &both, None, b"m").await),
        ErrorKind::KmipUsageMaskForbids
    );

    // MAC Generate only, and KMIP 2.0's Unrestricted, which allows every use.
    let mac = active_aes(&f, &s, vec![mask(usage_mask::MAC_GENERATE)]).await;
    f.svc.kmip_mac(&s, &mac, None, b"m").await.unwrap();
    assert_eq!(
        kind(encrypt(&f, &s, &mac, b"data").await),
        ErrorKind::KmipUsageMaskForbids
    );
    let any = active_aes(&f, &s, vec![mask(usage_mask::UNRESTRICTED)]).await;
    encrypt(&f, &s, &any, b"data").await.unwrap();
    f.svc.kmip_mac(&s, &any, None, b"m").await.unwrap();

    // (Sign and SignatureVerify check the mask the same way; the test provider makes no
    // key pairs, so the binary's KMIP tests show them.)

    // A mask that is not an Integer is refused at Create and at AddAttribute.
    let text_mask = Attribute::new(
        names::CRYPTOGRAPHIC_USAGE_MASK,
        AttrValue::Text("Encrypt".into()),
    );
    assert_eq!(
        kind(
            f.svc
                .kmip_create(&s, algorithm::AES, 256, vec![text_mask.clone()])
                .await
        ),
        ErrorKind::InvalidField
    );
    let plain = aes(&f, &s).await;
    assert_eq!(
        kind(f.svc.kmip_add_attribute(&s, &plain, text_mask).await),
        ErrorKind::InvalidField
    );
}

#[tokio::test]
async fn usage_limits_count_protection_down_and_stop_at_the_total() {
    let f = fixture().await;
    let s = session(&f, f.instance().await, "limits").await;

    // Uses: the client's Count is ignored, the server starts it at the Total.
    let uses = active_aes(&f, &s, vec![limits(2, UsageUnit::Object)]).await;
    assert_eq!(
        limits_of(&f, &s, &uses).await,
        UsageLimits {
            total: 2,
            count: 2,
            unit: UsageUnit::Object
        }
    );
    let ct = encrypt(&f, &s, &uses, &[1u8; 100]).await.unwrap();
    f.svc.kmip_mac(&s, &uses, None, b"m").await.unwrap();
    assert_eq!(limits_of(&f, &s, &uses).await.count, 0);
    let e = encrypt(&f, &s, &uses, b"x").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::KmipUsageLimitReached);
    assert!(e.message.contains("0 uses left of 2"), "{}", e.message);
    assert_eq!(
        kind(f.svc.kmip_mac(&s, &uses, None, b"m").await),
        ErrorKind::KmipUsageLimitReached
    );
    // Processing protected data is never counted.
    let pt = f
        .svc
        .kmip_decrypt(&s, &uses, CBC, Some(vec![3u8; 16]), b"", &ct, None)
        .await
        .unwrap();
    assert_eq!(pt.len(), 100);
    assert_eq!(limits_of(&f, &s, &uses).await.count, 0);

    // Bytes: a use that needs more than is left is refused and takes nothing.
    let bytes = active_aes(&f, &s, vec![limits(10, UsageUnit::Byte)]).await;
    encrypt(&f, &s, &bytes, &[0u8; 8]).await.unwrap();
    assert_eq!(
        kind(encrypt(&f, &s, &bytes, &[0u8; 4]).await),
        ErrorKind::KmipUsageLimitReached
    );
    assert_eq!(limits_of(&f, &s, &bytes).await.count, 2);
    encrypt(&f, &s, &bytes, &[0u8; 2]).await.unwrap();
    assert_eq!(limits_of(&f, &s, &bytes).await.count, 0);

    // A ReKey's replacement starts with the whole Total again.
    let new = f
        .svc
        .kmip_rekey(&s, &uses, Some(0))
        .await
        .unwrap()
        .to_string();
    assert_eq!(limits_of(&f, &s, &new).await.count, 2);
    encrypt(&f, &s, &new, b"x").await.unwrap();

    // Malformed limits are refused at Create.
    let bad = Attribute::new(
        names::USAGE_LIMITS,
        AttrValue::Struct(vec![(field::USAGE_LIMITS_TOTAL, AttrValue::Long(5))]),
    );
    assert_eq!(
        kind(f.svc.kmip_create(&s, algorithm::AES, 256, vec![bad]).await),
        ErrorKind::InvalidField
    );
}

#[tokio::test]
async fn the_client_sets_the_total_only_until_the_limits_are_used() {
    let f = fixture().await;
    let s = session(&f, f.instance().await, "total").await;
    let id = active_aes(&f, &s, vec![]).await;

    // Added: the Count is the server's.
    f.svc
        .kmip_add_attribute(&s, &id, limits(3, UsageUnit::Object))
        .await
        .unwrap();
    assert_eq!(limits_of(&f, &s, &id).await.count, 3);
    // Single-valued.
    assert_eq!(
        kind(
            f.svc
                .kmip_add_attribute(&s, &id, limits(3, UsageUnit::Object))
                .await
        ),
        ErrorKind::AlreadyExists
    );
    // Unused, the Total may be corrected, and the Count follows it.
    f.svc
        .kmip_modify_attribute(&s, &id, limits(5, UsageUnit::Object), None)
        .await
        .unwrap();
    assert_eq!(limits_of(&f, &s, &id).await.count, 5);
    // Once used, the limits cannot be changed: not to raise the Count back, nor the Total.
    encrypt(&f, &s, &id, b"x").await.unwrap();
    let e = f
        .svc
        .kmip_modify_attribute(&s, &id, limits(50, UsageUnit::Object), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::KmipAttributeReadOnly);
    assert_eq!(
        limits_of(&f, &s, &id).await,
        UsageLimits {
            total: 5,
            count: 4,
            unit: UsageUnit::Object
        }
    );
}

#[tokio::test]
async fn concurrent_uses_never_pass_the_total() {
    let f = node_fixture().await;
    let s = session(&f, f.instance().await, "race").await;
    let (f, s) = (&f, &s);
    let eight = |id: String| async move {
        let enc = || encrypt(f, s, &id, b"x");
        let (a, b, c, d, e, g, h, i) =
            tokio::join!(enc(), enc(), enc(), enc(), enc(), enc(), enc(), enc());
        [a, b, c, d, e, g, h, i]
    };
    // Eight uses at once of a key with five: exactly five are made, and the others are
    // refused for the limit, not told to retry (uses of one object on a node queue rather
    // than lose each other's compare-and-swap).
    let five = active_aes(f, s, vec![limits(5, UsageUnit::Object)]).await;
    let results = eight(five.clone()).await;
    let done = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(done, 5, "{results:?}");
    for r in results.into_iter().filter(Result::is_err) {
        assert_eq!(kind(r), ErrorKind::KmipUsageLimitReached);
    }
    assert_eq!(limits_of(f, s, &five).await.count, 0);
    // With enough left, every one of 32 at once is made.
    let plenty = active_aes(f, s, vec![limits(100, UsageUnit::Object)]).await;
    let p = || eight(plenty.clone());
    let (a, b, c, d) = tokio::join!(p(), p(), p(), p());
    let failed: Vec<_> = [a, b, c, d]
        .into_iter()
        .flatten()
        .filter_map(Result::err)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(limits_of(f, s, &plenty).await.count, 68);
}

#[tokio::test]
async fn get_usage_allocation_draws_on_an_active_objects_limits() {
    let f = fixture().await;
    let s = session(&f, f.instance().await, "alloc").await;
    let id = active_aes(&f, &s, vec![limits(5, UsageUnit::Byte)]).await;
    f.svc.kmip_get_usage_allocation(&s, &id, 3).await.unwrap();
    assert_eq!(limits_of(&f, &s, &id).await.count, 2);
    assert_eq!(
        kind(f.svc.kmip_get_usage_allocation(&s, &id, 3).await),
        ErrorKind::KmipUsageLimitReached
    );
    assert_eq!(limits_of(&f, &s, &id).await.count, 2);
    for bad in [0, -1] {
        assert_eq!(
            kind(f.svc.kmip_get_usage_allocation(&s, &id, bad).await),
            ErrorKind::InvalidField
        );
    }
    // An object without limits, and one not Active, give none.
    let unlimited = active_aes(&f, &s, vec![]).await;
    assert_eq!(
        kind(f.svc.kmip_get_usage_allocation(&s, &unlimited, 1).await),
        ErrorKind::InvalidField
    );
    let pending = f
        .svc
        .kmip_create(&s, algorithm::AES, 256, vec![limits(5, UsageUnit::Byte)])
        .await
        .unwrap()
        .to_string();
    assert_eq!(
        kind(f.svc.kmip_get_usage_allocation(&s, &pending, 1).await),
        ErrorKind::InvalidKeyState
    );

    // Audited under its own action, by the certificate.
    let head = f.store.audit_head().await.unwrap().unwrap().0;
    let recs = f.store.read_audit(head - 10, 20).await.unwrap();
    assert!(recs.iter().any(|r| r.action == "kmip.get_usage_allocation"
        && r.principal == s.certificate.to_string()
        && r.outcome == "success"));
}

fn flag(name: &str, v: bool) -> Attribute {
    Attribute::new(name, AttrValue::Bool(v))
}

async fn flags_of(f: &Fixture, s: &KmipSession, id: &str) -> Vec<(String, bool)> {
    attributes_of(f, s, id)
        .await
        .into_iter()
        .filter_map(|a| match a.value {
            AttrValue::Bool(b) => Some((a.name, b)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_key_held_in_stays_in() {
    let f = fixture().await;
    let s = session(&f, f.instance().await, "held").await;

    // Not Extractable: Get is refused, the key still works in place, and the flag cannot
    // be turned back nor deleted.
    let held = active_aes(&f, &s, vec![flag(names::EXTRACTABLE, false)]).await;
    let e = f.svc.kmip_get(&s, &held).await.err().unwrap();
    assert_eq!(e.kind, ErrorKind::KmipNotExtractable);
    encrypt(&f, &s, &held, b"data").await.unwrap();
    for change in [
        f.svc
            .kmip_modify_attribute(&s, &held, flag(names::EXTRACTABLE, true), None)
            .await
            .map(|_| ()),
        f.svc
            .kmip_delete_attribute(&s, &held, names::EXTRACTABLE, None)
            .await
            .map(|_| ()),
    ] {
        assert_eq!(kind(change), ErrorKind::KmipAttributeReadOnly);
    }
    assert_eq!(
        kind(f.svc.kmip_get(&s, &held).await),
        ErrorKind::KmipNotExtractable
    );
    let flags = flags_of(&f, &s, &held).await;
    for want in [
        (names::EXTRACTABLE, false),
        (names::NEVER_EXTRACTABLE, true),
        (names::ALWAYS_SENSITIVE, false),
    ] {
        assert!(
            flags.contains(&(want.0.to_string(), want.1)),
            "{want:?} in {flags:?}"
        );
    }

    // Sensitive, set after creation: Get is refused from then on, it cannot be undone,
    // and the key was not Always Sensitive.
    let later = active_aes(&f, &s, vec![]).await;
    f.svc.kmip_get(&s, &later).await.unwrap();
    f.svc
        .kmip_add_attribute(&s, &later, flag(names::SENSITIVE, true))
        .await
        .unwrap();
    assert_eq!(
        kind(f.svc.kmip_get(&s, &later).await),
        ErrorKind::KmipSensitive
    );
    assert_eq!(
        kind(
            f.svc
                .kmip_modify_attribute(&s, &later, flag(names::SENSITIVE, false), None)
                .await
        ),
        ErrorKind::KmipAttributeReadOnly
    );
    assert!(flags_of(&f, &s, &later)
        .await
        .contains(&(names::ALWAYS_SENSITIVE.to_string(), false)));

    // Tightening is allowed: Extractable true → false.
    let open = active_aes(&f, &s, vec![flag(names::EXTRACTABLE, true)]).await;
    f.svc.kmip_get(&s, &open).await.unwrap();
    f.svc
        .kmip_modify_attribute(&s, &open, flag(names::EXTRACTABLE, false), None)
        .await
        .unwrap();
    assert_eq!(
        kind(f.svc.kmip_get(&s, &open).await),
        ErrorKind::KmipNotExtractable
    );
    // A ReKey's replacement is held in too.
    let new = f
        .svc
        .kmip_rekey(&s, &held, Some(0))
        .await
        .unwrap()
        .to_string();
    assert_eq!(
        kind(f.svc.kmip_get(&s, &new).await),
        ErrorKind::KmipNotExtractable
    );

    // The server keeps the history flags, and the flags are Booleans.
    for refused in [
        flag(names::NEVER_EXTRACTABLE, true),
        flag(names::ALWAYS_SENSITIVE, true),
    ] {
        assert_eq!(
            kind(
                f.svc
                    .kmip_create(&s, algorithm::AES, 256, vec![refused])
                    .await
            ),
            ErrorKind::KmipAttributeReadOnly
        );
    }
    let text = Attribute::new(names::EXTRACTABLE, AttrValue::Text("no".into()));
    assert_eq!(
        kind(f.svc.kmip_create(&s, algorithm::AES, 256, vec![text]).await),
        ErrorKind::InvalidField
    );
}

#[tokio::test]
async fn two_nodes_drawing_on_one_key_lose_no_use_to_each_other() {
    let f = node_fixture().await;
    let i = f.instance().await;
    let s = session(&f, i, "two-nodes").await;
    let key = active_aes(&f, &s, vec![limits(100, UsageUnit::Object)]).await;
    // Two nodes, each with two clients using the same key at once: every use is made (none
    // is told to retry after losing the compare-and-swap to the other node), and the Count
    // is exact. A second node on the same keystore and crypto units, connected with the
    // same certificate.
    let (other, _audit) = Service::start(
        Arc::clone(&f.store),
        Arc::new(AwsLcProvider),
        f.vault.clone(),
        f.clock.clone(),
        NodeSecrets {
            token_key: [1; 32],
            audit_key: AUDIT_KEY,
            admin_token: "admin-secret".into(),
        },
        test_config(true),
    )
    .await
    .unwrap();
    let cert = f
        .store
        .list_kmip_certificates(i, s.adapter)
        .await
        .unwrap()
        .remove(0);
    let s2 = other
        .kmip_connect(&cert.fingerprint, None, crate::Network::Public, "c".into())
        .await
        .unwrap();
    let on = |svc: Arc<Service>, s: Arc<KmipSession>, id: String| async move {
        let mut refused = Vec::new();
        for _ in 0..24 {
            if let Err(e) = svc
                .kmip_encrypt(&s, &id, CBC, Some(vec![3u8; 16]), b"", b"x")
                .await
            {
                refused.push(e);
            }
        }
        refused
    };
    let (s, s2) = (Arc::new(s), Arc::new(s2));
    let mut tasks = Vec::new();
    for n in 0..4 {
        let (svc, sess) = if n % 2 == 0 {
            (Arc::clone(&f.svc), Arc::clone(&s))
        } else {
            (Arc::clone(&other), Arc::clone(&s2))
        };
        tasks.push(tokio::spawn(on(svc, sess, key.clone())));
    }
    let mut refused = Vec::new();
    for t in tasks {
        refused.extend(t.await.unwrap());
    }
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(limits_of(&f, &s, &key).await.count, 100 - 4 * 24);
}
