-- Bearer tokens act with their API key's or service ID's grant of now, and stop when the
-- key or service ID is deleted. Each node keeps what it read of a credential for a few
-- seconds; this announces every change of one ('c:<instance>') so that the other nodes
-- forget it at once. Nodes of earlier releases read the unknown payload as "changes may
-- have been missed" and flush their caches, which is harmless.
CREATE FUNCTION strongroom_notify_credentials() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('strongroom_changes', 'c:' || OLD.instance_id);
    ELSE
        PERFORM pg_notify('strongroom_changes', 'c:' || NEW.instance_id);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION strongroom_notify_credentials();
CREATE TRIGGER service_ids_changed AFTER UPDATE OR DELETE ON service_ids
    FOR EACH ROW EXECUTE FUNCTION strongroom_notify_credentials();
