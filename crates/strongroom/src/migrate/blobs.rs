//! `strongroom migrate blobs`: moves GREP11 key blobs that an application keeps (HPCS's
//! GREP11, or another Strongroom) to Strongroom's GREP11, without their values ever being
//! in the clear outside the two services.
//!
//! The way across, set up once per run:
//! 1. the source generates an RSA-3072 key pair whose private half may only unwrap;
//! 2. Strongroom imports the source's public key (`CKM_IBM_TRANSPORTKEY`), generates an
//!    AES-256 transport key and wraps it under that public key (RSA-OAEP with SHA-256);
//! 3. the source unwraps the transport key, which may only wrap there, and the two check
//!    values must agree.
//!
//! Each extractable key is then wrapped at the source under the transport key
//! (`CKM_AES_CBC_PAD`) and unwrapped by Strongroom with the attributes the source reports.
//! The moved key is checked by use where its attributes allow it: the same deterministic
//! encryption (AES) or MAC (generic secret) at both ends, the same public key for private
//! keys. Keys whose `CKA_EXTRACTABLE` is false cannot leave the source's HSM; they are
//! listed with the re-key procedure. Public keys (MACed SPKIs) are imported directly.
//!
//! The output is JSON lines `{"name", "blob", "old_sha256", "class", "checked"}`; names
//! already in it are skipped by the next run, so a killed run goes on where it stopped.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use strongroom_client::grep11::pb::{self, attribute_value::OneAttr, crypto_client::CryptoClient};
use strongroom_client::grep11::{channel, grep11_error_of, Timeouts, Transport};
use strongroom_client::Client;
use strongroom_engine::CryptoProvider;
use strongroom_model::pkcs11::{cka, ckk, ckm, cko, Cka, Ckm};
use tonic::transport::Channel;

use crate::error::Error;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One GREP11 service and the credentials its calls carry.
pub(crate) struct Side {
    /// "source" or "Strongroom", for messages.
    name: &'static str,
    stub: CryptoClient<Channel>,
    /// Holds the API key or token, and exchanges and refreshes it.
    rest: Client,
}

/// Where a GREP11 service listens: `host:port` (TLS), `https://host:port`, or
/// `http://host:port` (plain: a loopback dev listener).
pub(crate) fn parse_endpoint(s: &str) -> Result<(String, u16, bool), Error> {
    let (tls, rest) = match s.split_once("://") {
        Some(("http", r)) => (false, r),
        Some(("https", r)) => (true, r),
        Some(_) => return Err(Error::usage(format!("{s}: the scheme is http or https"))),
        None => (true, s),
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| Error::usage(format!("{s}: give the GREP11 endpoint as host:port")))?;
    Ok((host.trim_matches(['[', ']']).to_string(), port, tls))
}

impl Side {
    /// Connects to `endpoint`; `trust` verifies it when it speaks TLS.
    pub(crate) async fn connect(
        name: &'static str,
        endpoint: &str,
        trust: strongroom_client::Trust,
        rest: Client,
    ) -> Result<Side, Error> {
        let (host, port, tls) = parse_endpoint(endpoint)?;
        let transport = if tls {
            Transport::Tls {
                trust,
                identity: None,
            }
        } else {
            Transport::Plain
        };
        let ch = channel(&host, port, &transport, Timeouts::default())
            .await
            .map_err(|e| Error::other(format!("{name} GREP11: {e}")))?;
        Ok(Side {
            name,
            stub: CryptoClient::new(ch).max_decoding_message_size(64 << 20),
            rest,
        })
    }

    async fn req<T>(&self, msg: T) -> Result<tonic::Request<T>, Error> {
        let mut r = tonic::Request::new(msg);
        if let Some(t) = self.rest.bearer_token().await? {
            let v = format!("Bearer {t}")
                .parse()
                .map_err(|_| Error::other(format!("the {} token is no header", self.name)))?;
            r.metadata_mut().insert("authorization", v);
        }
        if let Some(i) = self.rest.instance().and_then(|i| i.parse().ok()) {
            r.metadata_mut().insert("bluemix-instance", i);
        }
        Ok(r)
    }

    /// A refusal in words: the step, the side, and the CK_RV with the server's detail.
    fn refused(&self, step: &str, s: &tonic::Status) -> Error {
        let why = match grep11_error_of(s) {
            Some(e) => format!("CKR 0x{:08x}: {}", e.code, e.detail),
            None => format!("{:?}: {}", s.code(), s.message()),
        };
        Error::other(format!("{} refused {step}: {why}", self.name))
    }

    async fn generate_key(&self, m: Ckm, t: Template) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let req = pb::GenerateKeyRequest {
            mech: Some(mech(m, None)),
            template: t.0,
        };
        let r = self.stub.clone().generate_key(self.req(req).await?).await;
        let r = r
            .map_err(|s| self.refused("to generate a key", &s))?
            .into_inner();
        Ok((blob_of(r.key, r.key_bytes), r.check_sum))
    }

    async fn generate_pair(
        &self,
        m: Ckm,
        public: Template,
        private: Template,
    ) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let req = pb::GenerateKeyPairRequest {
            mech: Some(mech(m, None)),
            priv_key_template: private.0,
            pub_key_template: public.0,
        };
        let r = self
            .stub
            .clone()
            .generate_key_pair(self.req(req).await?)
            .await;
        let r = r
            .map_err(|s| self.refused("to generate a key pair", &s))?
            .into_inner();
        Ok((
            blob_of(r.priv_key, r.priv_key_bytes),
            blob_of(r.pub_key, r.pub_key_bytes),
        ))
    }

    async fn wrap(&self, key: &[u8], kek: &[u8], m: pb::Mechanism) -> Result<Vec<u8>, Error> {
        let req = pb::WrapKeyRequest {
            mech: Some(m),
            key: Some(kb(key)),
            ke_k: Some(kb(kek)),
            ..Default::default()
        };
        let r = self.stub.clone().wrap_key(self.req(req).await?).await;
        Ok(r.map_err(|s| self.refused("to wrap the key", &s))?
            .into_inner()
            .wrapped)
    }

    /// UnwrapKey: the new blob and its check sum (a KCV for secret keys, the SPKI for
    /// asymmetric ones).
    async fn unwrap(
        &self,
        wrapped: &[u8],
        kek: &[u8],
        m: pb::Mechanism,
        t: Template,
    ) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let req = pb::UnwrapKeyRequest {
            wrapped: wrapped.to_vec(),
            mech: Some(m),
            template: t.0,
            ke_k: Some(kb(kek)),
            ..Default::default()
        };
        let r = self.stub.clone().unwrap_key(self.req(req).await?).await;
        let r = r
            .map_err(|s| self.refused("to unwrap the key", &s))?
            .into_inner();
        Ok((blob_of(r.unwrapped, r.unwrapped_bytes), r.check_sum))
    }

    /// The attributes of `blob` among `which` that it has (asked together, then one by one
    /// when the service refuses one of them).
    async fn attributes(&self, blob: &[u8], which: &[Cka]) -> Result<HashMap<u64, OneAttr>, Error> {
        let ask = |which: &[Cka]| pb::GetAttributeValueRequest {
            object: blob.to_vec(),
            attributes: which
                .iter()
                .map(|a| (a.0, pb::AttributeValue { one_attr: None }))
                .collect(),
            ..Default::default()
        };
        let decode = |r: pb::GetAttributeValueResponse| {
            let mut out: HashMap<u64, OneAttr> = r
                .attributes
                .into_iter()
                .filter_map(|(k, v)| Some((k, v.one_attr?)))
                .collect();
            for (k, v) in r.attributes_bytes {
                out.entry(k).or_insert(OneAttr::AttributeB(v));
            }
            out
        };
        match self
            .stub
            .clone()
            .get_attribute_value(self.req(ask(which)).await?)
            .await
        {
            Ok(r) => return Ok(decode(r.into_inner())),
            Err(s)
                if s.code() == tonic::Code::Unauthenticated
                    || s.code() == tonic::Code::PermissionDenied =>
            {
                return Err(self.refused("to read the key's attributes", &s))
            }
            Err(_) => {}
        }
        let mut out = HashMap::new();
        for a in which {
            let r = self
                .stub
                .clone()
                .get_attribute_value(self.req(ask(std::slice::from_ref(a))).await?)
                .await;
            match r {
                Ok(r) => out.extend(decode(r.into_inner())),
                Err(s) if *a == cka::CLASS => {
                    return Err(self.refused("to read the key's class", &s))
                }
                Err(_) => {}
            }
        }
        Ok(out)
    }

    /// A deterministic use of a secret key: AES-CBC of a fixed block, or an HMAC.
    async fn fingerprint(
        &self,
        blob: &[u8],
        key_type: u64,
        attrs: &HashMap<u64, OneAttr>,
    ) -> Result<Option<Vec<u8>>, Error> {
        let flag = |a: Cka| matches!(attrs.get(&a.0), Some(OneAttr::AttributeTf(true)));
        let data = b"strongroom migrate: same key at both ends".to_vec();
        if key_type == ckk::AES.0 && flag(cka::ENCRYPT) {
            let req = pb::EncryptSingleRequest {
                key: Some(kb(blob)),
                mech: Some(mech(ckm::AES_CBC_PAD, Some(vec![0; 16]))),
                plain: data,
                ..Default::default()
            };
            let r = self.stub.clone().encrypt_single(self.req(req).await?).await;
            return Ok(Some(
                r.map_err(|s| self.refused("to encrypt with the key", &s))?
                    .into_inner()
                    .ciphered,
            ));
        }
        if key_type == ckk::GENERIC_SECRET.0 && flag(cka::SIGN) {
            let req = pb::SignSingleRequest {
                priv_key: Some(kb(blob)),
                mech: Some(mech(ckm::SHA256_HMAC, None)),
                data,
                ..Default::default()
            };
            let r = self.stub.clone().sign_single(self.req(req).await?).await;
            return Ok(Some(
                r.map_err(|s| self.refused("to MAC with the key", &s))?
                    .into_inner()
                    .signature,
            ));
        }
        Ok(None)
    }
}

/// A GREP11 template.
#[derive(Default)]
struct Template(HashMap<u64, pb::AttributeValue>);

impl Template {
    fn with(mut self, a: Cka, v: OneAttr) -> Self {
        self.0.insert(a.0, pb::AttributeValue { one_attr: Some(v) });
        self
    }
    fn flag(self, a: Cka, on: bool) -> Self {
        self.with(a, OneAttr::AttributeTf(on))
    }
    fn int(self, a: Cka, v: u64) -> Self {
        self.with(a, OneAttr::AttributeI(v as i64))
    }
}

fn mech(m: Ckm, iv: Option<Vec<u8>>) -> pb::Mechanism {
    pb::Mechanism {
        mechanism: m.0,
        parameter: iv.map(pb::mechanism::Parameter::ParameterB),
    }
}

fn oaep() -> pb::Mechanism {
    pb::Mechanism {
        mechanism: ckm::RSA_PKCS_OAEP.0,
        parameter: Some(pb::mechanism::Parameter::RsaoaepParameter(
            pb::RsaoaepParm {
                hash_mech: ckm::SHA256.0,
                mgf: pb::rsaoaep_parm::Mask::CkgMgf1Sha256 as i32,
                ..Default::default()
            },
        )),
    }
}

fn kb(blob: &[u8]) -> pb::KeyBlob {
    pb::KeyBlob {
        key_blobs: vec![blob.to_vec()],
        ..Default::default()
    }
}

/// The blob of an answer: the KeyBlob's first, else the plain bytes field.
fn blob_of(k: Option<pb::KeyBlob>, bytes: Vec<u8>) -> Vec<u8> {
    k.and_then(|k| k.key_blobs.into_iter().next())
        .filter(|b| !b.is_empty())
        .unwrap_or(bytes)
}

/// The DER element a MACed SPKI starts with: the SubjectPublicKeyInfo itself.
fn spki_prefix(b: &[u8]) -> Option<&[u8]> {
    if b.first() != Some(&0x30) {
        return None;
    }
    let first = *b.get(1)?;
    let (len, head) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = b
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        (len, 2 + n)
    };
    b.get(..head.checked_add(len)?)
}

/// The transport key, present at both ends.
struct Way {
    /// The AES transport key's blob at the source (wrap only).
    source: Vec<u8>,
    /// Its blob in Strongroom (unwrap only).
    dest: Vec<u8>,
}

async fn open_way(src: &Side, dst: &Side) -> Result<Way, Error> {
    // 1. The source's receiving key pair.
    let (src_priv, src_pub) = src
        .generate_pair(
            ckm::RSA_PKCS_KEY_PAIR_GEN,
            Template::default()
                .int(cka::MODULUS_BITS, 3072)
                .with(cka::PUBLIC_EXPONENT, OneAttr::AttributeB(vec![1, 0, 1]))
                .flag(cka::WRAP, true)
                .flag(cka::ENCRYPT, false)
                .flag(cka::VERIFY, false),
            Template::default()
                .flag(cka::UNWRAP, true)
                .flag(cka::DECRYPT, false)
                .flag(cka::SIGN, false)
                .flag(cka::SENSITIVE, true)
                .flag(cka::EXTRACTABLE, false),
        )
        .await?;
    let spki = spki_prefix(&src_pub)
        .ok_or_else(|| Error::other("the source's public key is not a DER SubjectPublicKeyInfo"))?;
    // 2. Strongroom imports it, and wraps a new AES transport key under it.
    let (src_pub_here, _) = dst
        .unwrap(
            spki,
            spki,
            mech(ckm::IBM_TRANSPORTKEY, None),
            Template::default()
                .int(cka::CLASS, cko::PUBLIC_KEY.0)
                .int(cka::KEY_TYPE, ckk::RSA.0)
                .flag(cka::WRAP, true),
        )
        .await?;
    let (dest, kcv) = dst
        .generate_key(
            ckm::AES_KEY_GEN,
            Template::default()
                .int(cka::VALUE_LEN, 32)
                .flag(cka::UNWRAP, true)
                .flag(cka::WRAP, false)
                .flag(cka::ENCRYPT, false)
                .flag(cka::DECRYPT, false)
                .flag(cka::EXTRACTABLE, true)
                .flag(cka::SENSITIVE, true),
        )
        .await?;
    let wrapped = dst.wrap(&dest, &src_pub_here, oaep()).await?;
    // 3. The source unwraps it for wrapping only.
    let (source, kcv_there) = src
        .unwrap(
            &wrapped,
            &src_priv,
            oaep(),
            Template::default()
                .int(cka::CLASS, cko::SECRET_KEY.0)
                .int(cka::KEY_TYPE, ckk::AES.0)
                .int(cka::VALUE_LEN, 32)
                .flag(cka::WRAP, true)
                .flag(cka::UNWRAP, false)
                .flag(cka::ENCRYPT, false)
                .flag(cka::DECRYPT, false)
                .flag(cka::EXTRACTABLE, false)
                .flag(cka::SENSITIVE, true),
        )
        .await?;
    if kcv.len() >= 3 && kcv_there.len() >= 3 && kcv[..3] != kcv_there[..3] {
        return Err(Error::check(
            "the transport key's check values differ at the two ends: nothing was moved",
        ));
    }
    Ok(Way { source, dest })
}

/// A blob to move, as the application gives it.
#[derive(Deserialize)]
struct BlobIn {
    name: String,
    /// Base64 of the blob (KeyBlobs[0]).
    blob: String,
}

/// A moved blob, one line of the output.
#[derive(Serialize, Deserialize)]
pub(crate) struct Moved {
    name: String,
    /// Base64 of the new blob, for Strongroom's GREP11.
    blob: String,
    /// SHA-256 of the old blob, hex.
    old_sha256: String,
    /// secret, private or public.
    class: String,
    /// How the move was checked: "same-ciphertext", "same-mac", "same-public-key",
    /// or "transport-only" when the key's attributes allow no deterministic use.
    checked: String,
}

/// A blob that stays behind, and what to do instead.
#[derive(Serialize, Clone)]
pub(crate) struct Left {
    name: String,
    reason: String,
    procedure: String,
}

/// What a run did.
#[derive(Serialize, Default)]
pub(crate) struct BlobReport {
    /// With --dry-run: how many would move.
    would_move: usize,
    moved: usize,
    already_moved: usize,
    cannot_move: Vec<Left>,
    failed: Vec<Left>,
}

impl BlobReport {
    pub(crate) fn human(&self, out: &Path) -> String {
        if self.would_move > 0 {
            return self.cannot_move.iter().fold(
                format!(
                    "{} blob(s) would move (dry run: nothing changed)\n",
                    self.would_move
                ),
                |s, l| {
                    format!(
                        "{s}cannot move {}: {}\n  what to do: {}\n",
                        l.name, l.reason, l.procedure
                    )
                },
            );
        }
        let mut s = format!(
            "{} blob(s) moved, {} moved by an earlier run; new blobs in {}\n",
            self.moved,
            self.already_moved,
            out.display()
        );
        for l in &self.cannot_move {
            s.push_str(&format!(
                "cannot move {}: {}\n  what to do: {}\n",
                l.name, l.reason, l.procedure
            ));
        }
        for l in &self.failed {
            s.push_str(&format!(
                "FAILED {}: {}\n  {}\n",
                l.name, l.reason, l.procedure
            ));
        }
        s
    }

    pub(crate) fn failures(&self) -> usize {
        self.failed.len()
    }
}

const REKEY: &str =
    "generate a new key in Strongroom (GREP11 GenerateKey, or `strongroom key create`), \
re-encrypt the data this key protects while the source still answers, then switch the \
application to the new key (docs/runbooks/leaving-ibm.md, \"Keys that cannot move\")";

/// Attributes copied from the source's key to its new blob.
const FLAGS: [Cka; 11] = [
    cka::ENCRYPT,
    cka::DECRYPT,
    cka::SIGN,
    cka::VERIFY,
    cka::WRAP,
    cka::UNWRAP,
    cka::DERIVE,
    cka::EXTRACTABLE,
    cka::SENSITIVE,
    cka::PRIVATE,
    cka::MODIFIABLE,
];

/// Reads the blobs of `input` (JSON lines `{"name", "blob"}`), moves each that `out` does
/// not name yet, and appends each moved one to `out`. With `dry_run`, only says what
/// would move.
pub(crate) async fn move_blobs(
    src: &Side,
    dst: &Side,
    input: &Path,
    out: &Path,
    dry_run: bool,
) -> Result<BlobReport, Error> {
    let text = std::fs::read_to_string(input)
        .map_err(Error::context(format!("cannot read {}", input.display())))?;
    let mut blobs = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let b: BlobIn = serde_json::from_str(line).map_err(|e| {
            Error::usage(format!(
                "{} line {}: expected {{\"name\": …, \"blob\": \"<base64>\"}}: {e}",
                input.display(),
                i + 1
            ))
        })?;
        let bytes = B64.decode(b.blob.trim()).map_err(|_| {
            Error::usage(format!(
                "{} line {}: the blob is not base64",
                input.display(),
                i + 1
            ))
        })?;
        blobs.push((b.name, bytes));
    }
    let done: std::collections::HashSet<String> = match std::fs::read_to_string(out) {
        Ok(t) => t
            .lines()
            .filter_map(|l| serde_json::from_str::<Moved>(l).ok())
            .map(|m| m.name)
            .collect(),
        Err(_) => Default::default(),
    };
    let mut report = BlobReport::default();
    let mut way = None;
    let mut file = None;
    let bar = super::progress(blobs.len() as u64, "blobs");
    for (name, blob) in blobs {
        bar.inc(1);
        if done.contains(&name) {
            report.already_moved += 1;
            continue;
        }
        let attrs = src
            .attributes(&blob, &[cka::CLASS, cka::KEY_TYPE, cka::EXTRACTABLE])
            .await;
        let attrs = match attrs {
            Ok(a) => a,
            Err(e) => {
                report.failed.push(Left {
                    name,
                    reason: e.to_string(),
                    procedure:
                        "check the blob comes from this source and its credentials; run again"
                            .into(),
                });
                continue;
            }
        };
        let int = |a: Cka| match attrs.get(&a.0) {
            Some(OneAttr::AttributeI(v)) => Some(*v as u64),
            Some(OneAttr::AttributeB(b)) if b.len() <= 8 => Some(
                b.iter()
                    .rev()
                    .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
            ),
            _ => None,
        };
        let class = int(cka::CLASS).unwrap_or(u64::MAX);
        let extractable = matches!(
            attrs.get(&cka::EXTRACTABLE.0),
            Some(OneAttr::AttributeTf(true))
        );
        if class != cko::PUBLIC_KEY.0 && !extractable {
            report.cannot_move.push(Left {
                name,
                reason:
                    "CKA_EXTRACTABLE is false: its value cannot leave the source's HSM, by design"
                        .into(),
                procedure: REKEY.into(),
            });
            continue;
        }
        if dry_run {
            report.would_move += 1;
            continue;
        }
        if way.is_none() && class != cko::PUBLIC_KEY.0 {
            way = Some(open_way(src, dst).await?);
        }
        match move_one(
            src,
            dst,
            way.as_ref(),
            &name,
            &blob,
            class,
            int(cka::KEY_TYPE),
        )
        .await
        {
            Ok(m) => {
                let f = match &mut file {
                    Some(f) => f,
                    None => file.insert(
                        std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(out)
                            .map_err(Error::context(format!("cannot open {}", out.display())))?,
                    ),
                };
                let mut line = serde_json::to_vec(&m)?;
                line.push(b'\n');
                f.write_all(&line)?;
                f.sync_data()?;
                report.moved += 1;
            }
            Err(e) => report.failed.push(Left {
                name,
                reason: e.to_string(),
                procedure: "nothing was written for this blob; run again once the cause is fixed"
                    .into(),
            }),
        }
    }
    bar.finish_and_clear();
    Ok(report)
}

async fn move_one(
    src: &Side,
    dst: &Side,
    way: Option<&Way>,
    name: &str,
    blob: &[u8],
    class: u64,
    key_type: Option<u64>,
) -> Result<Moved, Error> {
    let p = strongroom_crypto_awslc::AwsLcProvider;
    let old_sha256 = hex::encode(p.sha256(&[blob]));
    let key_type =
        key_type.ok_or_else(|| Error::other("the source does not report CKA_KEY_TYPE"))?;
    let mut which: Vec<Cka> = FLAGS.to_vec();
    which.extend([cka::VALUE_LEN, cka::LABEL, cka::ID, cka::PUBLIC_KEY_INFO]);
    let attrs = src.attributes(blob, &which).await?;
    let mut t = Template::default()
        .int(cka::CLASS, class)
        .int(cka::KEY_TYPE, key_type);
    for a in FLAGS {
        if let Some(v @ OneAttr::AttributeTf(_)) = attrs.get(&a.0) {
            t = t.with(a, v.clone());
        }
    }
    for a in [cka::LABEL, cka::ID] {
        if let Some(v @ OneAttr::AttributeB(b)) = attrs.get(&a.0) {
            if !b.is_empty() {
                t = t.with(a, v.clone());
            }
        }
    }
    if class == cko::PUBLIC_KEY.0 {
        let spki = spki_prefix(blob).ok_or_else(|| {
            Error::other("the public key blob does not start with a DER SubjectPublicKeyInfo")
        })?;
        let (new, _) = dst
            .unwrap(spki, spki, mech(ckm::IBM_TRANSPORTKEY, None), t)
            .await?;
        let same = spki_prefix(&new) == Some(spki);
        return moved(
            name,
            new,
            old_sha256,
            "public",
            if same {
                "same-public-key"
            } else {
                "transport-only"
            },
        );
    }
    let way = way.ok_or_else(|| Error::other("no transport key"))?;
    if class == cko::SECRET_KEY.0 {
        if let Some(OneAttr::AttributeI(n)) = attrs.get(&cka::VALUE_LEN.0) {
            t = t.int(cka::VALUE_LEN, *n as u64);
        }
    }
    let mut iv = [0u8; 16];
    p.fill_random(&mut iv)
        .map_err(|_| Error::other("the random generator failed"))?;
    let wrapped = src
        .wrap(blob, &way.source, mech(ckm::AES_CBC_PAD, Some(iv.to_vec())))
        .await?;
    let (new, sum) = dst
        .unwrap(
            &wrapped,
            &way.dest,
            mech(ckm::AES_CBC_PAD, Some(iv.to_vec())),
            t,
        )
        .await?;
    if class == cko::PRIVATE_KEY.0 {
        let checked = match (attrs.get(&cka::PUBLIC_KEY_INFO.0), spki_prefix(&sum)) {
            (Some(OneAttr::AttributeB(old)), Some(here)) if !old.is_empty() => {
                if spki_prefix(old) != Some(here) {
                    return Err(Error::check(
                        "the moved private key's public key differs from the source's",
                    ));
                }
                "same-public-key"
            }
            _ => "transport-only",
        };
        return moved(name, new, old_sha256, "private", checked);
    }
    let here = dst.fingerprint(&new, key_type, &attrs).await?;
    let checked = match (src.fingerprint(blob, key_type, &attrs).await?, here) {
        (Some(a), Some(b)) if a == b => {
            if key_type == ckk::AES.0 {
                "same-ciphertext"
            } else {
                "same-mac"
            }
        }
        (Some(_), Some(_)) => {
            return Err(Error::check(
                "the moved key does not compute what the source's key computes",
            ))
        }
        _ => "transport-only",
    };
    moved(name, new, old_sha256, "secret", checked)
}

fn moved(
    name: &str,
    new: Vec<u8>,
    old_sha256: String,
    class: &str,
    checked: &str,
) -> Result<Moved, Error> {
    Ok(Moved {
        name: name.to_string(),
        blob: B64.encode(new),
        old_sha256,
        class: class.into(),
        checked: checked.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_spki_prefixes_are_read() {
        assert_eq!(
            parse_endpoint("http://127.0.0.1:9876").unwrap(),
            ("127.0.0.1".into(), 9876, false)
        );
        assert_eq!(
            parse_endpoint("ep11.us-south.hs-crypto.cloud.ibm.com:9876").unwrap(),
            ("ep11.us-south.hs-crypto.cloud.ibm.com".into(), 9876, true)
        );
        assert!(parse_endpoint("ftp://a:1").is_err());
        assert!(parse_endpoint("no-port").is_err());
        // A DER SEQUENCE with a long-form length, followed by a trailer.
        let mut b = vec![0x30, 0x81, 0x03, 1, 2, 3];
        b.extend([0x04, 0x01, 9]);
        assert_eq!(spki_prefix(&b), Some(&b[..6]));
        assert_eq!(spki_prefix(&[0x30, 0x05, 1]), None);
        assert_eq!(spki_prefix(&[0x04, 0x00]), None);
    }
}
