//! The statements that write a key: its row, its versions and its aliases, and the
//! `WHERE` clause of a key listing.

use std::sync::OnceLock;

use strongroom_model::{InstanceId, KeyKind};

use super::exec::{Arg, Stmt};
use super::text;
use crate::{KeyFilter, KeyRecord, KeyVersionRecord, SortField, Unique};

/// The columns of `keys`, in the order [`key_args`] binds them.
const KEY_COLUMNS: &str = "instance_id, id, name, description, aliases, kind, imported, bits, state, key_ring, \
    created_at, created_by, updated_at, state_changed_at, expiration, last_rotated_at, deleted_at, deleted_by, \
    current_version, current_version_at, version_count, row_version, rotation_enabled, rotation_interval_month, \
    rotation_policy_at, rotation_policy_by, dual_auth_enabled, dual_auth_policy_at, dual_auth_policy_by, \
    deletion_authorized_by, deletion_authorized_at";

/// How many columns [`KEY_COLUMNS`] names.
const KEY_COLUMN_COUNT: usize = 31;

/// Every column of a key's row, in [`KEY_COLUMNS`] order.
fn key_args(k: &KeyRecord) -> Vec<Arg> {
    let rotation = k.rotation.as_ref();
    let dual = k.dual_auth.as_ref();
    let deletion = k.deletion_auth.as_ref();
    vec![
        text(k.instance),
        text(k.id),
        text(&k.name),
        Arg::OptText(k.description.clone()),
        text(k.aliases.join("\n")),
        Arg::Int(k.kind.code().into()),
        Arg::Bool(k.imported),
        Arg::Int(k.bits.into()),
        Arg::Int(k.state.code().into()),
        text(&k.key_ring),
        Arg::Int(k.created_at.0),
        text(&k.created_by),
        Arg::Int(k.updated_at.0),
        Arg::Int(k.state_changed_at.0),
        Arg::OptInt(k.expiration.map(|t| t.0)),
        Arg::OptInt(k.last_rotated_at.map(|t| t.0)),
        Arg::OptInt(k.deleted_at.map(|t| t.0)),
        Arg::OptText(k.deleted_by.clone()),
        text(k.current_version),
        Arg::Int(k.current_version_at.0),
        Arg::Int(k.version_count.into()),
        Arg::Int(k.row_version),
        Arg::OptBool(rotation.map(|p| p.enabled)),
        Arg::OptInt(rotation.map(|p| p.interval_month.into())),
        Arg::OptInt(rotation.map(|p| p.updated_at.0)),
        Arg::OptText(rotation.map(|p| p.updated_by.clone())),
        Arg::OptBool(dual.map(|p| p.enabled)),
        Arg::OptInt(dual.map(|p| p.updated_at.0)),
        Arg::OptText(dual.map(|p| p.updated_by.clone())),
        Arg::OptText(deletion.map(|d| d.by.clone())),
        Arg::OptInt(deletion.map(|d| d.at.0)),
    ]
}

/// `$1, $2, …, $n`.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts a key with its versions and aliases. With `max_keys`, the key row is written
/// only while the instance holds fewer keys than that, and otherwise changes nothing (the
/// caller's transaction then fails with `NotFound`).
pub(super) fn insert_key(
    k: &KeyRecord,
    versions: &[KeyVersionRecord],
    max_keys: Option<u64>,
) -> Vec<Stmt> {
    let mut args = key_args(k);
    let row = match max_keys {
        None => Stmt::new(
            format!(
                "INSERT INTO keys ({KEY_COLUMNS}) VALUES ({})",
                placeholders(KEY_COLUMN_COUNT)
            ),
            args,
        ),
        Some(max) => {
            args.push(Arg::Int(i64::try_from(max).unwrap_or(i64::MAX)));
            Stmt::new(
                format!(
                    "INSERT INTO keys ({KEY_COLUMNS}) SELECT {} \
                     WHERE (SELECT COUNT(*) FROM keys WHERE instance_id = $1) < ${}",
                    placeholders(KEY_COLUMN_COUNT),
                    KEY_COLUMN_COUNT + 1
                ),
                args,
            )
            .required()
        }
    };
    let mut stmts = vec![row.unique(Unique::Key)];
    stmts.extend(k.aliases.iter().map(|alias| {
        Stmt::new(
            "INSERT INTO aliases (instance_id, alias, key_id) VALUES ($1, $2, $3)",
            vec![text(k.instance), text(alias), text(k.id)],
        )
        .unique(Unique::Alias)
    }));
    stmts.extend(
        versions
            .iter()
            .map(|v| insert_version(k, v).unique(Unique::KeyVersion)),
    );
    stmts
}

/// Inserts one version of `k`.
pub(super) fn insert_version(k: &KeyRecord, v: &KeyVersionRecord) -> Stmt {
    Stmt::new(
        "INSERT INTO key_versions (instance_id, key_id, seq, id, created_at, blob) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            text(k.instance),
            text(k.id),
            Arg::Int(v.seq.into()),
            text(v.id),
            Arg::Int(v.created_at.0),
            Arg::Bytes(v.blob.clone()),
        ],
    )
}

/// The columns of `keys` that never change after the insert (and `row_version`, which
/// an update increments).
const FIXED_COLUMNS: [&str; 8] = [
    "instance_id",
    "id",
    "kind",
    "imported",
    "bits",
    "created_at",
    "created_by",
    "row_version",
];

fn key_column_names() -> impl Iterator<Item = &'static str> {
    KEY_COLUMNS.split(',').map(str::trim)
}

/// Writes a key's mutable columns if its `row_version` is still the one read, and counts
/// the write in `row_version`. Changes no row when another writer came first.
pub(super) fn update_key(k: &KeyRecord) -> Stmt {
    static SQL: OnceLock<String> = OnceLock::new();
    let mut args: Vec<Arg> = key_column_names()
        .zip(key_args(k))
        .filter(|(name, _)| !FIXED_COLUMNS.contains(name))
        .map(|(_, arg)| arg)
        .collect();
    let sql = SQL.get_or_init(|| {
        let sets: Vec<String> = key_column_names()
            .filter(|name| !FIXED_COLUMNS.contains(name))
            .enumerate()
            .map(|(i, name)| format!("{name} = ${}", i + 1))
            .collect();
        let n = sets.len();
        format!(
            "UPDATE keys SET {}, row_version = row_version + 1 \
             WHERE instance_id = ${} AND id = ${} AND row_version = ${}",
            sets.join(", "),
            n + 1,
            n + 2,
            n + 3
        )
    });
    args.extend([text(k.instance), text(k.id), Arg::Int(k.row_version)]);
    Stmt::new(sql.as_str(), args).required()
}

/// `WHERE` clause and parameters of a key listing; `$1` is the instance.
/// `ORDER BY` for a sorted key list: the same order on SQLite and PostgreSQL (unset dates
/// first when ascending, last when descending; ties by id). Columns come from a closed enum.
pub(super) fn key_order(sort: &[(SortField, bool)]) -> String {
    let mut terms = Vec::new();
    for (field, desc) in sort {
        let (column, nullable) = match field {
            SortField::Id => ("id", false),
            SortField::State => ("state", false),
            SortField::Extractable => ("kind", false),
            SortField::Imported => ("imported", false),
            SortField::CreationDate => ("created_at", false),
            SortField::LastUpdateDate => ("updated_at", false),
            SortField::LastRotateDate => ("last_rotated_at", true),
            SortField::DeletionDate => ("deleted_at", true),
            SortField::ExpirationDate => ("expiration", true),
        };
        let dir = if *desc { "DESC" } else { "ASC" };
        if nullable {
            let nulls = if *desc { "ASC" } else { "DESC" };
            terms.push(format!("({column} IS NULL) {nulls}"));
        }
        terms.push(format!("{column} {dir}"));
    }
    terms.push("id ASC".into());
    format!(" ORDER BY {}", terms.join(", "))
}

pub(super) fn key_where(instance: InstanceId, f: &KeyFilter) -> (String, Vec<Arg>) {
    let mut sql = String::from(" WHERE instance_id = $1");
    let mut args = vec![text(instance)];
    if !f.states.is_empty() {
        // States are codes of a closed enum; they are inlined.
        let list: Vec<String> = f.states.iter().map(|s| s.code().to_string()).collect();
        sql.push_str(&format!(" AND state IN ({})", list.join(", ")));
    }
    if let Some(x) = f.extractable {
        let kind = if x { KeyKind::Standard } else { KeyKind::Root };
        sql.push_str(&format!(" AND kind = {}", kind.code()));
    }
    if let Some(ring) = &f.key_ring {
        args.push(text(ring));
        sql.push_str(&format!(" AND key_ring = ${}", args.len()));
    }
    if let Some(rings) = &f.within_rings {
        if rings.is_empty() {
            sql.push_str(" AND 1 = 0");
        } else {
            let mut marks = Vec::new();
            for ring in rings {
                args.push(text(ring));
                marks.push(format!("${}", args.len()));
            }
            sql.push_str(&format!(" AND key_ring IN ({})", marks.join(", ")));
        }
    }
    (sql, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_column_has_one_parameter() {
        assert_eq!(key_column_names().count(), KEY_COLUMN_COUNT);
        for fixed in FIXED_COLUMNS {
            assert!(key_column_names().any(|c| c == fixed), "{fixed}");
        }
    }
}
