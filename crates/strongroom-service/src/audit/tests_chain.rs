//! Property test of the audit record chain (v1): random records chained as the log writer
//! chains them verify end to end; a record with any one field changed afterwards (its hash
//! kept) is named by `verify_chain` as changed, and no two different records share a
//! canonical encoding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::CryptoProvider;
use strongroom_keystore::{AuditRecord, KeyStore, MemoryStore};
use strongroom_model::{InstanceId, UnixMillis};
use uuid::Uuid;

use super::{canonical, chain_hash, verify_chain};

const KEY: [u8; 32] = [0x5a; 32];

fn fields() -> impl Strategy<Value = AuditRecord> {
    (
        any::<i64>(),
        proptest::option::of(any::<u128>()),
        (
            "[ -~]{0,16}",
            "[a-z.]{0,20}",
            proptest::option::of("[ -~]{0,12}"),
        ),
        ("[a-z_]{0,12}", any::<u16>(), "[ -~]{0,12}"),
    )
        .prop_map(
            |(at, instance, (principal, action, key), (outcome, status, correlation_id))| {
                AuditRecord {
                    seq: 0,
                    at: UnixMillis(at),
                    instance: instance.map(|i| InstanceId(Uuid::from_u128(i))),
                    principal,
                    action,
                    key,
                    outcome,
                    status,
                    correlation_id,
                    prev_hash: [0; 32],
                    hash: [0; 32],
                }
            },
        )
}

/// Chains `records` as the log writer does: seq from 1, each linked to the one before.
fn chained(mut records: Vec<AuditRecord>) -> Vec<AuditRecord> {
    let mut prev = [0u8; 32];
    for (n, r) in records.iter_mut().enumerate() {
        r.seq = i64::try_from(n).expect("few") + 1;
        r.prev_hash = prev;
        r.hash = chain_hash(AwsLcProvider.hmac_sha256_key(&KEY).as_ref(), r);
        prev = r.hash;
    }
    records
}

/// `r` with the field `which` picks changed (and its hash kept).
fn tampered(r: &AuditRecord, which: u8) -> AuditRecord {
    let mut t = r.clone();
    match which % 8 {
        0 => t.at = UnixMillis(r.at.0 ^ 1),
        1 => {
            t.instance = if r.instance.is_some() {
                None
            } else {
                Some(InstanceId(Uuid::nil()))
            }
        }
        2 => t.principal.push('x'),
        3 => t.action.push('x'),
        4 => t.key = Some(format!("{}x", r.key.as_deref().unwrap_or(""))),
        5 => t.outcome.push('x'),
        6 => t.status ^= 1,
        _ => t.correlation_id.push('x'),
    }
    t
}

fn verify(records: &[AuditRecord]) -> super::VerifyReport {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(async {
            let store = MemoryStore::new();
            store.append_audit(records).await.unwrap();
            verify_chain(&store, &AwsLcProvider, &KEY).await.unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn a_chain_verifies_and_any_changed_field_is_named(
        records in proptest::collection::vec(fields(), 2..8),
        at in any::<prop::sample::Index>(),
        which in any::<u8>(),
    ) {
        let chain = chained(records);
        let report = verify(&chain);
        prop_assert_eq!(report.problem, None);
        prop_assert_eq!(report.records, chain.len() as u64);
        let k = at.index(chain.len());
        let mut bad = chain.clone();
        bad[k] = tampered(&chain[k], which);
        prop_assert_ne!(canonical(&bad[k]), canonical(&chain[k]));
        let report = verify(&bad);
        prop_assert_eq!(report.problem, Some((chain[k].seq, "record content was changed".to_string())));
        prop_assert_eq!(report.records, k as u64);
        prop_assert!(!report.wrong_key);
        // Under another key nothing verifies, and that is what the report says.
        let other = tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(async {
            let store = MemoryStore::new();
            store.append_audit(&chain).await.unwrap();
            verify_chain(&store, &AwsLcProvider, &[0xa5; 32]).await.unwrap()
        });
        prop_assert!(other.wrong_key);
    }

    /// The chain hash is HMAC-SHA-256 under the audit key over the previous hash and the
    /// canonical encoding (docs/formats.md), whether the key is prepared once or not, and a
    /// prepared key gives the same answer however many records it signed before.
    #[test]
    fn a_prepared_key_hashes_as_the_format_says(records in proptest::collection::vec(fields(), 1..6)) {
        let prepared = AwsLcProvider.hmac_sha256_key(&KEY);
        for r in chained(records) {
            let once = AwsLcProvider.hmac_sha256(&KEY, &[&r.prev_hash, &canonical(&r)]);
            prop_assert_eq!(r.hash, once);
            prop_assert_eq!(chain_hash(prepared.as_ref(), &r), once);
        }
    }

    /// (Format v1 writes an absent key as the empty string, so an absent key and an empty
    /// one hash alike: both say that no key was named.)
    #[test]
    fn different_records_never_share_a_canonical_encoding(a in fields(), b in fields(), seq in any::<i64>()) {
        let (mut a, mut b) = (a, b);
        a.seq = seq;
        b.seq = seq;
        for r in [&mut a, &mut b] {
            if r.key.as_deref() == Some("") {
                r.key = None;
            }
        }
        if a != b {
            prop_assert_ne!(canonical(&a), canonical(&b));
        }
    }
}
