-- Metering: API calls per instance and period are counted from the audit log.
CREATE INDEX audit_by_instance ON audit (instance_id, at);
