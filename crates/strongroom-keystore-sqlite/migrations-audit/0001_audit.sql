-- Strongroom audit log, version 1: an append-only hash chain (docs/formats.md).
-- It lives in its own SQLite file so that its high append rate never waits on, or
-- blocks, writes of key material. Never edit after release: add a new migration.
CREATE TABLE audit (
    seq            INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,
    instance_id    TEXT,
    principal      TEXT NOT NULL,
    action         TEXT NOT NULL,
    key            TEXT,
    outcome        TEXT NOT NULL,
    status         INTEGER NOT NULL,
    correlation_id TEXT NOT NULL,
    prev_hash      BLOB NOT NULL,
    hash           BLOB NOT NULL
);

-- Records continue the chain without gaps.
CREATE TRIGGER audit_contiguous BEFORE INSERT ON audit
WHEN NEW.seq != (SELECT COALESCE(MAX(seq), 0) FROM audit) + 1
BEGIN
    SELECT RAISE(ABORT, 'audit records must continue the chain without gaps');
END;

-- Append-only: records are never changed or removed through SQL.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
