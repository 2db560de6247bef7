-- Service IDs: identities whose API keys share one set of roles and key rings. Expand
-- only: the new api_keys columns are nullable, so a node of the previous release keeps
-- reading and writing the table.
CREATE TABLE service_ids (
    instance_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    roles BIGINT NOT NULL,
    key_rings TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (id)
);
CREATE INDEX service_ids_instance ON service_ids (instance_id);
ALTER TABLE api_keys ADD COLUMN service_id TEXT;
ALTER TABLE api_keys ADD COLUMN key_rings TEXT;
