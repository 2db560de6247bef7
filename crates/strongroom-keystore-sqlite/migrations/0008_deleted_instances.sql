-- Instances that were deleted: every node that still holds a crypto unit of one of them
-- destroys it (crypto-shredding on every node, not only the one that took the request).
-- Never edit after release: add a new migration.
CREATE TABLE deleted_instances (
    id         TEXT PRIMARY KEY,
    deleted_at INTEGER NOT NULL
) WITHOUT ROWID;
-- Instance policies and registrations of instances deleted before 0008 were left behind.
DELETE FROM instance_policies WHERE instance_id NOT IN (SELECT id FROM instances);
DELETE FROM registrations WHERE instance_id NOT IN (SELECT id FROM instances);
