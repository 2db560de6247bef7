-- API calls served per crypto unit and calendar month (metering; HPCS bills per unit).
CREATE TABLE unit_usage (
    instance_id TEXT NOT NULL,
    month       TEXT NOT NULL,                     -- YYYY-MM, UTC
    unit_id     TEXT NOT NULL,
    calls       INTEGER NOT NULL,
    PRIMARY KEY (instance_id, month, unit_id)
) WITHOUT ROWID;
