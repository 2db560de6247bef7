//! The ceremony workstation's files (docs/formats.md, "Workstation files"): signature key
//! files (`*.sigkey`) and master key part files (`*.mkpart`), each a JSON document whose
//! secret is sealed with AES-256-GCM under a key derived from a password with Argon2id; every
//! header field is authenticated (AAD), so a description or verification pattern cannot be
//! moved onto another file. Plus the workstation state (`workstation.json`): selected
//! signature keys and units, and the pinned identity keys of the units seen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use strongroom_engine::admin::{part_vp_of, ski_of};
use strongroom_engine::{CryptoProvider, SigAlg, MASTER_KEY_LEN};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::node::write_private;

pub use strongroom_engine::admin::files::{open, seal};
pub use strongroom_engine::admin::files::{
    Aead, Header, HpcsFile, Kdf, ProtectedFile, DEFAULT_M_MIB, MKPART_FORMAT, SIGKEY_FORMAT,
};

pub fn new_header(format: &str, name: &str) -> Header {
    Header {
        format: format.into(),
        id: uuid::Uuid::new_v4().to_string(),
        name: name.into(),
        created: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        alg: None,
        public_key: None,
        ski: None,
        part_vp: None,
        kdf: Kdf {
            alg: String::new(),
            v: 0,
            m_kib: 0,
            t: 0,
            p: 0,
            salt: String::new(),
        },
        aead: Aead {
            alg: String::new(),
            nonce: String::new(),
        },
    }
}

pub fn read(path: &Path) -> Result<ProtectedFile, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(Error::context(format!("cannot read {}", path.display())))?;
    ProtectedFile::parse(&text).map_err(Error::context(format!(
        "{} is not a Strongroom workstation file",
        path.display()
    )))
}

pub fn write(path: &Path, f: &ProtectedFile) -> Result<(), Error> {
    if path.exists() {
        return Err(Error::other(format!("{} already exists", path.display())));
    }
    let text = serde_json::to_string_pretty(f).map_err(Error::from)?;
    write_private(path, text.as_bytes())
        .map_err(Error::context(format!("cannot write {}", path.display())))
}

/// An opened signature key.
pub struct SigKey {
    pub name: String,
    pub alg: SigAlg,
    pub ski: [u8; 32],
    pub pkcs8: Zeroizing<Vec<u8>>,
}

/// The HPCS file at `path`, if it is one.
fn read_hpcs(path: &Path) -> Option<HpcsFile> {
    HpcsFile::parse(&std::fs::read_to_string(path).ok()?)
}

/// Replaces the HPCS file at `path` with `sealed`, keeping the original as
/// `<file>.<ext>.hpcs`.
fn keep_and_replace(path: &Path, ext: &str, sealed: &ProtectedFile) -> Result<PathBuf, Error> {
    let original = path.with_extension(format!("{ext}.hpcs"));
    std::fs::rename(path, &original).map_err(Error::context(format!(
        "cannot keep {} as {}",
        path.display(),
        original.display()
    )))?;
    write(path, sealed)?;
    Ok(original)
}

/// The SKI of an HPCS signature key file not yet re-protected, if `path` is one.
pub fn hpcs_ski(path: &Path) -> Option<String> {
    read_hpcs(path)?.ski
}

/// Whether `path` is an HPCS key part file not yet re-protected.
pub fn is_hpcs_part(path: &Path) -> bool {
    read_hpcs(path).is_some_and(|h| h.ski.is_none() && h.key_type.is_none())
}

/// If `path` is an HPCS TKE signature key file, re-protects it in Strongroom's format
/// (Argon2id, authenticated header) under the same password, keeping the original as
/// `<file>.sigkey.hpcs`. Returns whether it did.
pub fn import_hpcs_sigkey(
    p: &dyn CryptoProvider,
    path: &Path,
    password: &[u8],
) -> Result<bool, Error> {
    let what = path.display().to_string();
    let Some(h) = read_hpcs(path) else {
        return Ok(false);
    };
    let Some(file_ski) = h.ski.clone() else {
        return Err(Error::usage(format!(
            "{what} is an HPCS file without an SKI: not a signature key file"
        )));
    };
    let key_type = h.key_type.clone().unwrap_or_default();
    if key_type != "p521ec" {
        return Err(Error::usage(format!(
            "{what} is an HPCS {} signature key: Strongroom's crypto units take P-521, P-256 and \
             Ed25519 administrator keys, not RSA; add a new key (sigkey-add) and install it \
             while the old administrators can still sign",
            if key_type.is_empty() {
                "RSA-2048"
            } else {
                &key_type
            }
        )));
    }
    let pem = h.open(p, &what, password)?;
    let pem = Zeroizing::new(
        String::from_utf8(pem.to_vec())
            .map_err(|_| Error::check(format!("{what}: the HPCS key is not PEM")))?,
    );
    let b64: Zeroizing<String> = Zeroizing::new(
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat(),
    );
    let der = Zeroizing::new(
        B64.decode(b64.as_bytes())
            .map_err(|_| Error::check(format!("{what}: the HPCS key is not PEM")))?,
    );
    let alg = SigAlg::EcdsaP521Sha512;
    let pkcs8 = p
        .ec_private_to_pkcs8(alg, &der)
        .map_err(|_| Error::check(format!("{what}: the HPCS key is not a P-521 private key")))?;
    let public = p
        .sig_public_key(alg, &pkcs8)
        .map_err(|_| Error::check(format!("{what}: the HPCS key is damaged")))?;
    let ski = ski_of(p, alg, &public);
    if !file_ski.eq_ignore_ascii_case(&hex::encode(ski)) {
        return Err(Error::check(format!(
            "{what}: the key does not match the SKI in the HPCS file"
        )));
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut header = new_header(SIGKEY_FORMAT, &name);
    header.alg = Some(alg.name().into());
    header.public_key = Some(B64.encode(&public));
    header.ski = Some(hex::encode(ski));
    let sealed = seal(p, header, password, DEFAULT_M_MIB, &pkcs8)?;
    let original = keep_and_replace(path, "sigkey", &sealed)?;
    eprintln!(
        "{what}: HPCS signature key (SKI {}) re-protected in Strongroom's format under the same \
         password; the original is kept as {}",
        hex::encode(ski),
        original.display()
    );
    Ok(true)
}

/// If `path` is an HPCS TKE key part file, re-protects it in Strongroom's format under the
/// same password, with its part verification pattern, keeping the original as
/// `<file>.mkpart.hpcs`. The part inside is 32 bytes, or 64 hex digits. Returns whether it
/// did.
pub fn import_hpcs_part(
    p: &dyn CryptoProvider,
    path: &Path,
    password: &[u8],
) -> Result<bool, Error> {
    let what = path.display().to_string();
    let Some(h) = read_hpcs(path) else {
        return Ok(false);
    };
    if h.ski.is_some() || h.key_type.is_some() {
        return Err(Error::usage(format!(
            "{what} is an HPCS signature key file, not a key part file: name it .sigkey"
        )));
    }
    let body = h.open(p, &what, password)?;
    let hex_text = std::str::from_utf8(&body)
        .ok()
        .map(str::trim)
        .filter(|t| t.len() == 2 * MASTER_KEY_LEN)
        .and_then(|t| hex::decode(t).ok())
        .map(Zeroizing::new);
    let raw: &[u8] = match &hex_text {
        Some(b) => b,
        None => &body,
    };
    let mut part = Zeroizing::new([0u8; MASTER_KEY_LEN]);
    if raw.len() != MASTER_KEY_LEN {
        return Err(Error::check(format!(
            "{what}: the HPCS key part holds {} bytes, not {MASTER_KEY_LEN}",
            raw.len()
        )));
    }
    part.copy_from_slice(raw);
    let vp = part_vp_of(p, &part).map_err(|_| Error::check("verification pattern failed"))?;
    let description = h.description.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let mut header = new_header(MKPART_FORMAT, &description);
    header.part_vp = Some(vp.to_hex());
    let sealed = seal(p, header, password, DEFAULT_M_MIB, part.as_ref())?;
    let original = keep_and_replace(path, "mkpart", &sealed)?;
    eprintln!(
        "{what}: HPCS key part (part VP {}) re-protected in Strongroom's format under the same \
         password; the original is kept as {}",
        vp.to_hex(),
        original.display()
    );
    Ok(true)
}

/// Opens a signature key file and checks that its private key matches its header. An HPCS
/// TKE signature key file is re-protected in Strongroom's format first.
pub fn open_sigkey(p: &dyn CryptoProvider, path: &Path, password: &[u8]) -> Result<SigKey, Error> {
    import_hpcs_sigkey(p, path, password)?;
    let f = read(path)?;
    let what = path.display().to_string();
    if f.header.format != SIGKEY_FORMAT {
        return Err(Error::other(format!("{what} is not a signature key file")));
    }
    let alg = f
        .header
        .alg
        .as_deref()
        .and_then(SigAlg::parse)
        .ok_or_else(|| Error::usage(format!("{what}: unknown algorithm")))?;
    let pkcs8 = open(p, &f, password, &what)?;
    let public = p
        .sig_public_key(alg, &pkcs8)
        .map_err(|_| Error::check(format!("{what}: the private key is damaged")))?;
    let ski = ski_of(p, alg, &public);
    if f.header.ski.as_deref() != Some(hex::encode(ski).as_str()) {
        return Err(Error::check(format!(
            "{what}: the key does not match the SKI in the file"
        )));
    }
    Ok(SigKey {
        name: f.header.name,
        alg,
        ski,
        pkcs8,
    })
}

/// Opens a key part file and checks its part verification pattern.
pub fn open_part(
    p: &dyn CryptoProvider,
    path: &Path,
    password: &[u8],
) -> Result<Zeroizing<[u8; MASTER_KEY_LEN]>, Error> {
    import_hpcs_part(p, path, password)?;
    let f = read(path)?;
    let what = path.display().to_string();
    if f.header.format != MKPART_FORMAT {
        return Err(Error::other(format!(
            "{what} is not a master key part file"
        )));
    }
    let body = open(p, &f, password, &what)?;
    let part: [u8; MASTER_KEY_LEN] = body
        .as_slice()
        .try_into()
        .map_err(|_| Error::check(format!("{what}: the part has the wrong length")))?;
    let part = Zeroizing::new(part);
    let vp = part_vp_of(p, &part).map_err(|_| Error::check("verification pattern failed"))?;
    if !super::same_vp(f.header.part_vp.as_deref(), Some(&vp.to_hex())) {
        return Err(Error::check(format!(
            "{what}: the part does not match its verification pattern"
        )));
    }
    Ok(part)
}

pub fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("?")
        .to_string()
}

/// Files of one kind in the workstation directory, sorted (their 1-based position is the
/// number the commands accept).
pub fn list(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, Error> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(ext))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::other(format!("cannot read {}: {e}", dir.display()))),
    };
    v.sort();
    Ok(v)
}

/// Resolves a reference (a number from the listing or a file name) to a file.
pub fn resolve(dir: &Path, ext: &str, r: &str) -> Result<PathBuf, Error> {
    let files = list(dir, ext)?;
    if let Ok(n) = r.trim().parse::<usize>() {
        return files.get(n.wrapping_sub(1)).cloned().ok_or_else(|| {
            Error::other(format!(
                "there is no .{ext} file number {n} (see the listing)"
            ))
        });
    }
    let name = if r.ends_with(&format!(".{ext}")) {
        r.to_string()
    } else {
        format!("{r}.{ext}")
    };
    let path = dir.join(&name);
    if path.exists() {
        Ok(path)
    } else {
        Err(Error::other(format!("{} does not exist", path.display())))
    }
}

/// A unit seen by this workstation, with its pinned identity key (trust on first use).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PinnedUnit {
    pub instance: String,
    pub url: String,
    pub kind: String,
    pub identity_key: String,
}

/// The workstation's state.
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct Workstation {
    /// Selected signature key files.
    #[serde(default)]
    pub sigkeys: Vec<String>,
    /// Selected units.
    #[serde(default)]
    pub units: Vec<String>,
    /// Units seen, by id.
    #[serde(default)]
    pub pinned: BTreeMap<String, PinnedUnit>,
}

impl Workstation {
    pub fn load(dir: &Path) -> Result<Self, Error> {
        match std::fs::read_to_string(dir.join("workstation.json")) {
            Ok(t) => serde_json::from_str(&t).map_err(Error::context("workstation.json")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Workstation::default()),
            Err(e) => Err(Error::other(format!("cannot read workstation.json: {e}"))),
        }
    }
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(dir)
            .map_err(Error::context(format!("cannot create {}", dir.display())))?;
        let t = serde_json::to_string_pretty(self).map_err(Error::from)?;
        write_private(&dir.join("workstation.json"), t.as_bytes())
            .map_err(Error::context("cannot write workstation.json"))
    }
}

/// Where passwords come from: a passwords file (`<file name>: <password>` per line, for
/// automation), else an interactive prompt.
pub struct Passwords {
    file: BTreeMap<String, Zeroizing<String>>,
}

impl Passwords {
    pub fn load(path: Option<&Path>) -> Result<Self, Error> {
        let mut file = BTreeMap::new();
        if let Some(path) = path {
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(Error::context(
                format!("cannot read the passwords file {}", path.display()),
            ))?);
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() || line.trim_start().starts_with('#') {
                    continue;
                }
                let (k, v) = line.split_once(':').ok_or_else(|| {
                    Error::usage(format!(
                        "{} line {}: expected '<file name>: <password>'",
                        path.display(),
                        n + 1
                    ))
                })?;
                file.insert(k.trim().to_string(), Zeroizing::new(v.trim().to_string()));
            }
        }
        Ok(Passwords { file })
    }

    /// Whether the passwords file has an entry for `file`.
    pub fn has(&self, file: &str) -> bool {
        self.file.contains_key(file)
    }

    /// The password of `file` (a file name such as `alice.sigkey`).
    pub fn get(&self, file: &str, prompt: &str) -> Result<Zeroizing<String>, Error> {
        if let Some(p) = self.file.get(file) {
            return Ok(p.clone());
        }
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return Err(Error::usage(format!("no password for {file}: add '{file}: <password>' to the passwords file (--passwords or STRONGROOM_TKE_PASSWORDS) or run interactively")));
        }
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(Error::context("cannot read the password"))
    }

    /// A new password (asked twice when interactive).
    pub fn new_password(&self, file: &str, what: &str) -> Result<Zeroizing<String>, Error> {
        if let Some(p) = self.file.get(file) {
            check_strength(p)?;
            return Ok(p.clone());
        }
        let a = self.get(file, &format!("New password for {what}: "))?;
        let b = Zeroizing::new(rpassword::prompt_password("Repeat it: ").map_err(Error::from)?);
        if a != b {
            return Err(Error::check("the passwords differ"));
        }
        check_strength(&a)?;
        Ok(a)
    }
}

fn check_strength(p: &str) -> Result<(), Error> {
    if p.chars().count() < 8 {
        return Err(Error::other(
            "a workstation file password has at least 8 characters",
        ));
    }
    Ok(())
}
