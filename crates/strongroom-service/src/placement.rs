//! Where an instance's crypto units run. Each node records the zone and region it was
//! configured with (`serve --zone/--region`) for every unit it creates, in the shared
//! keystore, so that any node can keep an instance's operational units in distinct zones,
//! and tell the administrator where the next recovery unit belongs. HPCS keeps two recovery
//! units per instance, one of them in another region; Strongroom places them the same way,
//! one node at a time (a node creates only units it hosts).

use strongroom_keystore::PlacementRecord;
use strongroom_model::{InstanceId, UnitId, UnixMillis};

use crate::action::Action;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::instances::AdminCtx;
use crate::Service;

/// Recovery units an instance keeps, as HPCS does.
pub const RECOVERY_UNITS_WANTED: usize = 2;

/// One crypto unit of an instance and where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitPlacement {
    /// The unit.
    pub unit: UnitId,
    /// A recovery unit (`false`: operational).
    pub recovery: bool,
    /// Its node's zone, if the node has one.
    pub zone: Option<String>,
    /// Its node's region, if the node has one.
    pub region: Option<String>,
    /// When it was created.
    pub created_at: UnixMillis,
}

impl From<&PlacementRecord> for UnitPlacement {
    fn from(r: &PlacementRecord) -> Self {
        UnitPlacement {
            unit: r.unit,
            recovery: r.recovery,
            zone: r.zone.clone(),
            region: r.region.clone(),
            created_at: r.created_at,
        }
    }
}

/// An instance's units across the cluster, and what its placement still lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Every unit of the instance, on every node, oldest first.
    pub units: Vec<UnitPlacement>,
    /// What to do next, in sentences; empty when the placement is as HPCS keeps it.
    pub advice: Vec<String>,
}

/// What an instance's placement lacks: a second zone for its operational units, and two
/// recovery units, one of them in a region other than the first's when the cluster has one.
pub fn advise(instance: InstanceId, units: &[UnitPlacement], regions: &[String]) -> Vec<String> {
    let mut advice = Vec::new();
    let operational: Vec<&UnitPlacement> = units.iter().filter(|u| !u.recovery).collect();
    let mut zones: Vec<&str> = operational
        .iter()
        .filter_map(|u| u.zone.as_deref())
        .collect();
    zones.sort_unstable();
    zones.dedup();
    if operational.len() < 2 || zones.len() < 2 {
        advice.push(format!(
            "its operational units are in {} zone{} ({}): for failover, add one on a node in another zone with `strongroom instance add-unit {instance}` there",
            zones.len().max(1),
            if zones.len() > 1 { "s" } else { "" },
            if zones.is_empty() { "unnamed".to_string() } else { zones.join(", ") }
        ));
    }
    let recovery: Vec<&UnitPlacement> = units.iter().filter(|u| u.recovery).collect();
    let used: Vec<&str> = recovery
        .iter()
        .filter_map(|u| u.region.as_deref())
        .collect();
    let other_region = regions.iter().find(|r| !used.contains(&r.as_str()));
    let add = |where_: String| {
        format!("add a recovery unit on a node {where_} with `strongroom instance add-unit {instance} --kind recovery` there")
    };
    if recovery.len() < RECOVERY_UNITS_WANTED {
        let where_ = match (recovery.is_empty(), other_region) {
            (false, Some(r)) => format!("in region {r}"),
            (true, _) => "of this region".to_string(),
            (false, None) => "in another zone (the cluster has no other region)".to_string(),
        };
        advice.push(format!(
            "it has {} of the {RECOVERY_UNITS_WANTED} recovery units HPCS keeps: {}",
            recovery.len(),
            add(where_)
        ));
    } else if used.len() == recovery.len() && used.iter().all(|r| *r == used[0]) {
        if let Some(r) = other_region {
            advice.push(format!(
                "its recovery units are all in region {}: {}",
                used[0],
                add(format!("in region {r}"))
            ));
        }
    }
    advice
}

impl Service {
    /// Records where this node's new units run.
    pub(crate) async fn place(&self, instance: InstanceId, units: &[(UnitId, bool)]) -> Result<()> {
        for &(unit, recovery) in units {
            self.store
                .put_placement(&PlacementRecord {
                    unit,
                    instance,
                    recovery,
                    zone: self.config.zone.clone(),
                    region: self.config.region.clone(),
                    created_at: self.clock.now(),
                })
                .await?;
        }
        Ok(())
    }

    /// Refuses an operational unit in a zone where the instance already has one: they
    /// would fail together. A node without `--zone` cannot tell, and is not refused.
    pub(crate) async fn check_zone_free(&self, instance: InstanceId) -> Result<()> {
        let Some(zone) = self.config.zone.as_deref() else {
            return Ok(());
        };
        let placements = self.store.list_placements(instance).await?;
        if let Some(p) = placements
            .iter()
            .find(|p| !p.recovery && p.zone.as_deref() == Some(zone))
        {
            return Err(ServiceError::field(
                ErrorKind::InvalidField,
                "zone",
                format!(
                    "the instance's operational unit {} is already in zone {zone}, where it would fail together with this one: add the unit on a node in another zone, or allow_same_zone for a test set-up",
                    p.unit
                ),
            ));
        }
        Ok(())
    }

    /// How many recovery units an instance created here gets when none is asked for:
    /// HPCS keeps two, the second in another region when the cluster has one. Here, one is
    /// made on this node then, and the second on a node of that region (the placement
    /// advice says so); in a cluster of one region, both are made here.
    pub async fn default_recovery_units(&self) -> Result<u8> {
        let here = self.config.region.as_deref();
        let regions = self.store.placement_regions().await?;
        Ok(if regions.iter().any(|r| Some(r.as_str()) != here) {
            1
        } else {
            RECOVERY_UNITS_WANTED as u8
        })
    }

    /// Refuses a recovery unit in this node's region when the instance already has one
    /// here (or `adding` of them would be) and the cluster has another region: HPCS keeps
    /// the second recovery unit in another region. A node without `--region` is not refused.
    pub(crate) async fn check_recovery_region(
        &self,
        instance: InstanceId,
        adding: usize,
    ) -> Result<()> {
        let Some(region) = self.config.region.as_deref() else {
            return Ok(());
        };
        let here = self
            .store
            .list_placements(instance)
            .await?
            .iter()
            .filter(|p| p.recovery && p.region.as_deref() == Some(region))
            .count();
        if here + adding < 2 {
            return Ok(());
        }
        let regions = self.store.placement_regions().await?;
        if let Some(other) = regions.iter().find(|r| r.as_str() != region) {
            return Err(ServiceError::field(
                ErrorKind::InvalidField,
                "recovery_units",
                format!(
                    "the instance would have two recovery units in region {region} while the cluster has region {other}: HPCS keeps the second in another region; add it on a node in {other} (strongroom instance add-unit {instance} --kind recovery there), or allow_same_zone for a test set-up"
                ),
            ));
        }
        Ok(())
    }

    /// An instance's units on every node, with where they run and what the placement lacks.
    pub async fn unit_placement(&self, ctx: &AdminCtx, instance: InstanceId) -> Result<Placement> {
        let r = async {
            self.require_instance(instance).await?;
            let units: Vec<UnitPlacement> = self
                .store
                .list_placements(instance)
                .await?
                .iter()
                .map(UnitPlacement::from)
                .collect();
            let mut regions = self.store.placement_regions().await?;
            if let Some(r) = &self.config.region {
                if !regions.contains(r) {
                    regions.push(r.clone());
                }
            }
            let advice = advise(instance, &units, &regions);
            Ok(Placement { units, advice })
        }
        .await;
        self.admin_audited(ctx, Action::AdminUnitsList, Some(instance), r)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(recovery: bool, zone: &str, region: &str) -> UnitPlacement {
        UnitPlacement {
            unit: UnitId::random(),
            recovery,
            zone: Some(zone.into()),
            region: Some(region.into()),
            created_at: UnixMillis(0),
        }
    }

    #[test]
    fn advice_follows_hpcs_placement() {
        let i = InstanceId::random();
        let regions = vec!["eu-1".to_string(), "us-2".to_string()];
        // One operational unit and no recovery unit: a second zone, a first recovery unit.
        let a = advise(i, &[unit(false, "a", "eu-1")], &regions);
        assert_eq!(a.len(), 2, "{a:?}");
        assert!(
            a[0].contains("another zone") && a[1].contains("0 of the 2"),
            "{a:?}"
        );
        // Two zones and one recovery unit in eu-1: the second goes to us-2.
        let units = [
            unit(false, "a", "eu-1"),
            unit(false, "b", "eu-1"),
            unit(true, "a", "eu-1"),
        ];
        let a = advise(i, &units, &regions);
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(
            a[0].contains("1 of the 2") && a[0].contains("region us-2"),
            "{a:?}"
        );
        // Without another region, another zone.
        let a = advise(i, &units, &regions[..1]);
        assert!(a[0].contains("another zone"), "{a:?}");
        // Two recovery units in one region while another exists: move one.
        let mut two = units.to_vec();
        two.push(unit(true, "b", "eu-1"));
        let a = advise(i, &two, &regions);
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(
            a[0].contains("all in region eu-1") && a[0].contains("us-2"),
            "{a:?}"
        );
        // As HPCS keeps it: nothing to do.
        let mut done = units.to_vec();
        done.push(unit(true, "d", "us-2"));
        assert!(advise(i, &done, &regions).is_empty());
    }
}
