-- PKCS#11 token objects (the library's remote keystores): opaque to the server, which
-- holds a key blob sealed by the instance's crypto units and the object's attributes.
CREATE TABLE token_objects (
    instance_id TEXT NOT NULL,
    space TEXT NOT NULL,
    id TEXT NOT NULL,
    private BOOLEAN NOT NULL,
    data BYTEA NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (instance_id, space, id)
);
