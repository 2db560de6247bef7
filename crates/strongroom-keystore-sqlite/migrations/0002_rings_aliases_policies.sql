-- Key rings, per-key policies (rotation, dual authorization delete) and pending deletion
-- authorizations. Never edit after release: add a new migration.
CREATE TABLE key_rings (
    instance_id TEXT NOT NULL,
    id          TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (instance_id, id)
) WITHOUT ROWID;

ALTER TABLE keys ADD COLUMN rotation_enabled INTEGER;          -- NULL: no rotation policy
ALTER TABLE keys ADD COLUMN rotation_interval_month INTEGER;
ALTER TABLE keys ADD COLUMN rotation_policy_at INTEGER;
ALTER TABLE keys ADD COLUMN rotation_policy_by TEXT;
ALTER TABLE keys ADD COLUMN dual_auth_enabled INTEGER;         -- NULL: no dual-auth policy
ALTER TABLE keys ADD COLUMN dual_auth_policy_at INTEGER;
ALTER TABLE keys ADD COLUMN dual_auth_policy_by TEXT;
ALTER TABLE keys ADD COLUMN deletion_authorized_by TEXT;       -- setKeyForDeletion
ALTER TABLE keys ADD COLUMN deletion_authorized_at INTEGER;
CREATE INDEX keys_by_ring ON keys (instance_id, key_ring);
