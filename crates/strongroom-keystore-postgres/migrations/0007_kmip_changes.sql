-- Other nodes drop their cached copy of a KMIP object when it changes.
CREATE FUNCTION strongroom_notify_kmip_object() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('strongroom_changes', 'o:' || OLD.instance_id || ':' || OLD.id);
    ELSE
        PERFORM pg_notify('strongroom_changes', 'o:' || NEW.instance_id || ':' || NEW.id);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER kmip_objects_changed AFTER INSERT OR UPDATE OR DELETE ON kmip_objects
    FOR EACH ROW EXECUTE FUNCTION strongroom_notify_kmip_object();
