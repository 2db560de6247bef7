-- Leases of background jobs, and change notifications so that every node drops stale cache
-- entries (LISTEN strongroom_changes). Never edit after release: add a new migration.
CREATE TABLE jobs (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);

CREATE FUNCTION strongroom_notify_key() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('strongroom_changes', 'k:' || OLD.instance_id || ':' || OLD.id);
    ELSE
        PERFORM pg_notify('strongroom_changes', 'k:' || NEW.instance_id || ':' || NEW.id);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER keys_changed AFTER INSERT OR UPDATE OR DELETE ON keys FOR EACH ROW EXECUTE FUNCTION strongroom_notify_key();

CREATE FUNCTION strongroom_notify_instance() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('strongroom_changes', 'i:' || OLD.instance_id);
    ELSE
        PERFORM pg_notify('strongroom_changes', 'i:' || NEW.instance_id);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER instance_policies_changed AFTER INSERT OR UPDATE OR DELETE ON instance_policies
    FOR EACH ROW EXECUTE FUNCTION strongroom_notify_instance();
