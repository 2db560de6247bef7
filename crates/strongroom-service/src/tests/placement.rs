//! Where an instance's recovery units go by default: two, the second in another region
//! when the cluster has one.

use super::*;

#[tokio::test]
async fn recovery_units_default_to_two_and_to_one_here_when_another_region_exists() {
    let f = fixture().await;
    assert_eq!(f.svc.default_recovery_units().await.unwrap(), 2);
    // Another node, in region eu-2, placed a unit of some instance.
    let i = f.instance().await;
    f.store
        .put_placement(&strongroom_keystore::PlacementRecord {
            unit: strongroom_model::UnitId::random(),
            instance: i,
            recovery: false,
            zone: Some("zone-d".into()),
            region: Some("eu-2".into()),
            created_at: strongroom_model::UnixMillis(0),
        })
        .await
        .unwrap();
    assert_eq!(f.svc.default_recovery_units().await.unwrap(), 1);
}
