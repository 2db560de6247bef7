-- Import tokens (secure import): one per instance; the RSA private key is a sealed blob.
-- Never edit after release: add a new migration.
CREATE TABLE import_tokens (
    instance_id     TEXT PRIMARY KEY,
    id              TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    max_retrievals  INTEGER NOT NULL,
    remaining       INTEGER NOT NULL,
    public_key      BLOB NOT NULL,   -- SubjectPublicKeyInfo DER
    private_blob    BLOB NOT NULL,   -- PKCS#8 sealed as a key blob (kind 3)
    nonce           BLOB NOT NULL
);
