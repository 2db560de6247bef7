-- Strongroom keystore schema, version 1. Never edit after release: add a new migration.
CREATE TABLE instances (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE keys (
    instance_id        TEXT NOT NULL,
    id                 TEXT NOT NULL,
    name               TEXT NOT NULL,
    description        TEXT,
    aliases            TEXT NOT NULL DEFAULT '',   -- newline-separated, also indexed in `aliases`
    kind               INTEGER NOT NULL,           -- 1 root, 2 standard
    imported           INTEGER NOT NULL,
    bits               INTEGER NOT NULL,
    state              INTEGER NOT NULL,           -- 0,1,2,3,5 (SP 800-57)
    key_ring           TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    created_by         TEXT NOT NULL,
    updated_at         INTEGER NOT NULL,
    state_changed_at   INTEGER NOT NULL,
    expiration         INTEGER,
    last_rotated_at    INTEGER,
    deleted_at         INTEGER,
    deleted_by         TEXT,
    current_version    TEXT NOT NULL,
    current_version_at INTEGER NOT NULL,
    version_count      INTEGER NOT NULL,
    row_version        INTEGER NOT NULL,
    PRIMARY KEY (instance_id, id)
) WITHOUT ROWID;
CREATE INDEX keys_by_state ON keys (instance_id, state);

CREATE TABLE key_versions (
    instance_id TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    id          TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    blob        BLOB NOT NULL,                     -- sealed key blob, docs/formats.md
    PRIMARY KEY (instance_id, key_id, seq)
) WITHOUT ROWID;

CREATE TABLE aliases (
    instance_id TEXT NOT NULL,
    alias       TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    PRIMARY KEY (instance_id, alias)
) WITHOUT ROWID;

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    roles       INTEGER NOT NULL,
    secret_hash BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX api_keys_by_instance ON api_keys (instance_id);

-- The audit log lives in its own database file (see migrations-audit/).
