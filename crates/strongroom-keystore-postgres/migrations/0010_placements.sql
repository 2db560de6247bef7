-- Where each crypto unit runs (its node's zone and region), so that every node can place
-- an instance's units apart. Expand only.
CREATE TABLE placements (
    unit_id TEXT NOT NULL PRIMARY KEY,
    instance_id TEXT NOT NULL,
    recovery BOOLEAN NOT NULL,
    zone TEXT,
    region TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX placements_instance ON placements (instance_id);
