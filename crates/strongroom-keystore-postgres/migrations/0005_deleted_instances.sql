-- Instances that were deleted: every node that still holds a crypto unit of one of them
-- destroys it (crypto-shredding on every node, not only the one that took the request).
-- A new row notifies every node at once. Never edit after release: add a new migration.
CREATE TABLE deleted_instances (
    id         TEXT PRIMARY KEY,
    deleted_at BIGINT NOT NULL
);

CREATE FUNCTION strongroom_notify_deleted_instance() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('strongroom_changes', 'i:' || NEW.id);
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER instance_deleted AFTER INSERT ON deleted_instances
    FOR EACH ROW EXECUTE FUNCTION strongroom_notify_deleted_instance();
