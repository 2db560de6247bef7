-- Leases of background jobs (rotation policies, expiration). Never edit after release.
CREATE TABLE jobs (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    lease_until INTEGER NOT NULL
);
