//! `strongroom pkcs11`: the PKCS#11 library's keystores, from its own configuration
//! (grep11client.yaml). `seal-keystore` moves the token objects of a keystore written without
//! a password into a new, password-protected one (docs/pkcs11.md).

use super::*;
use crate::error::Error;
use strongroom_client::grep11::keystore as ks;
use strongroom_pkcs11::config::Config;
use strongroom_pkcs11::remote::{CallError, Remote, Who};
use strongroom_pkcs11::sealed::SpaceKeys;

#[derive(Args, Debug)]
pub struct Pkcs11Args {
    #[arg(long, value_enum, global = true, default_value = "human")]
    output: Output,
    #[command(subcommand)]
    cmd: Pkcs11Cmd,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Pkcs11Cmd {
    /// Move the token objects of a keystore written without a password (FROM) into the
    /// password-protected keystore the configuration names: the user's tokenspaceID, with
    /// `sessionauth` enabled. The objects are sealed under the password on the way, checked
    /// back, and then the copies in FROM are deleted (unless --keep-source). A run that
    /// stopped half-way can be run again. The API key (the PIN, a Writer of the instance)
    /// comes from STRONGROOM_PKCS11_PIN.
    SealKeystore {
        /// grep11client.yaml (default: EP11CLIENT_CFG, else /etc/ep11client/grep11client.yaml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The token (`tokens.N`).
        #[arg(long, default_value_t = 0)]
        slot: u64,
        /// The public keystore (`users.2`) instead of the private one (`users.1`).
        #[arg(long)]
        public: bool,
        /// The keystore the objects are in now (its tokenspaceID).
        #[arg(long)]
        from: uuid::Uuid,
        /// Leave the objects in FROM once copied.
        #[arg(long)]
        keep_source: bool,
    },
}

fn refused(what: &str) -> impl FnOnce(CallError) -> Error + '_ {
    move |e| Error::other(format!("{what}: {} ({:#x})", e.detail, e.ckr.0))
}

pub async fn pkcs11(a: Pkcs11Args) -> Result<(), Error> {
    let Pkcs11Cmd::SealKeystore {
        config,
        slot,
        public,
        from,
        keep_source,
    } = a.cmd;
    let path = config.unwrap_or_else(Config::path);
    let cfg = Config::load(&path).map_err(|e| Error::usage(e.to_string()))?;
    let token = cfg
        .tokens
        .into_iter()
        .find(|t| t.slot == slot)
        .ok_or_else(|| Error::usage(format!("{} has no tokens.{slot}", path.display())))?;
    let user = if public {
        &token.anonymous
    } else {
        &token.user
    };
    let (Some(to), Some(password)) = (user.tokenspace, user.password.clone()) else {
        return Err(Error::usage(format!(
            "{}: the {} user needs a tokenspaceID and sessionauth (enabled, tokenspaceIDPassword): that is the keystore the objects go to",
            path.display(),
            if public { "anonymous (users.2)" } else { "normal (users.1)" }
        )));
    };
    if to == from {
        return Err(Error::usage(
            "--from names the keystore the configuration protects: give the new keystore a new tokenspaceID",
        ));
    }
    let pin = std::env::var("STRONGROOM_PKCS11_PIN")
        .map(zeroize::Zeroizing::new)
        .map_err(|_| {
            Error::usage("set STRONGROOM_PKCS11_PIN to the API key the library uses as its PIN")
        })?;
    let private = !public;
    let keys = SpaceKeys::derive(&password.0, to)
        .map_err(|_| Error::other("the keystore password's keys could not be derived"))?;
    let remote = Remote::new(token).map_err(Error::other)?;
    remote
        .login(Who::User, pin)
        .await
        .map_err(refused("the API key"))?;
    let list = |space: uuid::Uuid, auth: Vec<u8>| ks::ListObjectsRequest {
        space: space.to_string(),
        private,
        auth,
    };
    let source = remote
        .call(list(from, Vec::new()))
        .await
        .map_err(refused("reading the source keystore"))?
        .objects;
    // Listing the target with the proof protects it if it is empty (this caller is a Writer).
    let present = remote
        .call(list(to, keys.proof().to_vec()))
        .await
        .map_err(refused("opening the protected keystore"))?
        .objects;
    // An object an earlier run sealed (it stopped half-way) is kept; an object of the same
    // id that is something else is not this move's, and the move is refused.
    let mut todo = Vec::new();
    for o in &source {
        match present.iter().find(|p| p.id == o.id) {
            None => todo.push(o),
            Some(p)
                if keys
                    .open(to, private, &p.id, &p.data)
                    .is_some_and(|x| x.as_slice() == o.data.as_slice()) => {}
            Some(_) => {
                return Err(Error::other(format!(
                    "the protected keystore {to} already holds another object with id {}: seal into a new, empty tokenspaceID",
                    o.id
                )))
            }
        }
    }
    for o in todo {
        let req = ks::PutObjectRequest {
            space: to.to_string(),
            private,
            id: o.id.clone(),
            data: keys
                .seal(to, private, &o.id, &o.data)
                .map_err(|_| Error::other("sealing failed"))?,
            expected_version: 0,
            auth: keys.proof().to_vec(),
        };
        remote
            .call(req)
            .await
            .map_err(refused(&format!("writing object {}", o.id)))?;
    }
    // Every object reads back, under the password, as it was.
    let sealed = remote
        .call(list(to, keys.proof().to_vec()))
        .await
        .map_err(refused("reading the protected keystore back"))?
        .objects;
    let intact = source.iter().all(|o| {
        sealed.iter().any(|s| {
            s.id == o.id
                && keys
                    .open(to, private, &s.id, &s.data)
                    .is_some_and(|p| p.as_slice() == o.data.as_slice())
        })
    });
    if !intact {
        return Err(Error::other(format!(
            "the protected keystore {to} does not read back as the source did; the source {from} is unchanged"
        )));
    }
    if !keep_source {
        for o in &source {
            let req = ks::DeleteObjectRequest {
                space: from.to_string(),
                private,
                id: o.id.clone(),
                auth: Vec::new(),
            };
            remote.call(req).await.map_err(refused(&format!(
                "deleting object {} from the source",
                o.id
            )))?;
        }
    }
    print(
        a.output,
        format!(
            "sealed {} object(s) from {from} into the password-protected keystore {to}{}",
            source.len(),
            if keep_source {
                "; the source keeps its copies (--keep-source)"
            } else {
                "; the source is empty now"
            }
        ),
        &json!({"from": from.to_string(), "to": to.to_string(), "objects": source.len(), "source_kept": keep_source}),
    );
    Ok(())
}
