//! `strongroom tke …`: the crypto unit administration commands, with the names of IBM's TKE
//! CLI plug-in so HPCS runbooks transfer (spec/ceremony.md §2). Workstation files (signature
//! keys, key parts) stay on this machine; commands are signed here and sent to the units,
//! whose signed responses are checked against their pinned identity keys.

mod files;

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::json;
use strongroom_client::{Client, Method};
use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::admin::{
    admin_add_command, seal_part, sign_command, verify_response, vp_of, Cmd, CommandBody, Mode,
    Output as UnitOutput, ResponseBody, RosterEntry, SignedResponse, Signer, StatusView, Which,
    WIRE_VERSION,
};
use strongroom_engine::{CryptoProvider, SigAlg, MASTER_KEY_LEN};
use strongroom_model::{InstanceId, UnitId};
use zeroize::Zeroizing;

use crate::cli::{print, urlencode, Conn, Output};
use files::{Passwords, PinnedUnit, SigKey, Workstation};

/// `strongroom tke`.
#[derive(Args, Debug)]
pub struct TkeArgs {
    #[command(flatten)]
    conn: Conn,
    /// The workstation directory: signature key files, key part files, selections and the
    /// pinned identity keys of the units (like IBM's CLOUDTKEFILES).
    #[arg(
        long,
        env = "STRONGROOM_TKE_FILES",
        global = true,
        default_value = "./tke-files"
    )]
    files: PathBuf,
    /// A file of passwords for automation, one '<file name>: <password>' per line (for
    /// example 'alice.sigkey: …'). Without it, passwords are asked on the terminal.
    #[arg(long, env = "STRONGROOM_TKE_PASSWORDS", global = true)]
    passwords: Option<PathBuf>,
    /// Print the unit commands this step would send and the signatures each needs, and
    /// change nothing.
    #[arg(long, global = true)]
    plan: bool,
    /// Do not ask for confirmation of destructive steps.
    #[arg(long, global = true)]
    yes: bool,
    #[command(subcommand)]
    cmd: TkeCmd,
}

#[derive(Subcommand, Debug)]
enum TkeCmd {
    /// List the signature key files of this workstation.
    Sigkeys,
    /// Create an administrator signature key in a password-protected file.
    #[command(name = "sigkey-add")]
    SigkeyAdd {
        /// The administrator's name (1-30 characters), also the file name.
        #[arg(long)]
        name: String,
        /// ed25519 (default), ecdsa-p256-sha256 or ecdsa-p521-sha512 (as HPCS).
        #[arg(long, default_value = "ed25519")]
        alg: String,
        /// Argon2id memory in MiB (at least 64; default 256).
        #[arg(long, default_value_t = files::DEFAULT_M_MIB)]
        kdf_memory_mib: u32,
    },
    /// Delete a signature key file (if it is the only copy of an installed administrator's
    /// key, that administrator can never sign again).
    #[command(name = "sigkey-rm")]
    SigkeyRm { key: String },
    /// Select the signature keys that sign the next commands (numbers or file names).
    #[command(name = "sigkey-sel")]
    SigkeySel {
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// List the master key part files of this workstation.
    Mks,
    /// Create a master key part file: a random 32-byte part, or a value you give.
    #[command(name = "mk-add")]
    MkAdd {
        /// Generate a random part.
        #[arg(long, conflicts_with = "value")]
        random: bool,
        /// The part as 64 hex digits ('-' reads it from standard input).
        #[arg(long)]
        value: Option<String>,
        /// A description (also the file name).
        #[arg(long)]
        description: String,
        /// Argon2id memory in MiB (at least 64; default 256).
        #[arg(long, default_value_t = files::DEFAULT_M_MIB)]
        kdf_memory_mib: u32,
    },
    /// Delete a key part file.
    #[command(name = "mk-rm")]
    MkRm { part: String },
    /// List the crypto units of the instance on every endpoint (pins their identity keys).
    Cryptounits,
    /// Add units to the selection that the cryptounit-* commands act on.
    #[command(name = "cryptounit-add")]
    CryptounitAdd {
        /// Unit numbers (from `cryptounits`) or ids.
        units: Vec<String>,
        /// Select every unit of the instance.
        #[arg(long)]
        all: bool,
    },
    /// Remove units from the selection.
    #[command(name = "cryptounit-rm")]
    CryptounitRm { units: Vec<String> },
    /// Show the administrators of the selected units.
    #[command(name = "cryptounit-admins")]
    CryptounitAdmins,
    /// Show the signature and revocation thresholds of the selected units.
    #[command(name = "cryptounit-thrhlds")]
    CryptounitThrhlds,
    /// Show the master key registers (state and verification pattern) of the selected units.
    #[command(name = "cryptounit-mk", alias = "cryptounit-mks")]
    CryptounitMk,
    /// Install an administrator (from a signature key file) in the selected units.
    #[command(name = "cryptounit-admin-add")]
    CryptounitAdminAdd {
        /// The signature key file to install (number or file name).
        sigkey: String,
    },
    /// Remove an administrator (by name or SKI) from the selected units.
    #[command(name = "cryptounit-admin-rm")]
    CryptounitAdminRm { admin: String },
    /// Set the signature and revocation thresholds (1-8); from imprint mode this secures
    /// the units.
    #[command(name = "cryptounit-thrhld-set")]
    CryptounitThrhldSet {
        #[arg(long)]
        signature_threshold: u8,
        #[arg(long)]
        revocation_threshold: u8,
    },
    /// Install the selected units as the instance roster in each of them (the units a
    /// recovery unit may export the master key to).
    #[command(name = "cryptounit-roster-set")]
    CryptounitRosterSet,
    /// Load key parts into the new master key register of the selected units.
    #[command(name = "cryptounit-mk-load")]
    CryptounitMkLoad {
        /// 2 or 3 key part files (numbers or file names).
        #[arg(required = true, num_args = 2..=3)]
        parts: Vec<String>,
    },
    /// Commit the new master key register of the selected units.
    #[command(name = "cryptounit-mk-commit")]
    CryptounitMkCommit {
        /// The verification pattern you expect (hex); default: the one the units show.
        #[arg(long)]
        vp: Option<String>,
    },
    /// Promote the committed new register to current (initialisation, or the last step of
    /// a rotation; refused while keys are still sealed under the current key).
    #[command(name = "cryptounit-mk-setimm")]
    CryptounitMkSetimm,
    /// Empty the new master key register of the selected units.
    #[command(name = "cryptounit-mk-clrnew")]
    CryptounitMkClrnew,
    /// Empty the current master key register of the selected units.
    #[command(name = "cryptounit-mk-clrcur")]
    CryptounitMkClrcur,
    /// Rotate: re-encrypt the key storage under the committed new master key while the
    /// service keeps serving, then promote it in every selected unit. Safe to run again
    /// after an interruption.
    #[command(name = "cryptounit-mk-rotate")]
    CryptounitMkRotate {
        /// Key blobs re-encrypted per request.
        #[arg(long, default_value_t = 2000)]
        batch: u32,
    },
    /// Compare administrators, thresholds, modes and registers of the selected units.
    #[command(name = "cryptounit-compare")]
    CryptounitCompare,
    /// Zeroize the selected units: administrators, thresholds and registers erased.
    #[command(name = "cryptounit-zeroize")]
    CryptounitZeroize,
    /// Initialise the selected units (all in imprint mode, at least one recovery unit):
    /// install the selected signature keys as administrators, set the thresholds and the
    /// roster, generate a random master key inside a recovery unit and transfer it sealed to
    /// every other unit.
    #[command(name = "auto-init")]
    AutoInit {
        #[arg(long)]
        signature_threshold: u8,
        #[arg(long)]
        revocation_threshold: u8,
    },
    /// Rotate with a random master key generated inside a recovery unit.
    #[command(name = "auto-mk-rotate")]
    AutoMkRotate {
        #[arg(long, default_value_t = 2000)]
        batch: u32,
    },
    /// Copy the current master key of a recovery unit into the selected units whose
    /// current register is empty (after zeroize or replacement).
    #[command(name = "auto-mk-recover", alias = "auto-recover")]
    AutoMkRecover,
}

/// A unit as seen by this workstation.
#[derive(Clone)]
struct Unit {
    id: UnitId,
    url: String,
    client: usize,
    identity: Vec<u8>,
    status: StatusView,
}

impl Unit {
    fn short(&self) -> String {
        let s = self.id.to_string();
        format!("{} ({:?})", &s[..8], self.status.kind).to_lowercase()
    }
}

struct Tke {
    p: AwsLcProvider,
    dir: PathBuf,
    ws: Workstation,
    pw: Passwords,
    plan: bool,
    yes: bool,
    out: Output,
    clients: Vec<(String, Client)>,
    instance: InstanceId,
    keys: Option<Vec<SigKey>>,
    /// The last signed response (an importer key or a transfer is passed on as received).
    last_signed: Option<SignedResponse>,
    /// Every unit of the instance seen by the last discovery (id, short name).
    known: Vec<(UnitId, String)>,
}

fn required(s: &StatusView, cmd: &Cmd) -> usize {
    let (sign, revoke) = (
        usize::from(s.signature_threshold),
        usize::from(s.revocation_threshold),
    );
    match s.mode {
        Mode::Imprint => match cmd {
            Cmd::SetThresholds { sign, .. } => usize::from(*sign),
            _ => 0,
        },
        Mode::Secured => match cmd {
            Cmd::AdminAdd { .. }
            | Cmd::SetThresholds { .. }
            | Cmd::SetRoster { .. }
            | Cmd::Commit { .. }
            | Cmd::Export { .. } => sign,
            Cmd::AdminRemove { .. } => revoke,
            _ => 1,
        },
    }
}

fn decode_body(r: &SignedResponse) -> Result<ResponseBody, String> {
    let bytes = B64
        .decode(&r.body)
        .map_err(|_| "a unit response is not base64")?;
    serde_json::from_slice(&bytes).map_err(|e| format!("a unit response is malformed: {e}"))
}

fn hex32(s: &str) -> Result<[u8; 32], String> {
    hex::decode(s.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| format!("'{s}' is not 64 hex digits"))
}

impl Tke {
    fn confirm(&self, question: &str) -> Result<(), String> {
        if self.yes {
            return Ok(());
        }
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return Err(format!(
                "{question} — pass --yes to confirm when not running interactively"
            ));
        }
        eprint!("{question} [y/N] ");
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        if line.trim().eq_ignore_ascii_case("y") || line.trim().eq_ignore_ascii_case("yes") {
            Ok(())
        } else {
            Err("cancelled".into())
        }
    }

    /// Checks a response against the unit's pinned identity key (pinning it on first use).
    fn accept(&mut self, url: &str, r: &SignedResponse) -> Result<(ResponseBody, Vec<u8>), String> {
        let body = decode_body(r)?;
        let status_key = match &body.output {
            UnitOutput::Status(s) => Some(s.identity_key.clone()),
            UnitOutput::Importer { status, .. } => Some(status.identity_key.clone()),
            UnitOutput::Transfer { .. } => None,
        };
        let id = body.unit.to_string();
        let key_b64 = match self.ws.pinned.get(&id) {
            Some(pin) => {
                if let Some(k) = &status_key {
                    if *k != pin.identity_key {
                        return Err(format!("unit {id} now presents a different identity key than the one pinned on this workstation: refusing to talk to it (if the unit was replaced on purpose, remove it from workstation.json)"));
                    }
                }
                pin.identity_key.clone()
            }
            None => {
                let k = status_key
                    .ok_or_else(|| format!("unit {id} is unknown to this workstation"))?;
                let kind = match &body.output {
                    UnitOutput::Status(s) => format!("{:?}", s.kind).to_lowercase(),
                    _ => "?".into(),
                };
                let raw = B64.decode(&k).map_err(|_| "bad identity key")?;
                let fp = hex::encode(&self.p.sha256(&[&raw])[..8]);
                eprintln!("pinned the identity key of unit {id} ({kind}), fingerprint {fp}");
                self.ws.pinned.insert(
                    id.clone(),
                    PinnedUnit {
                        instance: body.instance.to_string(),
                        url: url.to_string(),
                        kind,
                        identity_key: k.clone(),
                    },
                );
                k
            }
        };
        let key = B64
            .decode(&key_b64)
            .map_err(|_| "bad pinned identity key")?;
        let body = verify_response(&self.p, &key, r).map_err(|e| format!("unit {id}: {e}"))?;
        if body.instance != self.instance {
            return Err(format!("unit {id} answered for another instance"));
        }
        Ok((body, key))
    }

    async fn discover(&mut self) -> Result<Vec<Unit>, String> {
        let mut units = Vec::new();
        for i in 0..self.clients.len() {
            let (url, client) = (self.clients[i].0.clone(), self.clients[i].1.clone());
            let r = client
                .request(Method::GET, "/api/v2/crypto_units", None, &[])
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            let list: Vec<SignedResponse> = serde_json::from_value(r.body["units"].clone())
                .map_err(|e| format!("{url}: unexpected answer: {e}"))?;
            for sr in list {
                let (body, identity) = self.accept(&url, &sr)?;
                if let UnitOutput::Status(s) = body.output {
                    if units.iter().any(|u: &Unit| u.id == s.unit) {
                        continue; // the same unit reached through two endpoints
                    }
                    units.push(Unit {
                        id: s.unit,
                        url: url.clone(),
                        client: i,
                        identity,
                        status: *s,
                    });
                }
            }
        }
        units.sort_by_key(|u| (format!("{:?}", u.status.kind), u.id));
        self.known = units.iter().map(|u| (u.id, u.short())).collect();
        self.ws.save(&self.dir)?;
        Ok(units)
    }

    async fn selected(&mut self) -> Result<Vec<Unit>, String> {
        let all = self.discover().await?;
        let sel: Vec<Unit> = all
            .into_iter()
            .filter(|u| self.ws.units.contains(&u.id.to_string()))
            .collect();
        if sel.is_empty() {
            return Err("no crypto units selected: list them with `strongroom tke cryptounits`, then `strongroom tke cryptounit-add --all` (or by number)".into());
        }
        Ok(sel)
    }

    fn load_keys(&mut self) -> Result<(), String> {
        if self.keys.is_some() {
            return Ok(());
        }
        if self.ws.sigkeys.is_empty() {
            return Err("no signature keys selected: `strongroom tke sigkey-sel <numbers>`".into());
        }
        let mut keys = Vec::new();
        for f in &self.ws.sigkeys {
            let path = self.dir.join(f);
            let pw = self
                .pw
                .get(f, &format!("Password for signature key {f}: "))?;
            keys.push(files::open_sigkey(&self.p, &path, pw.as_bytes())?);
        }
        self.keys = Some(keys);
        Ok(())
    }

    async fn refresh(&mut self, u: &mut Unit) -> Result<(), String> {
        let client = self.clients[u.client].1.clone();
        let r = client
            .request(
                Method::GET,
                &format!("/api/v2/crypto_units/{}", urlencode(&u.id.to_string())),
                None,
                &[],
            )
            .await
            .map_err(|e| format!("unit {}: {e}", u.short()))?;
        let sr: SignedResponse =
            serde_json::from_value(r.body).map_err(|e| format!("unexpected answer: {e}"))?;
        let (body, _) = self.accept(&u.url, &sr)?;
        if let UnitOutput::Status(s) = body.output {
            u.status = *s;
        }
        Ok(())
    }

    /// Signs `cmd` for `u` with as many selected administrators as the unit requires and
    /// sends it; returns the verified response body and updates `u`.
    async fn send(&mut self, u: &mut Unit, cmd: Cmd) -> Result<ResponseBody, String> {
        let name = cmd.name();
        let needed = required(&u.status, &cmd);
        let body = CommandBody {
            v: WIRE_VERSION,
            instance: self.instance,
            unit: u.id,
            epoch: u.status.epoch,
            ctr: u.status.ctr + 1,
            cmd,
        };
        let signed = {
            let signers: Vec<Signer<'_>> = if needed == 0 {
                Vec::new()
            } else {
                self.load_keys()?;
                let admins: Vec<&str> = u.status.admins.iter().map(|a| a.ski.as_str()).collect();
                let keys = self.keys.as_deref().unwrap_or_default();
                let usable: Vec<Signer<'_>> = keys
                    .iter()
                    .filter(|k| admins.contains(&hex::encode(k.ski).as_str()))
                    .take(needed)
                    .map(|k| Signer {
                        alg: k.alg,
                        pkcs8: &k.pkcs8,
                        ski: k.ski,
                    })
                    .collect();
                if usable.len() < needed {
                    return Err(format!(
                        "'{name}' on unit {} needs {needed} administrator signature(s); the selected signature keys include {} administrator(s) of that unit (select more with sigkey-sel)",
                        u.short(),
                        usable.len()
                    ));
                }
                usable
            };
            sign_command(&self.p, &body, &signers).map_err(|e| e.to_string())?
        };
        let client = self.clients[u.client].1.clone();
        let r = client
            .request(
                Method::POST,
                &format!(
                    "/api/v2/crypto_units/{}/commands",
                    urlencode(&u.id.to_string())
                ),
                Some(json!(signed)),
                &[],
            )
            .await
            .map_err(|e| format!("unit {}: {name}: {e}", u.short()))?;
        let sr: SignedResponse =
            serde_json::from_value(r.body).map_err(|e| format!("unexpected answer: {e}"))?;
        let (resp, _) = self.accept(&u.url, &sr)?;
        self.last_signed = Some(sr);
        let sent = B64.decode(&signed.body).map_err(|_| "encoding")?;
        if resp.request.as_deref() != Some(hex::encode(self.p.sha256(&[&sent])).as_str()) {
            return Err(format!("unit {} answered a different request", u.short()));
        }
        match &resp.output {
            UnitOutput::Status(s) => u.status = (**s).clone(),
            UnitOutput::Importer { status, .. } => u.status = (**status).clone(),
            UnitOutput::Transfer { .. } => self.refresh(u).await?,
        }
        eprintln!(
            "  unit {}: {name} done ({} signature(s))",
            u.short(),
            needed
        );
        Ok(resp)
    }

    fn plan_or(&self, lines: Vec<String>) -> bool {
        if self.plan {
            let human = std::iter::once("plan (nothing is changed):".to_string())
                .chain(lines.iter().map(|l| format!("  {l}")))
                .collect::<Vec<_>>()
                .join("\n");
            print(self.out, human, &json!({"plan": lines}));
        }
        self.plan
    }

    /// Sends each unit its command (`None`: nothing to do on that unit); with `--plan`,
    /// prints the commands and their signatures instead and returns `true`. `confirm` is
    /// asked once, after the plan, before anything is sent.
    async fn each(
        &mut self,
        units: &mut [Unit],
        cmds: Vec<Option<Cmd>>,
        confirm: Option<String>,
    ) -> Result<bool, String> {
        let plan = units
            .iter()
            .zip(&cmds)
            .filter_map(|(u, c)| c.as_ref().map(|c| Self::step(u, c)))
            .collect();
        if self.plan_or(plan) {
            return Ok(true);
        }
        if let Some(q) = confirm {
            self.confirm(&q)?;
        }
        for (u, c) in units.iter_mut().zip(cmds) {
            match c {
                Some(c) => {
                    self.send(u, c).await?;
                }
                None => eprintln!("  unit {}: nothing to do", u.short()),
            }
        }
        Ok(false)
    }

    fn sig_desc(s: &StatusView, cmd: &Cmd) -> String {
        let n = required(s, cmd);
        let why = match (s.mode, cmd) {
            (Mode::Imprint, Cmd::SetThresholds { .. }) => "the new signature threshold",
            (Mode::Imprint, _) => "imprint mode",
            (_, Cmd::AdminRemove { .. }) => "revocation threshold",
            (_, _) if n == 1 => "one administrator",
            _ => "signature threshold",
        };
        format!("{n} signature(s) ({why})")
    }

    fn step(u: &Unit, cmd: &Cmd) -> String {
        format!(
            "unit {}: {} — {}",
            u.short(),
            cmd.name(),
            Self::sig_desc(&u.status, cmd)
        )
    }

    async fn importer(
        &mut self,
        u: &mut Unit,
    ) -> Result<(SignedResponse, [u8; 16], Vec<u8>), String> {
        let resp = self.send(u, Cmd::GenImporter).await?;
        match resp.output {
            UnitOutput::Importer {
                importer,
                public_key,
                ..
            } => {
                let id: [u8; 16] = hex::decode(&importer)
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .ok_or("bad importer id")?;
                let pk = B64.decode(&public_key).map_err(|_| "bad importer key")?;
                // The signed response itself is what a recovery unit checks.
                let raw = self
                    .last_signed
                    .take()
                    .ok_or("internal: response missing")?;
                Ok((raw, id, pk))
            }
            _ => Err("the unit did not return an importer key".into()),
        }
    }
}

fn same<T: PartialEq>(v: &[T]) -> bool {
    v.windows(2).all(|w| w[0] == w[1])
}

fn new_vp(u: &Unit) -> Option<String> {
    u.status.new.vp.clone()
}

impl Tke {
    async fn transfer(
        &mut self,
        source: &mut Unit,
        target: &mut Unit,
        register: Which,
    ) -> Result<String, String> {
        let (importer_resp, _, _) = self.importer(target).await?;
        let resp = self
            .send(
                source,
                Cmd::Export {
                    register,
                    target: importer_resp,
                },
            )
            .await?;
        let vp = match &resp.output {
            UnitOutput::Transfer { vp, .. } => vp.clone(),
            _ => return Err("the recovery unit did not return a transfer".into()),
        };
        let transfer = self
            .last_signed
            .take()
            .ok_or("internal: response missing")?;
        self.send(target, Cmd::ImportTransfer { transfer }).await?;
        self.send(target, Cmd::Commit { vp: vp.clone() }).await?;
        Ok(vp)
    }

    fn roster(units: &[Unit]) -> Vec<RosterEntry> {
        units
            .iter()
            .map(|u| RosterEntry {
                unit: u.id,
                kind: u.status.kind,
                identity_key: B64.encode(&u.identity),
            })
            .collect()
    }

    /// Begins the rotation on every operational unit, re-encrypts the key storage and
    /// finalizes every unit. Each step is skipped when already done, so it resumes.
    /// Every unit of the instance takes part in a rotation: a unit left out would keep
    /// sealing new blobs under the old key, and the rotation could not finish.
    /// (Uses the discovery that selected the units: no second round of requests.)
    fn require_all_selected(&self, units: &[Unit]) -> Result<(), String> {
        let missing: Vec<&str> = self
            .known
            .iter()
            .filter(|(id, _)| !units.iter().any(|u| u.id == *id))
            .map(|(_, short)| short.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "a rotation needs every unit of the instance selected; not selected: {} (strongroom tke cryptounit-add --all)",
                missing.join(", ")
            ));
        }
        Ok(())
    }

    async fn rotate(&mut self, units: &mut [Unit], batch: u32) -> Result<(), String> {
        self.require_all_selected(units)?;
        let vps: Vec<Option<String>> = units.iter().map(new_vp).collect();
        let Some(Some(vp)) = vps.first().cloned() else {
            return Err("the new master key register is empty: load (cryptounit-mk-load) and commit (cryptounit-mk-commit) a new master key first".into());
        };
        if !same(&vps) {
            return Err("the selected units hold different new master keys (see cryptounit-mk); they must agree before a rotation".into());
        }
        if let Some(u) = units
            .iter()
            .find(|u| u.status.new.state != "full_committed")
        {
            return Err(format!(
                "unit {}'s new register is not committed (cryptounit-mk-commit)",
                u.short()
            ));
        }
        let currents: Vec<Option<String>> =
            units.iter().map(|u| u.status.current.vp.clone()).collect();
        if !same(&currents) || currents[0].is_none() {
            return Err("the selected units do not hold one and the same current master key; compare them (cryptounit-compare)".into());
        }
        let op: Vec<usize> = (0..units.len())
            .filter(|i| units[*i].status.kind == strongroom_engine::admin::UnitKind::Operational)
            .collect();
        if op.is_empty() {
            return Err("select the operational units of the instance too".into());
        }
        for i in &op {
            if !units[*i].status.rotating {
                self.send(&mut units[*i], Cmd::BeginRotation { vp: vp.clone() })
                    .await?;
            }
        }
        eprintln!(
            "re-encrypting the key storage under master key {}…",
            &vp[..32]
        );
        let client = self.clients[units[op[0]].client].1.clone();
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "  {bar:40} {pos}/{len} key versions ({per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let mut total = None;
        let mut done = 0u64;
        loop {
            let r = client
                .request(
                    Method::POST,
                    &format!("/api/v2/crypto_units/reencrypt?batch={batch}"),
                    None,
                    &[],
                )
                .await
                .map_err(|e| {
                    format!("re-encryption: {e} (run the same command again to resume)")
                })?;
            let rewrapped = r.body["rewrapped"].as_u64().unwrap_or(0);
            let remaining = r.body["remaining"].as_u64().unwrap_or(0);
            let unreadable = r.body["unreadable"].as_u64().unwrap_or(0);
            done += rewrapped;
            if total.is_none() {
                total = Some(done + remaining);
                bar.set_length(done + remaining);
            }
            bar.set_position(done);
            if unreadable > 0 {
                bar.abandon();
                return Err(format!("{unreadable} key version(s) are sealed under a master key the unit does not hold; they cannot be re-encrypted (see the server log)"));
            }
            if remaining == 0 {
                break;
            }
            if rewrapped == 0 {
                // Others are writing faster than one batch, or nothing moved: try again.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        bar.finish();
        eprintln!("key storage re-encrypted ({done} key version(s)); promoting the new master key");
        for u in units.iter_mut() {
            if u.status.new.state == "full_committed" {
                self.send(u, Cmd::Finalize { vp: vp.clone() }).await?;
            }
        }
        print(
            self.out,
            format!("master key rotated: current master key {vp}"),
            &json!({"rotated": true, "current_vp": vp.to_string()}),
        );
        Ok(())
    }

    fn rotate_plan(units: &[Unit]) -> Vec<String> {
        let vp = units.first().and_then(new_vp).unwrap_or_default();
        let mut l: Vec<String> = units
            .iter()
            .filter(|u| u.status.kind == strongroom_engine::admin::UnitKind::Operational)
            .map(|u| Self::step(u, &Cmd::BeginRotation { vp: vp.clone() }))
            .collect();
        l.push("service: re-encrypt every key blob of the instance under the new master key (no signature; Manager token)".into());
        l.extend(
            units
                .iter()
                .map(|u| Self::step(u, &Cmd::Finalize { vp: vp.clone() })),
        );
        l
    }

    fn print_units(&self, units: &[Unit], what: &str) {
        let v: Vec<serde_json::Value> = units.iter().map(|u| json!(u.status)).collect();
        print(self.out, self.units_text(units, what), &json!({"units": v}));
    }

    /// The units' `what` (admins, thresholds, registers) as a reader sees them.
    fn units_text(&self, units: &[Unit], what: &str) -> String {
        let mut human = String::new();
        for u in units {
            let s = &u.status;
            human.push_str(&format!("unit {} at {}\n", u.id, u.url));
            match what {
                "admins" => {
                    if s.admins.is_empty() {
                        human.push_str("  no administrators\n");
                    }
                    for a in &s.admins {
                        human.push_str(&format!("  {:<30} {} ({})\n", a.name, a.ski, a.alg));
                    }
                }
                "thresholds" => human.push_str(
                    &format!(
                        "  mode {:?}, signature threshold {}, revocation threshold {}\n",
                        s.mode, s.signature_threshold, s.revocation_threshold
                    )
                    .to_lowercase(),
                ),
                _ => {
                    human.push_str(&format!(
                        "  new register:     {:<17} {}\n",
                        s.new.state,
                        s.new.vp.as_deref().unwrap_or("-")
                    ));
                    human.push_str(&format!(
                        "  current register: {:<17} {}\n",
                        s.current.state,
                        s.current.vp.as_deref().unwrap_or("-")
                    ));
                    if s.rotating {
                        human.push_str("  rotation in progress (new blobs are sealed under the new register)\n");
                    }
                }
            }
        }
        human.trim_end().to_string()
    }
}

/// Runs `strongroom tke …`.
pub async fn tke(a: TkeArgs) -> Result<(), String> {
    let p = AwsLcProvider;
    let dir = a.files.clone();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let pw = Passwords::load(a.passwords.as_deref())?;
    let ws = Workstation::load(&dir)?;
    let out = a.conn.output();
    // Workstation-only commands need no server.
    match &a.cmd {
        TkeCmd::Sigkeys => {
            let files = files::list(&dir, "sigkey")?;
            let mut rows = Vec::new();
            let mut human = format!("signature keys in {}:\n", dir.display());
            for (n, f) in files.iter().enumerate() {
                let h = files::read(f)?.header;
                let name = files::file_name(f);
                let sel = if ws.sigkeys.contains(&name) {
                    "SELECTED"
                } else {
                    ""
                };
                human.push_str(&format!(
                    "  {:>2}  {:<24} {:<18} {} {sel}\n",
                    n + 1,
                    h.name,
                    h.alg.clone().unwrap_or_default(),
                    h.ski.clone().unwrap_or_default()
                ));
                rows.push(json!({"number": n + 1, "file": name, "name": h.name, "alg": h.alg, "ski": h.ski, "selected": !sel.is_empty()}));
            }
            print(out, human.trim_end().into(), &json!({"sigkeys": rows}));
            return Ok(());
        }
        TkeCmd::SigkeyAdd {
            name,
            alg,
            kdf_memory_mib,
        } => {
            let alg = SigAlg::parse(alg)
                .ok_or("unknown algorithm: ed25519, ecdsa-p256-sha256 or ecdsa-p521-sha512")?;
            let n = name.trim();
            if n.is_empty()
                || n.chars().count() > 30
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                return Err(
                    "an administrator name is 1-30 characters: letters, digits, '-', '_', '.'"
                        .into(),
                );
            }
            let file = format!("{n}.sigkey");
            let path = dir.join(&file);
            if path.exists() {
                return Err(format!("{} already exists", path.display()));
            }
            let password = pw.new_password(&file, &format!("the signature key of {n}"))?;
            let (pkcs8, public) = p.sig_generate(alg).map_err(|_| "key generation failed")?;
            let ski = strongroom_engine::admin::ski_of(&p, alg, &public);
            let mut h = files::new_header(files::SIGKEY_FORMAT, n);
            h.alg = Some(alg.name().into());
            h.public_key = Some(B64.encode(&public));
            h.ski = Some(hex::encode(ski));
            let f = files::seal(&p, h, password.as_bytes(), *kdf_memory_mib, &pkcs8)?;
            files::write(&path, &f)?;
            print(
                out,
                format!(
                    "created signature key {file} for administrator {n}\n  SKI {}",
                    hex::encode(ski)
                ),
                &json!({"file": file, "ski": hex::encode(ski)}),
            );
            return Ok(());
        }
        TkeCmd::SigkeyRm { key } => {
            let path = files::resolve(&dir, "sigkey", key)?;
            std::fs::remove_file(&path).map_err(|e| e.to_string())?;
            let mut ws = ws;
            ws.sigkeys.retain(|f| *f != files::file_name(&path));
            ws.save(&dir)?;
            print(
                out,
                format!("deleted {}", path.display()),
                &json!({"deleted": path.display().to_string()}),
            );
            return Ok(());
        }
        TkeCmd::SigkeySel { keys } => {
            let mut ws = ws;
            ws.sigkeys.clear();
            for k in keys {
                let path = files::resolve(&dir, "sigkey", k)?;
                let name = files::file_name(&path);
                // Check the password now, as TKE does, so a typo shows up here.
                let password = pw.get(&name, &format!("Password for {name}: "))?;
                files::open_sigkey(&p, &path, password.as_bytes())?;
                if !ws.sigkeys.contains(&name) {
                    ws.sigkeys.push(name);
                }
            }
            ws.save(&dir)?;
            print(
                out,
                format!("selected signature keys: {}", ws.sigkeys.join(", ")),
                &json!({"selected_sigkeys": ws.sigkeys}),
            );
            return Ok(());
        }
        TkeCmd::Mks => {
            let files = files::list(&dir, "mkpart")?;
            let mut rows = Vec::new();
            let mut human = format!("master key parts in {}:\n", dir.display());
            for (n, f) in files.iter().enumerate() {
                let h = files::read(f)?.header;
                human.push_str(&format!(
                    "  {:>2}  {:<30} part VP {}\n",
                    n + 1,
                    h.name,
                    h.part_vp.clone().unwrap_or_default()
                ));
                rows.push(json!({"number": n + 1, "file": files::file_name(f), "description": h.name, "part_vp": h.part_vp}));
            }
            print(out, human.trim_end().into(), &json!({"parts": rows}));
            return Ok(());
        }
        TkeCmd::MkAdd {
            random,
            value,
            description,
            kdf_memory_mib,
        } => {
            let d = description.trim();
            if d.is_empty()
                || d.len() > 60
                || !d
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                return Err("a description is 1-60 characters: letters, digits, '-', '_', '.' (it is also the file name)".into());
            }
            let file = format!("{d}.mkpart");
            let path = dir.join(&file);
            if path.exists() {
                return Err(format!("{} already exists", path.display()));
            }
            let mut part = Zeroizing::new([0u8; MASTER_KEY_LEN]);
            match (random, value) {
                (true, _) => p
                    .fill_random(part.as_mut())
                    .map_err(|_| "random generator failed")?,
                (false, Some(v)) => {
                    let text = Zeroizing::new(if v == "-" {
                        let mut s = String::new();
                        std::io::stdin()
                            .read_line(&mut s)
                            .map_err(|e| e.to_string())?;
                        s
                    } else {
                        v.clone()
                    });
                    let bytes = Zeroizing::new(
                        hex::decode(text.trim()).map_err(|_| "the value must be 64 hex digits")?,
                    );
                    if bytes.len() != MASTER_KEY_LEN {
                        return Err("the value must be 64 hex digits (32 bytes)".into());
                    }
                    part.copy_from_slice(&bytes);
                }
                (false, None) => return Err("give --random or --value".into()),
            }
            if part.iter().all(|b| *b == 0) {
                return Err("an all-zero part is refused".into());
            }
            let vp = strongroom_engine::admin::part_vp_of(&p, &part)
                .map_err(|_| "verification pattern failed")?;
            let password = pw.new_password(&file, &format!("key part {d}"))?;
            let mut h = files::new_header(files::MKPART_FORMAT, d);
            h.part_vp = Some(vp.to_hex());
            let f = files::seal(&p, h, password.as_bytes(), *kdf_memory_mib, part.as_ref())?;
            files::write(&path, &f)?;
            print(
                out,
                format!("created key part {file}\n  part VP {}", vp.to_hex()),
                &json!({"file": file, "part_vp": vp.to_hex()}),
            );
            return Ok(());
        }
        TkeCmd::MkRm { part } => {
            let path = files::resolve(&dir, "mkpart", part)?;
            std::fs::remove_file(&path).map_err(|e| e.to_string())?;
            print(
                out,
                format!("deleted {}", path.display()),
                &json!({"deleted": path.display().to_string()}),
            );
            return Ok(());
        }
        _ => {}
    }

    let (clients, instance) = a.conn.endpoint_clients()?;
    let instance: InstanceId = instance
        .parse()
        .map_err(|_| "the instance id is not a UUID")?;
    let mut t = Tke {
        p,
        dir,
        ws,
        pw,
        plan: a.plan,
        yes: a.yes,
        out,
        clients,
        instance,
        keys: None,
        last_signed: None,
        known: Vec::new(),
    };
    match a.cmd {
        TkeCmd::Cryptounits => {
            let units = t.discover().await?;
            let mut human = format!("crypto units of instance {instance}:\n");
            for (n, u) in units.iter().enumerate() {
                let sel = if t.ws.units.contains(&u.id.to_string()) {
                    "SELECTED"
                } else {
                    ""
                };
                human.push_str(&format!(
                    "  {:>2}  {}  {:<11} {:<8} current {:<5} {} {sel}\n",
                    n + 1,
                    u.id,
                    format!("{:?}", u.status.kind).to_lowercase(),
                    format!("{:?}", u.status.mode).to_lowercase(),
                    u.status.current.state,
                    u.url
                ));
            }
            let v: Vec<serde_json::Value> = units
                .iter()
                .map(|u| json!({"unit": u.id, "url": u.url, "status": u.status}))
                .collect();
            print(out, human.trim_end().into(), &json!({"units": v}));
        }
        TkeCmd::CryptounitAdd { units, all } => {
            let found = t.discover().await?;
            let pick: Vec<String> = if all {
                found.iter().map(|u| u.id.to_string()).collect()
            } else {
                let mut v = Vec::new();
                for r in &units {
                    let u = match r.parse::<usize>() {
                        Ok(n) => found.get(n.wrapping_sub(1)),
                        Err(_) => found.iter().find(|u| u.id.to_string() == *r),
                    }
                    .ok_or_else(|| {
                        format!("no crypto unit '{r}' (see `strongroom tke cryptounits`)")
                    })?;
                    v.push(u.id.to_string());
                }
                v
            };
            // A selection covers the units of one instance.
            t.ws.units
                .retain(|id| found.iter().any(|u| u.id.to_string() == *id));
            for id in pick {
                if !t.ws.units.contains(&id) {
                    t.ws.units.push(id);
                }
            }
            t.ws.save(&t.dir)?;
            print(
                t.out,
                format!("selected units: {}", t.ws.units.join(", ")),
                &json!({"selected_units": t.ws.units}),
            );
        }
        TkeCmd::CryptounitRm { units } => {
            let found = t.discover().await?;
            t.ws.units
                .retain(|id| found.iter().any(|u| u.id.to_string() == *id));
            for r in &units {
                let id = match r.parse::<usize>() {
                    Ok(n) => found.get(n.wrapping_sub(1)).map(|u| u.id.to_string()),
                    Err(_) => Some(r.clone()),
                };
                if let Some(id) = id {
                    t.ws.units.retain(|u| *u != id);
                }
            }
            t.ws.save(&t.dir)?;
            print(
                t.out,
                format!("selected units: {}", t.ws.units.join(", ")),
                &json!({"selected_units": t.ws.units}),
            );
        }
        TkeCmd::CryptounitAdmins => {
            let units = t.selected().await?;
            t.print_units(&units, "admins");
        }
        TkeCmd::CryptounitThrhlds => {
            let units = t.selected().await?;
            t.print_units(&units, "thresholds");
        }
        TkeCmd::CryptounitMk => {
            let units = t.selected().await?;
            t.print_units(&units, "registers");
        }
        TkeCmd::CryptounitAdminAdd { sigkey } => {
            let mut units = t.selected().await?;
            let path = files::resolve(&t.dir, "sigkey", &sigkey)?;
            let name = files::file_name(&path);
            let password = t.pw.get(
                &name,
                &format!("Password for {name} (the key to install): "),
            )?;
            let key = files::open_sigkey(&t.p, &path, password.as_bytes())?;
            let mut cmds = Vec::new();
            for u in &units {
                let installed = u
                    .status
                    .admins
                    .iter()
                    .any(|a| a.ski == hex::encode(key.ski));
                cmds.push(if installed {
                    None
                } else {
                    Some(
                        admin_add_command(&t.p, instance, u.id, &key.name, key.alg, &key.pkcs8)
                            .map_err(|e| e.to_string())?,
                    )
                });
            }
            if t.each(&mut units, cmds, None).await? {
                return Ok(());
            }
            print(
                t.out,
                format!(
                    "administrator {} (SKI {}) installed",
                    key.name,
                    hex::encode(key.ski)
                ),
                &json!({"installed_admin": key.name, "ski": hex::encode(key.ski)}),
            );
        }
        TkeCmd::CryptounitAdminRm { admin } => {
            let mut units = t.selected().await?;
            let mut steps = Vec::new();
            for u in &units {
                let a = u
                    .status
                    .admins
                    .iter()
                    .find(|a| a.name == admin || a.ski == admin.to_lowercase())
                    .ok_or_else(|| format!("unit {} has no administrator '{admin}'", u.short()))?;
                steps.push(Some(Cmd::AdminRemove { ski: a.ski.clone() }));
            }
            if t.each(&mut units, steps, None).await? {
                return Ok(());
            }
            print(
                t.out,
                format!("administrator {admin} removed"),
                &json!({"removed_admin": admin}),
            );
        }
        TkeCmd::CryptounitThrhldSet {
            signature_threshold,
            revocation_threshold,
        } => {
            let mut units = t.selected().await?;
            let cmd = Cmd::SetThresholds {
                sign: signature_threshold,
                revoke: revocation_threshold,
            };
            let n = units.len();
            if t.each(&mut units, vec![Some(cmd); n], None).await? {
                return Ok(());
            }
            print(
                t.out,
                format!("thresholds set: signature {signature_threshold}, revocation {revocation_threshold}"),
                &json!({"signature_threshold": signature_threshold, "revocation_threshold": revocation_threshold}),
            );
        }
        TkeCmd::CryptounitRosterSet => {
            let mut units = t.selected().await?;
            let roster = Tke::roster(&units);
            let cmd = Cmd::SetRoster { units: roster };
            let n = units.len();
            if t.each(&mut units, vec![Some(cmd); n], None).await? {
                return Ok(());
            }
            print(
                t.out,
                format!("roster of {} unit(s) installed", units.len()),
                &json!({"roster_units": units.len()}),
            );
        }
        TkeCmd::CryptounitMkLoad { parts } => {
            let mut units = t.selected().await?;
            if t.plan_or(
                units
                    .iter()
                    .flat_map(|u| {
                        [
                            Tke::step(u, &Cmd::GenImporter),
                            Tke::step(
                                u,
                                &Cmd::LoadNew {
                                    importer: String::new(),
                                    parts: vec![],
                                },
                            ),
                        ]
                    })
                    .collect(),
            ) {
                return Ok(());
            }
            let mut values = Vec::new();
            for r in &parts {
                let path = files::resolve(&t.dir, "mkpart", r)?;
                let name = files::file_name(&path);
                let password =
                    t.pw.get(&name, &format!("Password for key part {name}: "))?;
                values.push(files::open_part(&t.p, &path, password.as_bytes())?);
            }
            let mut mk = Zeroizing::new([0u8; MASTER_KEY_LEN]);
            for v in &values {
                for (a, b) in mk.iter_mut().zip(v.iter()) {
                    *a ^= b;
                }
            }
            let vp = vp_of(&t.p, &mk).map_err(|_| "verification pattern failed")?;
            for u in units.iter_mut() {
                let (_, id, pk) = t.importer(u).await?;
                let sealed = values
                    .iter()
                    .map(|v| {
                        seal_part(&t.p, instance, u.id, &id, &pk, v)
                            .map_err(|_| "sealing a part failed".to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                t.send(
                    u,
                    Cmd::LoadNew {
                        importer: hex::encode(id),
                        parts: sealed,
                    },
                )
                .await?;
            }
            print(
                t.out,
                format!("new master key loaded (uncommitted) in {} unit(s); verification pattern {}\nnext: strongroom tke cryptounit-mk-commit", units.len(), vp.to_hex()),
                &json!({"loaded_units": units.len(), "new_vp": vp.to_hex()}),
            );
        }
        TkeCmd::CryptounitMkCommit { vp } => {
            let mut units = t.selected().await?;
            let vps: Vec<Option<String>> = units.iter().map(new_vp).collect();
            if !same(&vps) {
                return Err(
                    "the selected units hold different new master keys (cryptounit-mk)".into(),
                );
            }
            let shown =
                vps.first().cloned().flatten().ok_or(
                    "the new register is empty: load a master key first (cryptounit-mk-load)",
                )?;
            if let Some(v) = vp {
                if hex32(&v)? != hex32(&shown)? {
                    return Err(format!(
                        "the units hold new master key {shown}, not {v}: nothing committed"
                    ));
                }
            }
            let cmds = units
                .iter()
                .map(|u| {
                    (u.status.new.state != "full_committed")
                        .then(|| Cmd::Commit { vp: shown.clone() })
                })
                .collect();
            if t.each(&mut units, cmds, None).await? {
                return Ok(());
            }
            print(
                t.out,
                format!("new master key {shown} committed"),
                &json!({"committed": shown.to_string()}),
            );
        }
        TkeCmd::CryptounitMkSetimm => {
            let mut units = t.selected().await?;
            let vps: Vec<Option<String>> = units.iter().map(new_vp).collect();
            let vp = vps
                .first()
                .cloned()
                .flatten()
                .ok_or("the new register is empty")?;
            if !same(&vps) {
                return Err(
                    "the selected units hold different new master keys (cryptounit-mk)".into(),
                );
            }
            let confirm = units.iter().any(|u| u.status.current.state == "valid").then(|| "The current master key will be replaced. Keys sealed under it and not re-encrypted become unusable (the server refuses while any remain). Continue?".to_string());
            let cmds = vec![Some(Cmd::Finalize { vp: vp.clone() }); units.len()];
            if t.each(&mut units, cmds, confirm).await? {
                return Ok(());
            }
            print(
                t.out,
                format!("master key {vp} is now current"),
                &json!({"current_vp": vp.to_string()}),
            );
        }
        TkeCmd::CryptounitMkClrnew | TkeCmd::CryptounitMkClrcur => {
            let mut units = t.selected().await?;
            let (cmd, what) = if matches!(a.cmd, TkeCmd::CryptounitMkClrnew) {
                (Cmd::ClearNew, "new")
            } else {
                (Cmd::ClearCurrent, "current")
            };
            let confirm = format!(
                "Clear the {what} master key register of {} unit(s)?",
                units.len()
            );
            let n = units.len();
            if t.each(&mut units, vec![Some(cmd); n], Some(confirm))
                .await?
            {
                return Ok(());
            }
            print(
                t.out,
                format!("{what} master key register cleared"),
                &json!({"cleared": what}),
            );
        }
        TkeCmd::CryptounitMkRotate { batch } => {
            let mut units = t.selected().await?;
            if t.plan_or(Tke::rotate_plan(&units)) {
                return Ok(());
            }
            t.rotate(&mut units, batch).await?;
        }
        TkeCmd::CryptounitCompare => {
            let units = t.selected().await?;
            let key = |u: &Unit| {
                let s = &u.status;
                let mut admins: Vec<String> = s.admins.iter().map(|a| a.ski.clone()).collect();
                admins.sort();
                (
                    s.mode,
                    admins,
                    s.signature_threshold,
                    s.revocation_threshold,
                    s.current.clone(),
                    s.new.clone(),
                )
            };
            let keys: Vec<_> = units.iter().map(key).collect();
            let identical = same(&keys);
            let mut human = t.units_text(&units, "registers");
            human.push('\n');
            human.push_str(&if identical {
                format!("the {} selected units are identical: same mode, administrators, thresholds and master key registers", units.len())
            } else {
                "the selected units differ (administrators, thresholds or registers): see above and cryptounit-admins / cryptounit-thrhlds".to_string()
            });
            let v: Vec<serde_json::Value> = units.iter().map(|u| json!(u.status)).collect();
            print(t.out, human, &json!({"units": v, "identical": identical}));
            if !identical {
                return Err("the selected units differ".into());
            }
        }
        TkeCmd::CryptounitZeroize => {
            let mut units = t.selected().await?;
            let confirm = format!(
                "Zeroize {} unit(s)? Their administrators, thresholds and master keys are erased",
                units.len()
            );
            let n = units.len();
            if t.each(&mut units, vec![Some(Cmd::Zeroize); n], Some(confirm))
                .await?
            {
                return Ok(());
            }
            print(
                t.out,
                format!("{} unit(s) zeroized (imprint mode)", units.len()),
                &json!({"zeroized_units": units.len()}),
            );
        }
        TkeCmd::AutoInit {
            signature_threshold,
            revocation_threshold,
        } => {
            let mut units = t.selected().await?;
            if let Some(u) = units
                .iter()
                .find(|u| u.status.mode != Mode::Imprint || !u.status.admins.is_empty())
            {
                return Err(format!("auto-init needs every selected unit in imprint mode without administrators; unit {} is not (zeroize it first, or use the cryptounit-* commands)", u.short()));
            }
            let Some(r) = units
                .iter()
                .position(|u| u.status.kind == strongroom_engine::admin::UnitKind::Recovery)
            else {
                return Err("auto-init needs a recovery unit among the selected units".into());
            };
            t.load_keys()?;
            let keys: Vec<(String, SigAlg, Zeroizing<Vec<u8>>)> = t
                .keys
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|k| (k.name.clone(), k.alg, k.pkcs8.clone()))
                .collect();
            let needed = usize::from(signature_threshold.max(revocation_threshold));
            if keys.len() < needed {
                return Err(format!("thresholds {signature_threshold}/{revocation_threshold} need at least {needed} administrators; {} signature key(s) selected", keys.len()));
            }
            if t.plan {
                let mut l = Vec::new();
                for u in &units {
                    for (n, _, _) in &keys {
                        l.push(format!(
                            "unit {}: admin_add {n} — 0 signatures (imprint mode)",
                            u.short()
                        ));
                    }
                    l.push(format!("unit {}: set_thresholds {signature_threshold}/{revocation_threshold} — {signature_threshold} signature(s) (the new signature threshold)", u.short()));
                    l.push(format!("unit {}: set_roster — {signature_threshold} signature(s) (signature threshold)", u.short()));
                }
                l.push(format!(
                    "unit {}: gen_random — 1 signature",
                    units[r].short()
                ));
                for (i, u) in units.iter().enumerate() {
                    if i != r {
                        l.push(format!("unit {}: gen_importer — 1 signature", u.short()));
                        l.push(format!(
                            "unit {}: export (current) — {signature_threshold} signature(s)",
                            units[r].short()
                        ));
                        l.push(format!("unit {}: import_transfer — 1; commit — {signature_threshold}; finalize — 1", u.short()));
                    }
                }
                t.plan_or(l);
                return Ok(());
            }
            eprintln!("installing {} administrator(s) and thresholds {signature_threshold}/{revocation_threshold} in {} unit(s)", keys.len(), units.len());
            for u in units.iter_mut() {
                for (name, alg, pkcs8) in &keys {
                    let c = admin_add_command(&t.p, instance, u.id, name, *alg, pkcs8)
                        .map_err(|e| e.to_string())?;
                    t.send(u, c).await?;
                }
                t.send(
                    u,
                    Cmd::SetThresholds {
                        sign: signature_threshold,
                        revoke: revocation_threshold,
                    },
                )
                .await?;
            }
            let roster = Tke::roster(&units);
            for u in units.iter_mut() {
                t.send(
                    u,
                    Cmd::SetRoster {
                        units: roster.clone(),
                    },
                )
                .await?;
            }
            eprintln!(
                "generating a random master key inside recovery unit {}",
                units[r].short()
            );
            let mut rec = units[r].clone();
            t.send(&mut rec, Cmd::GenRandom).await?;
            let vp = rec.status.current.vp.clone().unwrap_or_default();
            let n = units.len();
            let mut k = 0;
            for (i, target) in units.iter_mut().enumerate() {
                if i == r {
                    continue;
                }
                k += 1;
                eprintln!(
                    "transferring the master key value to unit {} ({k} of {})",
                    target.short(),
                    n - 1
                );
                t.transfer(&mut rec, target, Which::Current).await?;
                t.send(target, Cmd::Finalize { vp: vp.clone() }).await?;
            }
            units[r] = rec;
            print(
                t.out,
                format!(
                    "instance initialised: {} unit(s) hold master key {vp}",
                    units.len()
                ),
                &json!({"initialised_units": units.len(), "current_vp": vp.to_string()}),
            );
        }
        TkeCmd::AutoMkRotate { batch } => {
            let mut units = t.selected().await?;
            t.require_all_selected(&units)?;
            let Some(r) = units
                .iter()
                .position(|u| u.status.kind == strongroom_engine::admin::UnitKind::Recovery)
            else {
                return Err("auto-mk-rotate needs a recovery unit among the selected units".into());
            };
            if t.plan {
                let mut l = vec![format!("unit {}: gen_random (into the new register) — 1 signature; commit — signature threshold", units[r].short())];
                for (i, u) in units.iter().enumerate() {
                    if i != r {
                        l.push(format!("unit {}: gen_importer — 1; export (new) from the recovery unit — signature threshold; import_transfer — 1; commit — signature threshold", u.short()));
                    }
                }
                l.extend(Tke::rotate_plan(&units));
                t.plan_or(l);
                return Ok(());
            }
            let currents: Vec<Option<String>> =
                units.iter().map(|u| u.status.current.vp.clone()).collect();
            if !same(&currents) || currents[0].is_none() {
                return Err(
                    "the selected units do not share one current master key (cryptounit-compare)"
                        .into(),
                );
            }
            let mut rec = units[r].clone();
            match rec.status.new.state.as_str() {
                "empty" => {
                    t.send(&mut rec, Cmd::GenRandom).await?;
                }
                _ => eprintln!(
                    "the recovery unit's new register is already loaded: resuming with it"
                ),
            }
            let vp = rec.status.new.vp.clone().ok_or("no new master key")?;
            if rec.status.new.state == "full_uncommitted" {
                t.send(&mut rec, Cmd::Commit { vp: vp.clone() }).await?;
            }
            for (i, target) in units.iter_mut().enumerate() {
                if i == r {
                    continue;
                }
                match target.status.new.vp.clone().as_deref() {
                    Some(v) if v == vp => {
                        if target.status.new.state == "full_uncommitted" {
                            t.send(target, Cmd::Commit { vp: vp.clone() }).await?;
                        }
                    }
                    Some(_) => return Err(format!("unit {}'s new register holds another key; clear it (cryptounit-mk-clrnew) and run again", target.short())),
                    None => {
                        eprintln!("transferring the new master key to unit {}", target.short());
                        t.transfer(&mut rec, target, Which::New).await?;
                    }
                }
            }
            units[r] = rec;
            t.rotate(&mut units, batch).await?;
        }
        TkeCmd::AutoMkRecover => {
            let mut units = t.selected().await?;
            let Some(r) = units.iter().position(|u| {
                u.status.kind == strongroom_engine::admin::UnitKind::Recovery
                    && u.status.current.state == "valid"
            }) else {
                return Err("auto-mk-recover needs a recovery unit with a valid current master key among the selected units".into());
            };
            let targets: Vec<usize> = (0..units.len())
                .filter(|i| *i != r && units[*i].status.current.state == "empty")
                .collect();
            if targets.is_empty() {
                return Err(
                    "no selected unit has an empty current register: nothing to recover".into(),
                );
            }
            let src = units[r].status.clone();
            if t.plan {
                let mut l = Vec::new();
                for i in &targets {
                    let u = &units[*i];
                    if u.status.mode == Mode::Imprint {
                        l.push(format!("unit {}: admin_add ×{} — 0 signatures (imprint); set_thresholds {}/{}; set_roster", u.short(), src.admins.len(), src.signature_threshold, src.revocation_threshold));
                    }
                    l.push(format!("unit {}: gen_importer — 1; export (current) from {} — signature threshold; import_transfer — 1; commit — signature threshold; finalize — 1", u.short(), units[r].short()));
                }
                t.plan_or(l);
                return Ok(());
            }
            let vp = src.current.vp.clone().unwrap_or_default();
            let mut rec = units[r].clone();
            for i in targets {
                let mut target = units[i].clone();
                if target.status.mode == Mode::Imprint {
                    // A zeroized unit: install the recovery unit's administrators (those whose
                    // keys are selected here), its thresholds and its roster.
                    t.load_keys()?;
                    let keys: Vec<(String, SigAlg, Zeroizing<Vec<u8>>)> = t
                        .keys
                        .as_deref()
                        .unwrap_or_default()
                        .iter()
                        .filter(|k| src.admins.iter().any(|a| a.ski == hex::encode(k.ski)))
                        .map(|k| (k.name.clone(), k.alg, k.pkcs8.clone()))
                        .collect();
                    if keys.len()
                        < usize::from(src.signature_threshold.max(src.revocation_threshold))
                    {
                        return Err("select the signature keys of enough of the recovery unit's administrators to re-install them".into());
                    }
                    eprintln!("unit {} is in imprint mode: installing {} administrator(s), thresholds and roster", target.short(), keys.len());
                    for (name, alg, pkcs8) in &keys {
                        let c = admin_add_command(&t.p, instance, target.id, name, *alg, pkcs8)
                            .map_err(|e| e.to_string())?;
                        t.send(&mut target, c).await?;
                    }
                    t.send(
                        &mut target,
                        Cmd::SetThresholds {
                            sign: src.signature_threshold,
                            revoke: src.revocation_threshold,
                        },
                    )
                    .await?;
                    t.send(
                        &mut target,
                        Cmd::SetRoster {
                            units: src.roster.clone(),
                        },
                    )
                    .await?;
                }
                eprintln!("recovering the master key into unit {}", target.short());
                t.transfer(&mut rec, &mut target, Which::Current).await?;
                t.send(&mut target, Cmd::Finalize { vp: vp.clone() })
                    .await?;
                units[i] = target;
            }
            print(
                t.out,
                format!("master key {vp} recovered"),
                &json!({"recovered_vp": vp.to_string()}),
            );
        }
        _ => {}
    }
    Ok(())
}
