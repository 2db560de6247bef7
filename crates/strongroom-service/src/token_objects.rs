//! The keystores of the PKCS#11 library's token objects (IBM's "remotestore"). Each
//! keystore ("space") is named by a tokenspaceID of the library's configuration and holds
//! objects the service does not read: key blobs the instance's crypto units sealed, and
//! attributes. Roles hold as for keys: reading the public keystore needs Reader, the
//! private one Writer; writing needs Writer; emptying a keystore (`C_InitToken`) Manager.
//! The instance's key quota bounds the number of objects.
//!
//! A keystore may be password-protected (IBM's authenticated keystores, `sessionauth` in
//! grep11client.yaml). The library derives a proof from the password and sends it with
//! every call; the service keeps a hash of the proof in the keystore (as the object
//! [`AUTH_ID`], which no client can name) and refuses any call without the proof. The
//! first call that brings a proof to an empty keystore protects it; `C_InitToken` (which
//! empties it) lifts the protection. The library also encrypts the objects of such a
//! keystore under a key the service never sees (docs/formats.md).

use strongroom_keystore::{StoreError, TokenObjectRecord};
use strongroom_model::pkcs11::ckr;
use strongroom_model::Role;

use crate::action::Action;
use crate::auth::Ctx;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::Service;

/// The largest object the keystore takes.
pub const MAX_TOKEN_OBJECT: usize = 512 * 1024;

/// The id under which a password-protected keystore keeps the hash of its proof. `#` is not
/// a character of the ids clients may use, so no call can read, replace or delete it.
pub const AUTH_ID: &str = "#auth";

/// The length of a keystore's proof (the library's HKDF output).
pub const PROOF_LEN: usize = 32;

/// What the verifier of a keystore's proof starts with (its format version).
const VERIFIER_V1: &[u8] = b"strongroom/keystore-auth/v1";

/// A keystore as a call names it.
#[derive(Clone, Copy)]
pub struct TokenSpace<'a> {
    /// The tokenspaceID (a UUID).
    pub name: &'a str,
    /// The private keystore (readable by Writers) or the public one (by Readers).
    pub private: bool,
    /// The proof of the keystore's password, if the caller has one (empty: none).
    pub proof: &'a [u8],
}

impl std::fmt::Debug for TokenSpace<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSpace")
            .field("name", &self.name)
            .field("private", &self.private)
            .field("proof", &(!self.proof.is_empty()))
            .finish()
    }
}

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

fn wrong_password(brought_one: bool) -> ServiceError {
    ServiceError::new(
        ErrorKind::Pkcs11(ckr::PIN_INCORRECT),
        if brought_one {
            "the keystore password (sessionauth in grep11client.yaml) is not this keystore's"
        } else {
            "this keystore is password-protected: give its password in sessionauth in grep11client.yaml"
        },
    )
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
    /// Checks the caller's proof against the keystore's verifier (one read), which is
    /// created when an empty keystore first meets a Writer's proof.
    async fn check_space(&self, ctx: &Ctx, space: TokenSpace<'_>) -> Result<()> {
        space_ok(space.name)?;
        if !space.proof.is_empty() && space.proof.len() != PROOF_LEN {
            return Err(ServiceError::field(
                ErrorKind::InvalidField,
                "auth",
                format!("a keystore password's proof is {PROOF_LEN} bytes"),
            ));
        }
        let verifier = self.find_token_object(ctx, space.name, AUTH_ID).await?;
        let expected =
            (!space.proof.is_empty()).then(|| self.provider.sha256(&[VERIFIER_V1, space.proof]));
        match (verifier, expected) {
            (None, None) => Ok(()),
            (Some(v), Some(e)) if self.provider.ct_eq(&v.data, &e) => Ok(()),
            (Some(_), e) => Err(wrong_password(e.is_some())),
            (None, Some(e)) => self.protect_space(ctx, space, e).await,
        }
    }

    /// A proof met a keystore without a verifier: an empty keystore becomes protected by it
    /// (a Writer's proof only); one that holds objects stored without a password is refused.
    async fn protect_space(
        &self,
        ctx: &Ctx,
        space: TokenSpace<'_>,
        verifier: [u8; 32],
    ) -> Result<()> {
        let stored = self.space_records(ctx, space.name).await?;
        if stored.iter().any(|r| r.id == AUTH_ID) {
            // Another call protected it since we looked: its proof decides.
            return Box::pin(self.check_space(ctx, space)).await;
        }
        if !stored.is_empty() {
            return Err(ServiceError::new(
                ErrorKind::Pkcs11(ckr::TOKEN_NOT_RECOGNIZED),
                "this keystore holds objects stored without a password (by a configuration without sessionauth, or by a release that ignored it), so a password cannot protect it: to use them as they are, remove sessionauth for this user; to protect them, name a new tokenspaceID and move them there with `strongroom pkcs11 seal-keystore` (C_InitToken would delete them)",
            ));
        }
        // Protecting a keystore is a write: a Reader's proof opens an empty keystore
        // without protecting it, so that a Reader cannot lock its Writers out.
        if !ctx.principal.roles.grants(Role::Writer) {
            return Ok(());
        }
        match self
            .write_token_object(ctx, space, AUTH_ID, verifier.to_vec(), 0)
            .await
        {
            Ok(_) => Ok(()),
            // Another call protected it first: its proof decides.
            Err(StoreError::AlreadyExists(_)) => Box::pin(self.check_space(ctx, space)).await,
            Err(e) => Err(store_error(e)),
        }
    }

    /// Object `id` of keystore `space`, if there is one.
    async fn find_token_object(
        &self,
        ctx: &Ctx,
        space: &str,
        id: &str,
    ) -> Result<Option<TokenObjectRecord>> {
        match self.store.get_token_object(ctx.instance, space, id).await {
            Ok(r) => Ok(Some(r)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Every record of keystore `space`, its verifier included.
    async fn space_records(&self, ctx: &Ctx, space: &str) -> Result<Vec<TokenObjectRecord>> {
        self.store
            .list_token_objects(ctx.instance, space)
            .await
            .map_err(store_error)
    }

    /// Writes object `id` of `space` (`expected` 0 creates it), within the instance's quota.
    async fn write_token_object(
        &self,
        ctx: &Ctx,
        space: TokenSpace<'_>,
        id: &str,
        data: Vec<u8>,
        expected: i64,
    ) -> std::result::Result<i64, StoreError> {
        let now = self.clock.now();
        let rec = TokenObjectRecord {
            instance: ctx.instance,
            space: space.name.to_string(),
            id: id.to_string(),
            private: space.private,
            data,
            version: expected,
            created_at: now,
            updated_at: now,
        };
        let max = self.config.max_keys_per_instance.unwrap_or(u64::MAX);
        self.store.put_token_object(&rec, expected, max).await
    }

    /// The objects of a keystore.
    pub async fn token_objects(
        &self,
        ctx: &Ctx,
        space: TokenSpace<'_>,
    ) -> Result<Vec<TokenObject>> {
        let role = if space.private {
            Role::Writer
        } else {
            Role::Reader
        };
        self.audited(
            ctx,
            Action::Ep11KeystoreList,
            role,
            Some(space.name),
            async {
                self.check_space(ctx, space).await?;
                let rows = self.space_records(ctx, space.name).await?;
                // A keystore is private or public for good: listing it as the other kind
                // shows nothing. The verifier is not an object.
                Ok(rows
                    .into_iter()
                    .filter(|r| r.private == space.private && r.id != AUTH_ID)
                    .map(|r| TokenObject {
                        id: r.id,
                        data: r.data,
                        version: r.version,
                    })
                    .collect())
            },
        )
        .await
    }

    /// Creates (`expected` 0) or replaces an object; returns its new version.
    pub async fn put_token_object(
        &self,
        ctx: &Ctx,
        space: TokenSpace<'_>,
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
                self.check_space(ctx, space).await?;
                self.write_token_object(ctx, space, id, data, expected)
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
        space: TokenSpace<'_>,
        id: &str,
    ) -> Result<()> {
        self.audited(
            ctx,
            Action::Ep11KeystoreDelete,
            Role::Writer,
            Some(id),
            async {
                id_ok(id)?;
                self.check_space(ctx, space).await?;
                let exists = self
                    .find_token_object(ctx, space.name, id)
                    .await?
                    .is_some_and(|r| r.private == space.private);
                if !exists {
                    return Err(not_found());
                }
                self.store
                    .delete_token_object(ctx.instance, space.name, id)
                    .await
                    .map_err(store_error)
            },
        )
        .await
    }

    /// Empties a keystore (the security officer's `C_InitToken`), password protection
    /// included: the way back when a keystore's password is lost, at the cost of its
    /// objects. Returns how many objects were deleted.
    pub async fn clear_token_space(&self, ctx: &Ctx, space: &str) -> Result<u64> {
        self.audited(
            ctx,
            Action::Ep11KeystoreClear,
            Role::Manager,
            Some(space),
            async {
                space_ok(space)?;
                let protected = self.find_token_object(ctx, space, AUTH_ID).await?.is_some();
                self.store
                    .clear_token_space(ctx.instance, space)
                    .await
                    .map(|n| n.saturating_sub(u64::from(protected)))
                    .map_err(store_error)
            },
        )
        .await
    }
}
