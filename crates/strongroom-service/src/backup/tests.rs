//! Property tests of key records and reading tests of archive lines.

use super::*;
use proptest::prelude::*;
use strongroom_crypto_awslc::AwsLcProvider;

pub(super) fn uuid() -> impl Strategy<Value = uuid::Uuid> {
    any::<u128>().prop_map(uuid::Uuid::from_u128)
}

pub(super) fn ms() -> impl Strategy<Value = UnixMillis> {
    (0_i64..4_102_444_800_000).prop_map(UnixMillis)
}

pub(super) fn text() -> impl Strategy<Value = String> {
    "[ -~\\u{e9}\\u{4e2d}]{0,24}"
}

pub(super) fn key_record() -> impl Strategy<Value = (KeyRecord, Vec<KeyVersionRecord>)> {
    let ids = (uuid(), uuid(), uuid());
    let words = (
        text(),
        proptest::option::of(text()),
        proptest::collection::vec(text(), 0..5),
        text(),
        text(),
    );
    let codes = (
        prop_oneof![Just(KeyKind::Root), Just(KeyKind::Standard)],
        any::<bool>(),
        any::<u32>(),
        prop_oneof![
            Just(KeyState::PreActivation),
            Just(KeyState::Active),
            Just(KeyState::Suspended),
            Just(KeyState::Deactivated),
            Just(KeyState::Destroyed)
        ],
        any::<u32>(),
        any::<i64>(),
    );
    let times = (
        ms(),
        ms(),
        ms(),
        ms(),
        proptest::option::of(ms()),
        proptest::option::of(ms()),
        proptest::option::of(ms()),
    );
    let policies = (
        proptest::option::of((any::<bool>(), 1_u8..=12, ms(), text())),
        proptest::option::of((any::<bool>(), ms(), text())),
        proptest::option::of((text(), ms())),
        proptest::option::of(text()),
    );
    let versions = proptest::collection::vec(
        (
            uuid(),
            any::<u32>(),
            ms(),
            proptest::collection::vec(any::<u8>(), 0..80),
        ),
        0..4,
    );
    (ids, words, codes, times, policies, versions).prop_map(
        |(
            (inst, id, cur),
            (name, description, aliases, ring, by),
            (kind, imported, bits, state, count, row),
            (c, u, sc, cv, exp, rot, del),
            (rp, dp, da, deleted_by),
            vs,
        )| {
            let rec = KeyRecord {
                instance: InstanceId(inst),
                id: KeyId(id),
                name,
                description,
                aliases,
                kind,
                imported,
                bits,
                state,
                key_ring: ring,
                created_at: c,
                created_by: by,
                updated_at: u,
                state_changed_at: sc,
                expiration: exp,
                last_rotated_at: rot,
                deleted_at: del,
                deleted_by,
                current_version: VersionId(cur),
                current_version_at: cv,
                version_count: count,
                row_version: row,
                rotation: rp.map(|(enabled, interval_month, updated_at, updated_by)| {
                    RotationPolicy {
                        enabled,
                        interval_month,
                        updated_at,
                        updated_by,
                    }
                }),
                dual_auth: dp.map(|(enabled, updated_at, updated_by)| DualAuthPolicy {
                    enabled,
                    updated_at,
                    updated_by,
                }),
                deletion_auth: da.map(|(by, at)| DeletionAuthorization { by, at }),
            };
            let versions = vs
                .into_iter()
                .map(|(v, seq, created_at, blob)| KeyVersionRecord {
                    id: VersionId(v),
                    seq,
                    created_at,
                    blob,
                })
                .collect();
            (rec, versions)
        },
    )
}

proptest! {
    /// A key record, with its policies and versions, reads back from its archive line
    /// exactly as it was written (through the JSON text, as in a file).
    #[test]
    fn key_lines_round_trip((rec, versions) in key_record()) {
        let line = key_line(&rec, &versions).to_string();
        let parsed: Value = serde_json::from_str(&line).unwrap();
        let (back, back_versions) = key_from(&parsed).unwrap();
        prop_assert_eq!(back, rec);
        prop_assert_eq!(back_versions, versions);
    }
}

/// An archive of `records` lines with a correct trailer.
fn archive(records: &[&str]) -> Vec<u8> {
    let mut body = format!(
        "{{\"format\":\"strongroom-backup\",\"version\":{BACKUP_FORMAT_VERSION},\"created_at\":1,\"scope\":\"node\"}}\n"
    );
    for r in records {
        body.push_str(r);
        body.push('\n');
    }
    let digest = AwsLcProvider.sha256(&[body.as_bytes()]);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{body}{{\"type\":\"end\",\"records\":{},\"sha256\":\"{hex}\"}}\n",
        records.len()
    )
    .into_bytes()
}

#[test]
fn verify_reads_every_record_as_a_restore_would() {
    let instance = r#"{"type":"instance","id":"c83650f3-362a-4758-82ef-7a03e85ee03d","name":"i","created_at":1}"#;
    let sum = verify_archive(&archive(&[instance]), &AwsLcProvider, None).unwrap();
    assert_eq!((sum.instances, sum.keys), (1, 0));
    // A checksum that matches does not make an unreadable record restorable.
    for bad in [
        r#"{"type":"key","id":"not-a-key-id"}"#,
        r#"{"type":"kmip_object"}"#,
        r#"{"type":"token_object","instance":7}"#,
        r#"{"type":"a_newer_kind"}"#,
    ] {
        let e = verify_archive(&archive(&[instance, bad]), &AwsLcProvider, None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadBody, "{bad}: {e:?}");
    }
}
