-- Registrations: cloud resources that use a key (and may forbid its deletion), and the time
-- of the last `sync`. Never edit after release: add a new migration.
CREATE TABLE registrations (
    instance_id       TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    resource_crn      TEXT NOT NULL,
    description       TEXT,
    metadata          TEXT,
    prevent_deletion  INTEGER NOT NULL,
    key_version_id    TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    created_by        TEXT NOT NULL,
    updated_at        INTEGER NOT NULL,
    updated_by        TEXT NOT NULL,
    PRIMARY KEY (instance_id, key_id, resource_crn)
) WITHOUT ROWID;

ALTER TABLE keys ADD COLUMN last_synced_at INTEGER;
