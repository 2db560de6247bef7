-- KMIP adapters, their client certificates, and KMIP managed objects.
CREATE TABLE kmip_adapters (
    instance_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    profile TEXT NOT NULL,
    crk_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (instance_id, id),
    UNIQUE (instance_id, name)
);

CREATE TABLE kmip_certificates (
    instance_id TEXT NOT NULL,
    adapter_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    pem TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (instance_id, id),
    UNIQUE (instance_id, adapter_id, name)
);

CREATE TABLE kmip_objects (
    instance_id TEXT NOT NULL,
    adapter_id TEXT NOT NULL,
    id TEXT NOT NULL,
    object_type INTEGER NOT NULL,
    state INTEGER NOT NULL,
    name TEXT,
    algorithm INTEGER,
    row_version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    destroyed_at INTEGER,
    attributes BLOB NOT NULL,
    material BLOB,
    PRIMARY KEY (instance_id, id)
);
CREATE INDEX kmip_objects_by_adapter ON kmip_objects (instance_id, adapter_id, created_at);
CREATE INDEX kmip_objects_by_name ON kmip_objects (instance_id, name);
