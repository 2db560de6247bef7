//! The conformance suite every [`KeyStore`] backend must pass. A backend's tests invoke
//! [`conformance_tests!`](crate::conformance_tests) with an async factory of fresh stores;
//! the macro expands to one test per case below.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strongroom_model::{InstanceId, KeyId, KeyKind, KeyState, UnixMillis, VersionId};

use crate::*;

/// Expands to one `#[tokio::test]` per conformance case. `$factory` is an async expression
/// returning a fresh `Arc<dyn KeyStore>` each time it is evaluated.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@case $factory,
            instances_round_trip, instance_isolation, key_create_get_list_count,
            aliases_are_unique_per_instance, optimistic_concurrency_one_winner,
            versions_newest_first, delete_instance_rules, purge_erases_everything,
            api_keys_round_trip, service_ids_round_trip, placements_round_trip, audit_chain_append_and_read, instance_audit_filters, list_filters_and_pages, sorted_lists_order_in_the_keystore,
            aliases_add_and_remove, key_rings_rules, policies_round_trip, import_tokens_round_trip, instance_policies_round_trip, registrations_round_trip, job_leases, restore_keeps_everything, key_quota_is_atomic, blobs_rewrap_by_master_key, unit_usage_adds_up, deleted_keys_are_found_for_purging,
            kmip_adapters_and_certificates, kmip_objects_round_trip, token_objects_round_trip,
            dropped_writes_leave_the_store_usable);
    };
    (@case $factory:expr, $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $factory.await;
                $crate::conformance::$name(store).await;
            }
        )*
    };
}

pub(crate) fn t(ms: i64) -> UnixMillis {
    UnixMillis(1_700_000_000_000 + ms)
}

/// A fresh instance record.
pub fn instance(name: &str) -> InstanceRecord {
    InstanceRecord {
        id: InstanceId::random(),
        name: format!("{name}-{}", InstanceId::random()),
        created_at: t(0),
    }
}

/// A fresh active root key record of `instance` and its first version.
pub fn key(instance: InstanceId, name: &str) -> (KeyRecord, KeyVersionRecord) {
    let id = KeyId::random();
    let v = VersionId::from(id);
    (
        KeyRecord {
            instance,
            id,
            name: name.to_string(),
            description: Some("d".into()),
            aliases: vec![],
            kind: KeyKind::Root,
            imported: false,
            bits: 256,
            state: KeyState::Active,
            key_ring: "default".into(),
            created_at: t(1),
            created_by: "tester".into(),
            updated_at: t(1),
            state_changed_at: t(1),
            expiration: None,
            last_rotated_at: None,
            deleted_at: None,
            deleted_by: None,
            current_version: v,
            current_version_at: t(1),
            version_count: 1,
            row_version: 1,
            rotation: None,
            dual_auth: None,
            deletion_auth: None,
        },
        KeyVersionRecord {
            id: v,
            seq: 0,
            created_at: t(1),
            blob: vec![1, 2, 3, 4],
        },
    )
}

pub(crate) async fn new_instance(s: &dyn KeyStore) -> InstanceId {
    let i = instance("conf");
    s.create_instance(&i).await.expect("create instance");
    i.id
}

mod features;
mod kmip;
mod records;

pub use features::*;
pub use kmip::*;
pub use records::*;
