//! A ceremony session: the selected units on every endpoint, the workstation's keys, and
//! the signing, sending and verifying of administrative commands.

use super::*;
use crate::error::Error;

/// A unit as seen by this workstation.
#[derive(Clone)]
pub(super) struct Unit {
    pub(super) id: UnitId,
    pub(super) url: String,
    pub(super) client: usize,
    pub(super) identity: Vec<u8>,
    pub(super) status: StatusView,
    /// The zone of the node hosting the unit (`serve --zone`), if it has one.
    pub(super) zone: Option<String>,
}

impl Unit {
    pub(super) fn short(&self) -> String {
        let s = self.id.to_string();
        format!("{} ({:?})", &s[..8], self.status.kind).to_lowercase()
    }
}

pub(super) struct Tke {
    pub(super) p: AwsLcProvider,
    pub(super) dir: PathBuf,
    pub(super) ws: Workstation,
    pub(super) pw: Passwords,
    pub(super) plan: bool,
    pub(super) yes: bool,
    pub(super) out: Output,
    pub(super) clients: Vec<(String, Client)>,
    pub(super) instance: InstanceId,
    pub(super) keys: Option<Vec<SigKey>>,
    /// `--pkcs11-module`.
    pub(super) module: Option<PathBuf>,
    /// The selected cards, logged in, with the signature keys they hold.
    pub(super) cards: Option<Vec<(crate::card::Card, Vec<crate::card::CardKey>)>>,
    /// With `TKE_SIGNSERV_URL`: the signing service's URL and the keys `SIGNSERVKEYS` lists.
    pub(super) service: Option<(String, Vec<signserv::ServiceKey>)>,
    /// The last signed response (an importer key or a transfer is passed on as received).
    pub(super) last_signed: Option<SignedResponse>,
    /// Every unit of the instance seen by the last discovery (id, short name).
    pub(super) known: Vec<(UnitId, String)>,
}

pub(super) fn required(s: &StatusView, cmd: &Cmd) -> usize {
    // A command the unit refuses in its mode is sent unsigned, and the unit says why.
    required_signatures(s.mode, s.signature_threshold, s.revocation_threshold, cmd).unwrap_or(0)
}

pub(super) fn decode_body(r: &SignedResponse) -> Result<ResponseBody, Error> {
    let bytes = B64
        .decode(&r.body)
        .map_err(|_| Error::check("a unit response is not base64"))?;
    serde_json::from_slice(&bytes).map_err(Error::context("a unit response is malformed"))
}

pub(super) fn hex32(s: &str) -> Result<[u8; 32], Error> {
    hex::decode(s.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| Error::other(format!("'{s}' is not 64 hex digits")))
}

impl Tke {
    pub(super) fn confirm(&self, question: &str) -> Result<(), Error> {
        if self.yes {
            return Ok(());
        }
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return Err(Error::usage(format!(
                "{question} — pass --yes to confirm when not running interactively"
            )));
        }
        eprint!("{question} [y/N] ");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(Error::from)?;
        if line.trim().eq_ignore_ascii_case("y") || line.trim().eq_ignore_ascii_case("yes") {
            Ok(())
        } else {
            Err(Error::other("cancelled"))
        }
    }

    /// Checks a response against the unit's pinned identity key (pinning it on first use).
    pub(super) fn accept(
        &mut self,
        url: &str,
        r: &SignedResponse,
    ) -> Result<(ResponseBody, Vec<u8>), Error> {
        let body = decode_body(r)?;
        let status_key = match &body.output {
            UnitOutput::Status(s) => Some(s.identity_key.clone()),
            UnitOutput::Importer { status, .. } => Some(status.identity_key.clone()),
            UnitOutput::Transfer { .. } => None,
        };
        let id = body.unit.to_string();
        let key_b64 = match self.ws.pinned.get(&id) {
            Some(pinned) => {
                if let Some(k) = &status_key {
                    if *k != pinned.identity_key {
                        return Err(Error::check(format!("unit {id} now presents a different identity key than the one pinned on this workstation: refusing to talk to it (if the unit was replaced on purpose, remove it from workstation.json)")));
                    }
                }
                pinned.identity_key.clone()
            }
            None => {
                let k = status_key.ok_or_else(|| {
                    Error::usage(format!("unit {id} is unknown to this workstation"))
                })?;
                let kind = match &body.output {
                    UnitOutput::Status(s) => format!("{:?}", s.kind).to_lowercase(),
                    _ => "?".into(),
                };
                let raw = B64
                    .decode(&k)
                    .map_err(|_| Error::check("bad identity key"))?;
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
            .map_err(|_| Error::check("bad pinned identity key"))?;
        let body =
            verify_response(&self.p, &key, r).map_err(Error::context(format!("unit {id}")))?;
        if body.instance != self.instance {
            return Err(Error::other(format!(
                "unit {id} answered for another instance"
            )));
        }
        Ok((body, key))
    }

    pub(super) async fn discover(&mut self) -> Result<Vec<Unit>, Error> {
        let mut units = Vec::new();
        for i in 0..self.clients.len() {
            let (url, client) = (self.clients[i].0.clone(), self.clients[i].1.clone());
            let r = client
                .get("/api/v2/crypto_units")
                .await
                .map_err(Error::context(url.to_string()))?;
            let zone = r.body["zone"].as_str().map(String::from);
            let list: Vec<SignedResponse> = serde_json::from_value(r.body["units"].clone())
                .map_err(Error::context(format!("{url}: unexpected answer")))?;
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
                        zone: zone.clone(),
                    });
                }
            }
        }
        units.sort_by_key(|u| (format!("{:?}", u.status.kind), u.id));
        self.known = units.iter().map(|u| (u.id, u.short())).collect();
        self.ws.save(&self.dir)?;
        Ok(units)
    }

    /// How many keys the instance's keystore holds, deleted keys that can still be
    /// restored included (Key Protect's `HEAD /api/v2/keys` over every state).
    pub(super) async fn keys_held(&self) -> Result<u64, Error> {
        let (url, client) = self
            .clients
            .first()
            .ok_or_else(|| Error::usage("no endpoint: pass --url"))?;
        let r = client
            .request(Method::HEAD, "/api/v2/keys?state=0,1,2,3,5", None, &[])
            .await
            .map_err(Error::context(format!(
                "{url}: counting the instance's keys"
            )))?;
        r.key_total
            .ok_or_else(|| Error::other(format!("{url}: the answer has no Key-Total")))
    }

    pub(super) async fn selected(&mut self) -> Result<Vec<Unit>, Error> {
        let all = self.discover().await?;
        let sel: Vec<Unit> = all
            .into_iter()
            .filter(|u| self.ws.units.contains(&u.id.to_string()))
            .collect();
        if sel.is_empty() {
            return Err(Error::usage("no crypto units selected: list them with `strongroom tke cryptounits`, then `strongroom tke cryptounit-add --all` (or by number)"));
        }
        Ok(sel)
    }

    pub(super) fn load_keys(&mut self) -> Result<(), Error> {
        if self.keys.is_some() {
            return Ok(());
        }
        // With a signing service, its keys sign (IBM's sigkey commands do nothing then);
        // selected files and cards still sign too.
        if let Some(url) = signserv::url() {
            let mut keys = Vec::new();
            for (name, token) in signserv::listed(&self.dir, &self.pw)? {
                keys.push(signserv::open(&self.p, &url, &name, token)?);
            }
            self.service = Some((url, keys));
        }
        if self.ws.sigkeys.is_empty() && self.service.is_none() {
            return Err(Error::other(
                "no signature keys selected: `strongroom tke sigkey-sel <numbers>`",
            ));
        }
        let mut keys = Vec::new();
        let mut cards = Vec::new();
        for f in &self.ws.sigkeys {
            if f.starts_with("pkcs11:") {
                cards.push(self.open_card(f)?);
                continue;
            }
            let path = self.dir.join(f);
            let pw = self
                .pw
                .get(f, &format!("Password for signature key {f}: "))?;
            keys.push(files::open_sigkey(&self.p, &path, pw.as_bytes())?);
        }
        self.keys = Some(keys);
        self.cards = Some(cards);
        Ok(())
    }

    /// Opens the card `uri` names (its PIN asked once) and reads its signature keys.
    pub(super) fn open_card(
        &self,
        uri: &str,
    ) -> Result<(crate::card::Card, Vec<crate::card::CardKey>), Error> {
        open_card(&self.p, self.module.as_deref(), &self.pw, uri)
    }

    pub(super) async fn refresh(&mut self, u: &mut Unit) -> Result<(), Error> {
        let client = self.clients[u.client].1.clone();
        let r = client
            .get(&format!(
                "/api/v2/crypto_units/{}",
                urlencode(&u.id.to_string())
            ))
            .await
            .map_err(Error::context(format!("unit {}", u.short())))?;
        let sr: SignedResponse =
            serde_json::from_value(r.body).map_err(Error::context("unexpected answer"))?;
        let (body, _) = self.accept(&u.url, &sr)?;
        if let UnitOutput::Status(s) = body.output {
            u.status = *s;
        }
        Ok(())
    }

    /// Signs `cmd` for `u` with as many selected administrators as the unit requires and
    /// sends it; returns the verified response body and updates `u`.
    pub(super) async fn send(&mut self, u: &mut Unit, cmd: Cmd) -> Result<ResponseBody, Error> {
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
            if needed > 0 {
                self.load_keys()?;
            }
            let admins: Vec<&str> = u.status.admins.iter().map(|a| a.ski.as_str()).collect();
            let files: Vec<Signer<'_>> = self
                .keys
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|k| Signer {
                    alg: k.alg,
                    pkcs8: &k.pkcs8,
                    ski: k.ski,
                })
                .collect();
            let cards: Vec<crate::card::CardSigner<'_>> = self
                .cards
                .as_deref()
                .unwrap_or_default()
                .iter()
                .flat_map(|(card, keys)| {
                    keys.iter()
                        .map(move |k| crate::card::CardSigner::new(card, k))
                })
                .collect();
            let services: Vec<signserv::ServiceSigner<'_>> = self
                .service
                .as_ref()
                .map(|(url, keys)| {
                    keys.iter()
                        .map(|k| signserv::ServiceSigner::new(url, k))
                        .collect()
                })
                .unwrap_or_default();
            let signers: Vec<&dyn CommandSigner> = if needed == 0 {
                Vec::new()
            } else {
                let usable: Vec<&dyn CommandSigner> = files
                    .iter()
                    .map(|s| s as &dyn CommandSigner)
                    .chain(cards.iter().map(|s| s as &dyn CommandSigner))
                    .chain(services.iter().map(|s| s as &dyn CommandSigner))
                    .filter(|s| admins.contains(&hex::encode(s.ski()).as_str()))
                    .take(needed)
                    .collect();
                if usable.len() < needed {
                    return Err(Error::other(format!(
                        "'{name}' on unit {} needs {needed} administrator signature(s); the selected signature keys include {} administrator(s) of that unit (select more with sigkey-sel)",
                        u.short(),
                        usable.len()
                    )));
                }
                usable
            };
            match sign_command_by(&self.p, &body, &signers) {
                Ok(s) => s,
                Err(e) => {
                    return Err(cards
                        .iter()
                        .find_map(|c| c.take_failure())
                        .or_else(|| services.iter().find_map(|s| s.take_failure()))
                        .unwrap_or_else(|| Error::from(e)))
                }
            }
        };
        let client = self.clients[u.client].1.clone();
        let r = client
            .post(
                &format!(
                    "/api/v2/crypto_units/{}/commands",
                    urlencode(&u.id.to_string())
                ),
                Some(json!(signed)),
            )
            .await
            .map_err(Error::context(format!("unit {}: {name}", u.short())))?;
        let sr: SignedResponse =
            serde_json::from_value(r.body).map_err(Error::context("unexpected answer"))?;
        let (resp, _) = self.accept(&u.url, &sr)?;
        self.last_signed = Some(sr);
        let sent = B64
            .decode(&signed.body)
            .map_err(|_| Error::other("encoding"))?;
        if resp.request.as_deref() != Some(hex::encode(self.p.sha256(&[&sent])).as_str()) {
            return Err(Error::check(format!(
                "unit {} answered a different request",
                u.short()
            )));
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

    pub(super) fn plan_or(&self, lines: Vec<String>) -> bool {
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
    pub(super) async fn each(
        &mut self,
        units: &mut [Unit],
        cmds: Vec<Option<Cmd>>,
        confirm: Option<String>,
    ) -> Result<bool, Error> {
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

    pub(super) fn sig_desc(s: &StatusView, cmd: &Cmd) -> String {
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

    pub(super) fn step(u: &Unit, cmd: &Cmd) -> String {
        format!(
            "unit {}: {} — {}",
            u.short(),
            cmd.name(),
            Self::sig_desc(&u.status, cmd)
        )
    }

    pub(super) async fn importer(
        &mut self,
        u: &mut Unit,
    ) -> Result<(SignedResponse, [u8; 16], Vec<u8>), Error> {
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
                    .ok_or_else(|| Error::other("bad importer id"))?;
                let pk = B64
                    .decode(&public_key)
                    .map_err(|_| Error::other("bad importer key"))?;
                // The signed response itself is what a recovery unit checks.
                let raw = self
                    .last_signed
                    .take()
                    .ok_or_else(|| Error::other("internal: response missing"))?;
                Ok((raw, id, pk))
            }
            _ => Err(Error::other("the unit did not return an importer key")),
        }
    }
}

pub(super) fn same<T: PartialEq>(v: &[T]) -> bool {
    v.windows(2).all(|w| w[0] == w[1])
}

/// Whether the units show the same verification pattern (or all none), compared in
/// constant time.
pub(super) fn same_vps(v: &[Option<String>]) -> bool {
    v.windows(2).all(|w| match (&w[0], &w[1]) {
        (None, None) => true,
        (a, b) => super::same_vp(a.as_deref(), b.as_deref()),
    })
}

pub(super) fn new_vp(u: &Unit) -> Option<String> {
    u.status.new.vp.clone()
}

impl Tke {
    pub(super) async fn transfer(
        &mut self,
        source: &mut Unit,
        target: &mut Unit,
        register: Which,
    ) -> Result<String, Error> {
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
            _ => return Err(Error::other("the recovery unit did not return a transfer")),
        };
        let transfer = self
            .last_signed
            .take()
            .ok_or_else(|| Error::other("internal: response missing"))?;
        self.send(target, Cmd::ImportTransfer { transfer }).await?;
        self.send(target, Cmd::Commit { vp: vp.clone() }).await?;
        Ok(vp)
    }

    pub(super) fn roster(units: &[Unit]) -> Vec<RosterEntry> {
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
    pub(super) fn require_all_selected(&self, units: &[Unit]) -> Result<(), Error> {
        let missing: Vec<&str> = self
            .known
            .iter()
            .filter(|(id, _)| !units.iter().any(|u| u.id == *id))
            .map(|(_, short)| short.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(Error::usage(format!(
                "a rotation needs every unit of the instance selected; not selected: {} (strongroom tke cryptounit-add --all)",
                missing.join(", ")
            )));
        }
        Ok(())
    }

    pub(super) async fn rotate(&mut self, units: &mut [Unit], batch: u32) -> Result<(), Error> {
        self.require_all_selected(units)?;
        let vps: Vec<Option<String>> = units.iter().map(new_vp).collect();
        let Some(Some(vp)) = vps.first().cloned() else {
            return Err(Error::other("the new master key register is empty: load (cryptounit-mk-load) and commit (cryptounit-mk-commit) a new master key first"));
        };
        if !same_vps(&vps) {
            return Err(Error::check("the selected units hold different new master keys (see cryptounit-mk); they must agree before a rotation"));
        }
        if let Some(u) = units
            .iter()
            .find(|u| u.status.new.state != "full_committed")
        {
            return Err(Error::other(format!(
                "unit {}'s new register is not committed (cryptounit-mk-commit)",
                u.short()
            )));
        }
        let currents: Vec<Option<String>> =
            units.iter().map(|u| u.status.current.vp.clone()).collect();
        if !same_vps(&currents) || currents[0].is_none() {
            return Err(Error::other("the selected units do not hold one and the same current master key; compare them (cryptounit-compare)"));
        }
        let op: Vec<usize> = (0..units.len())
            .filter(|i| units[*i].status.kind == strongroom_engine::admin::UnitKind::Operational)
            .collect();
        if op.is_empty() {
            return Err(Error::other(
                "select the operational units of the instance too",
            ));
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
                .post(
                    &format!("/api/v2/crypto_units/reencrypt?batch={batch}"),
                    None,
                )
                .await
                .map_err(Error::context(
                    "re-encryption (run the same command again to resume)",
                ))?;
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
                return Err(Error::other(format!("{unreadable} key version(s) are sealed under a master key the unit does not hold; they cannot be re-encrypted (see the server log)")));
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

    pub(super) fn rotate_plan(units: &[Unit]) -> Vec<String> {
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

    pub(super) fn print_units(&self, units: &[Unit], what: &str) {
        let v: Vec<serde_json::Value> = units.iter().map(|u| json!(u.status)).collect();
        print(self.out, self.units_text(units, what), &json!({"units": v}));
    }

    /// The units' `what` (admins, thresholds, registers) as a reader sees them.
    pub(super) fn units_text(&self, units: &[Unit], what: &str) -> String {
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

/// Opens the card `uri` names with the module given (or the URI's), its PIN asked once, and
/// reads the administrators' signature keys it holds.
pub(super) fn open_card(
    p: &AwsLcProvider,
    module: Option<&std::path::Path>,
    pw: &Passwords,
    uri: &str,
) -> Result<(crate::card::Card, Vec<crate::card::CardKey>), Error> {
    let uri: crate::card::CardUri = uri.parse()?;
    let module = crate::card::module_path(module, &uri)?;
    let card = crate::card::Card::open(&module, &uri, || crate::card::pin(pw, &uri))?;
    let mut keys = Vec::new();
    for name in card.sigkey_names()? {
        if let Some(k) = card.sigkey(p, &name)? {
            keys.push(k);
        }
    }
    if keys.is_empty() {
        return Err(Error::other(format!(
            "card {uri} holds no administrator signature key (`strongroom card init`)"
        )));
    }
    Ok((card, keys))
}
