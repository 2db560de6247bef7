-- Instance policies (dualAuthDelete, rotation, keyCreateImportAccess, allowedNetwork,
-- allowedIP, metrics). Attributes are JSON text interpreted by the service.
-- Never edit after release: add a new migration.
CREATE TABLE instance_policies (
    instance_id TEXT NOT NULL,
    policy_type TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    attributes  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT NOT NULL,
    PRIMARY KEY (instance_id, policy_type)
) WITHOUT ROWID;
