//! The keystores of the PKCS#11 library's token objects (IBM's "remotestore"). Each
//! keystore ("space") is named by a tokenspaceID of the library's configuration and holds
//! objects the service does not read: key blobs the instance's crypto units sealed, and
//! attributes. Roles hold as for keys: reading the public keystore needs Reader, the
//! private one Writer; writing needs Writer; emptying a keystore (`C_InitToken`) Manager.
//! The instance's key quota bounds the number of objects.

use strongroom_keystore::{StoreError, TokenObjectRecord};
use strongroom_model::pkcs11::ckr;
use strongroom_model::Role;

use crate::action::Action;
use crate::auth::Ctx;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::Service;

/// The largest object the keystore takes.
pub const MAX_TOKEN_OBJECT: usize = 512 * 1024;

/// A stored token object, as the library reads it back.
#[derive(Clone)]
pub struct TokenObject {
    /// Its id.
    pub id: String,
    /// The library's encoding.
    pub data: Vec<u8>,
    /// Its version (for replacing it).
    pub version: i64,
}

fn space_ok(space: &str) -> Result<()> {
    uuid::Uuid::parse_str(space).map(drop).map_err(|_| {
        ServiceError::field(
            ErrorKind::InvalidField,
            "space",
            "a keystore is named by a UUID (the tokenspaceID of grep11client.yaml)",
        )
    })
}

fn id_ok(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ServiceError::field(
            ErrorKind::InvalidField,
            "id",
            "an object id is 1 to 64 letters, digits, '-' or '_'",
        ))
    }
}

fn not_found() -> ServiceError {
    ServiceError::new(
        ErrorKind::Pkcs11(ckr::OBJECT_HANDLE_INVALID),
        "the token object does not exist in this keystore",
    )
}

fn store_error(e: StoreError) -> ServiceError {
    match e {
        StoreError::NotFound => not_found(),
        StoreError::Conflict => ServiceError::new(
            ErrorKind::Conflict,
            "the token object was changed by another session; read it again",
        ),
        StoreError::AlreadyExists(_) => ServiceError::new(
            ErrorKind::AlreadyExists,
            "a token object with this id already exists in this keystore",
        ),
        StoreError::QuotaExceeded(max) => ServiceError::new(
            ErrorKind::LimitReached,
            format!("the instance holds {max} token objects, the most this server allows (--max-keys-per-instance)"),
        ),
        other => other.into(),
    }
}

impl Service {
    /// The objects of a keystore.
    pub async fn token_objects(
        &self,
        ctx: &Ctx,
        space: &str,
        private: bool,
    ) -> Result<Vec<TokenObject>> {
        let role = if private { Role::Writer } else { Role::Reader };
        self.audited(ctx, Action::Ep11KeystoreList, role, Some(space), async {
            space_ok(space)?;
            let rows = self
                .store
                .list_token_objects(ctx.instance, space)
                .await
                .map_err(store_error)?;
            // A keystore is private or public for good: listing it as the other kind
            // shows nothing.
            Ok(rows
                .into_iter()
                .filter(|r| r.private == private)
                .map(|r| TokenObject {
                    id: r.id,
                    data: r.data,
                    version: r.version,
                })
                .collect())
        })
        .await
    }

    /// Creates (`expected` 0) or replaces an object; returns its new version.
    pub async fn put_token_object(
        &self,
        ctx: &Ctx,
        space: &str,
        private: bool,
        id: &str,
        data: Vec<u8>,
        expected: i64,
    ) -> Result<i64> {
        self.audited(
            ctx,
            Action::Ep11KeystorePut,
            Role::Writer,
            Some(id),
            async {
                space_ok(space)?;
                id_ok(id)?;
                if data.is_empty() || data.len() > MAX_TOKEN_OBJECT {
                    return Err(ServiceError::field(
                        ErrorKind::InvalidField,
                        "data",
                        format!("a token object is 1 to {MAX_TOKEN_OBJECT} bytes"),
                    ));
                }
                if expected < 0 {
                    return Err(ServiceError::field(
                        ErrorKind::InvalidField,
                        "expected_version",
                        "must not be negative",
                    ));
                }
                let now = self.clock.now();
                let rec = TokenObjectRecord {
                    instance: ctx.instance,
                    space: space.to_string(),
                    id: id.to_string(),
                    private,
                    data,
                    version: expected,
                    created_at: now,
                    updated_at: now,
                };
                let max = self.config.max_keys_per_instance.unwrap_or(u64::MAX);
                self.store
                    .put_token_object(&rec, expected, max)
                    .await
                    .map_err(store_error)
            },
        )
        .await
    }

    /// Deletes an object.
    pub async fn delete_token_object(
        &self,
        ctx: &Ctx,
        space: &str,
        private: bool,
        id: &str,
    ) -> Result<()> {
        self.audited(
            ctx,
            Action::Ep11KeystoreDelete,
            Role::Writer,
            Some(id),
            async {
                space_ok(space)?;
                id_ok(id)?;
                let exists = self
                    .store
                    .list_token_objects(ctx.instance, space)
                    .await
                    .map_err(store_error)?
                    .iter()
                    .any(|r| r.id == id && r.private == private);
                if !exists {
                    return Err(not_found());
                }
                self.store
                    .delete_token_object(ctx.instance, space, id)
                    .await
                    .map_err(store_error)
            },
        )
        .await
    }

    /// Empties a keystore (the security officer's `C_InitToken`).
    pub async fn clear_token_space(&self, ctx: &Ctx, space: &str) -> Result<u64> {
        self.audited(
            ctx,
            Action::Ep11KeystoreClear,
            Role::Manager,
            Some(space),
            async {
                space_ok(space)?;
                self.store
                    .clear_token_space(ctx.instance, space)
                    .await
                    .map_err(store_error)
            },
        )
        .await
    }
}
