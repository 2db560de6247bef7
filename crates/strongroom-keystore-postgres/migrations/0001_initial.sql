-- Strongroom keystore schema for PostgreSQL, version 1 (the same model as the SQLite
-- keystore's migrations 0001-0005). Never edit after release: add a new migration.
CREATE TABLE instances (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE keys (
    instance_id            TEXT NOT NULL,
    id                     TEXT NOT NULL,
    name                   TEXT NOT NULL,
    description            TEXT,
    aliases                TEXT NOT NULL DEFAULT '',
    kind                   BIGINT NOT NULL,
    imported               BOOLEAN NOT NULL,
    bits                   BIGINT NOT NULL,
    state                  BIGINT NOT NULL,
    key_ring               TEXT NOT NULL,
    created_at             BIGINT NOT NULL,
    created_by             TEXT NOT NULL,
    updated_at             BIGINT NOT NULL,
    state_changed_at       BIGINT NOT NULL,
    expiration             BIGINT,
    last_rotated_at        BIGINT,
    deleted_at             BIGINT,
    deleted_by             TEXT,
    current_version        TEXT NOT NULL,
    current_version_at     BIGINT NOT NULL,
    version_count          BIGINT NOT NULL,
    row_version            BIGINT NOT NULL,
    rotation_enabled       BOOLEAN,
    rotation_interval_month BIGINT,
    rotation_policy_at     BIGINT,
    rotation_policy_by     TEXT,
    dual_auth_enabled      BOOLEAN,
    dual_auth_policy_at    BIGINT,
    dual_auth_policy_by    TEXT,
    deletion_authorized_by TEXT,
    deletion_authorized_at BIGINT,
    last_synced_at         BIGINT,
    PRIMARY KEY (instance_id, id)
);
CREATE INDEX keys_by_state ON keys (instance_id, state);
CREATE INDEX keys_by_ring ON keys (instance_id, key_ring);

CREATE TABLE key_versions (
    instance_id TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    id          TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    blob        BYTEA NOT NULL,
    PRIMARY KEY (instance_id, key_id, seq)
);

CREATE TABLE aliases (
    instance_id TEXT NOT NULL,
    alias       TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    PRIMARY KEY (instance_id, alias)
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    roles       BIGINT NOT NULL,
    secret_hash BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX api_keys_by_instance ON api_keys (instance_id);

CREATE TABLE key_rings (
    instance_id TEXT NOT NULL,
    id          TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (instance_id, id)
);

CREATE TABLE import_tokens (
    instance_id     TEXT PRIMARY KEY,
    id              TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    max_retrievals  BIGINT NOT NULL,
    remaining       BIGINT NOT NULL,
    public_key      BYTEA NOT NULL,
    private_blob    BYTEA NOT NULL,
    nonce           BYTEA NOT NULL
);

CREATE TABLE instance_policies (
    instance_id TEXT NOT NULL,
    policy_type TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL,
    attributes  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT NOT NULL,
    PRIMARY KEY (instance_id, policy_type)
);

CREATE TABLE registrations (
    instance_id       TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    resource_crn      TEXT NOT NULL,
    description       TEXT,
    metadata          TEXT,
    prevent_deletion  BOOLEAN NOT NULL,
    key_version_id    TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    created_by        TEXT NOT NULL,
    updated_at        BIGINT NOT NULL,
    updated_by        TEXT NOT NULL,
    PRIMARY KEY (instance_id, key_id, resource_crn)
);

CREATE TABLE audit (
    seq            BIGINT PRIMARY KEY,
    at             BIGINT NOT NULL,
    instance_id    TEXT,
    principal      TEXT NOT NULL,
    action         TEXT NOT NULL,
    key            TEXT,
    outcome        TEXT NOT NULL,
    status         BIGINT NOT NULL,
    correlation_id TEXT NOT NULL,
    prev_hash      BYTEA NOT NULL,
    hash           BYTEA NOT NULL
);

CREATE FUNCTION audit_contiguous() RETURNS trigger AS $$
BEGIN
    IF NEW.seq <> COALESCE((SELECT MAX(seq) FROM audit), 0) + 1 THEN
        RAISE EXCEPTION 'audit records must continue the chain without gaps' USING ERRCODE = 'SR001';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER audit_contiguous BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION audit_contiguous();

CREATE FUNCTION audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'SR002';
END $$ LANGUAGE plpgsql;
CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
