//! The migration plan: what the source holds, and what will happen to each key. It is a
//! file the user reads and keeps (format `strongroom-migration-plan`, version 1, in
//! docs/formats.md); `migrate run` carries it out.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

/// The plan file's format name.
pub const FORMAT: &str = "strongroom-migration-plan";
/// The plan file's version.
pub const VERSION: u32 = 1;

/// Key Protect's key states.
pub const ACTIVE: u8 = 1;
/// Suspended (disabled).
pub const SUSPENDED: u8 = 2;
/// Deactivated (expired).
pub const DEACTIVATED: u8 = 3;
/// Destroyed.
pub const DESTROYED: u8 = 5;

/// What happens to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// A standard key: its material is read at the source and created here.
    Copy,
    /// A root key whose material the user gives (`--material`): imported here; the data
    /// keys it wraps are rewrapped.
    Import,
    /// A root key whose material never leaves the source: a new root key is generated
    /// here; the data keys it wraps are unwrapped there and wrapped again here.
    RecreateAndRewrap,
    /// Nothing can be moved (the reason says why and what to do).
    CannotMove,
}

impl Fate {
    /// The word the table shows.
    pub fn word(self) -> &'static str {
        match self {
            Fate::Copy => "copy",
            Fate::Import => "import",
            Fate::RecreateAndRewrap => "recreate+rewrap",
            Fate::CannotMove => "cannot move",
        }
    }
}

/// One key of the source and its move.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyEntry {
    /// The key's id at the source.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its aliases.
    pub aliases: Vec<String>,
    /// Its description.
    pub description: Option<String>,
    /// Its key ring.
    pub key_ring: String,
    /// A standard key (true) or a root key.
    pub extractable: bool,
    /// Whether its material was imported.
    pub imported: bool,
    /// Its state (1 active, 2 suspended, 3 deactivated, 5 destroyed).
    pub state: u8,
    /// Its expiration date (RFC 3339), if any.
    pub expiration: Option<String>,
    /// How many versions it has at the source.
    pub versions: u64,
    /// Its key policies, as the source lists them (`resources` of GET …/policies).
    pub policies: Vec<Value>,
    /// Its registrations, as the source lists them.
    pub registrations: Vec<Value>,
    /// What happens to it.
    #[serde(rename = "move")]
    pub action: Fate,
    /// Why, and what the user should know or do.
    pub reason: String,
}

/// A KMIP adapter of the source, with its client certificates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdapterEntry {
    /// Its id at the source.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// The root key it is bound to (source id).
    pub crk_id: Option<String>,
    /// Its client certificates: `{name, certificate}` (PEM).
    pub certificates: Vec<Value>,
    /// How many KMIP objects it holds (they cannot move: see the plan's notes).
    pub objects: u64,
}

/// What the source holds beyond its keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceInfo {
    /// The source's API URL.
    pub url: String,
    /// Where its API keys are exchanged (IBM's IAM), when not at the source itself.
    pub iam_url: Option<String>,
    /// The source instance.
    pub instance: String,
    /// Key rings besides `default`.
    pub key_rings: Vec<String>,
    /// Instance policies, as the source lists them.
    pub instance_policies: Vec<Value>,
    /// KMIP adapters.
    pub kmip_adapters: Vec<AdapterEntry>,
}

/// The plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// When it was made (RFC 3339).
    pub created: String,
    /// The source.
    pub source: SourceInfo,
    /// Every key of the source, destroyed ones included.
    pub keys: Vec<KeyEntry>,
    /// What cannot move besides keys, and what to do instead.
    pub notes: Vec<String>,
}

impl Plan {
    /// Reads and checks a plan file.
    pub fn load(path: &Path) -> Result<Plan, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(Error::context(format!("cannot read {}", path.display())))?;
        let plan: Plan = serde_json::from_str(&text).map_err(Error::context(format!(
            "{} is not a migration plan",
            path.display()
        )))?;
        if plan.format != FORMAT || plan.version != VERSION {
            return Err(Error::usage(format!(
                "{} is a {} version {} file; this release reads {FORMAT} version {VERSION}",
                path.display(),
                plan.format,
                plan.version
            )));
        }
        Ok(plan)
    }

    /// Writes the plan (to a temporary file first, so a plan on disk is always whole).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .map_err(Error::context(format!("cannot write {}", tmp.display())))?;
        std::fs::rename(&tmp, path)
            .map_err(Error::context(format!("cannot write {}", path.display())))
    }

    /// The plan's entry for a key named by its source id or one of its aliases.
    pub fn key(&self, id_or_alias: &str) -> Option<&KeyEntry> {
        self.keys
            .iter()
            .find(|k| k.id == id_or_alias || k.aliases.iter().any(|a| a == id_or_alias))
    }

    /// How many keys have each move.
    pub fn counts(&self) -> [(Fate, usize); 4] {
        [
            Fate::Copy,
            Fate::Import,
            Fate::RecreateAndRewrap,
            Fate::CannotMove,
        ]
        .map(|m| (m, self.keys.iter().filter(|k| k.action == m).count()))
    }

    /// The readable table: one line per key, then the totals and the notes.
    pub fn table(&self) -> String {
        let mut out = format!(
            "source {} instance {}: {} keys, {} key rings, {} instance policies, {} KMIP adapters\n\n",
            self.source.url,
            self.source.instance,
            self.keys.len(),
            self.source.key_rings.len(),
            self.source.instance_policies.len(),
            self.source.kmip_adapters.len()
        );
        out.push_str(&format!(
            "{:<36}  {:<24}  {:<8}  {:<5}  {:<15}  why\n",
            "key", "name", "kind", "state", "move"
        ));
        for k in &self.keys {
            out.push_str(&format!(
                "{:<36}  {:<24}  {:<8}  {:<5}  {:<15}  {}\n",
                k.id,
                clip(&k.name, 24),
                if k.extractable { "standard" } else { "root" },
                state_word(k.state),
                k.action.word(),
                k.reason
            ));
        }
        out.push('\n');
        for (m, n) in self.counts() {
            out.push_str(&format!("{:<15} {n}\n", m.word()));
        }
        for n in &self.notes {
            out.push_str(&format!("\nnote: {n}"));
        }
        out
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(n - 1).collect();
        c.push('…');
        c
    }
}

/// A state's word.
pub fn state_word(state: u8) -> &'static str {
    match state {
        ACTIVE => "act",
        SUSPENDED => "susp",
        DEACTIVATED => "deact",
        DESTROYED => "destr",
        _ => "pre",
    }
}

/// Root key material the user holds: a directory of files named by the key's source id
/// or one of its aliases, each holding the material in base64 (as Key Protect's
/// `payload`).
#[derive(Debug, Clone, Default)]
pub struct Material(pub Option<PathBuf>);

impl Material {
    /// The file of `key`'s material, if the user gave one.
    pub fn file_of(&self, key: &KeyEntry) -> Option<PathBuf> {
        let dir = self.0.as_ref()?;
        std::iter::once(&key.id)
            .chain(&key.aliases)
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
    }

    /// `key`'s material as base64, checked to be an AES key's length. Never logged.
    pub fn payload_of(&self, key: &KeyEntry) -> Result<Option<zeroize::Zeroizing<String>>, Error> {
        let Some(path) = self.file_of(key) else {
            return Ok(None);
        };
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(&path)
                .map_err(Error::context(format!("cannot read {}", path.display())))?,
        );
        let b64 = zeroize::Zeroizing::new(text.trim().to_string());
        use base64::Engine as _;
        let raw = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|_| {
                    Error::usage(format!(
                        "{} does not hold base64 key material",
                        path.display()
                    ))
                })?,
        );
        if ![16, 24, 32].contains(&raw.len()) {
            return Err(Error::usage(format!(
                "{} holds {} bytes; a root key is 16, 24 or 32 bytes",
                path.display(),
                raw.len()
            )));
        }
        Ok(Some(b64))
    }
}

/// The move of one key, and why.
pub fn classify(k: &KeyEntry, material: &Material) -> (Fate, String) {
    if k.state == DESTROYED {
        return (
            Fate::CannotMove,
            "destroyed at the source: its material is gone, and data it protected cannot be \
             decrypted anywhere"
                .into(),
        );
    }
    if k.extractable {
        return (
            Fate::Copy,
            "standard key: its material is read at the source and created here".into(),
        );
    }
    let mut why = if material.file_of(k).is_some() {
        (
            Fate::Import,
            "root key material given in --material: imported here; its data keys are rewrapped"
                .to_string(),
        )
    } else if k.imported {
        (
            Fate::RecreateAndRewrap,
            "imported root key without its material (give it in --material to keep the same \
             key): a new root key is made here and its data keys are rewrapped"
                .to_string(),
        )
    } else {
        (
            Fate::RecreateAndRewrap,
            "root key material never leaves the source: a new root key is made here and its \
             data keys are unwrapped there and wrapped again here"
                .to_string(),
        )
    };
    match k.state {
        SUSPENDED => why.1.push_str(
            "; SUSPENDED at the source: enable it there before `migrate run`, or its data \
             keys cannot be unwrapped (it is suspended here after the run)",
        ),
        DEACTIVATED => why.1.push_str(
            "; expired at the source: created here without an expiration date, set one after",
        ),
        _ => {}
    }
    if k.versions > 1 {
        why.1.push_str(&format!(
            "; {} versions at the source, one here",
            k.versions
        ));
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(extractable: bool, imported: bool, state: u8) -> KeyEntry {
        KeyEntry {
            id: "0b7c2c7e-34d4-4ac1-8b8b-7a8c4f3f4a11".into(),
            name: "k".into(),
            aliases: vec!["payments".into()],
            description: None,
            key_ring: "default".into(),
            extractable,
            imported,
            state,
            expiration: None,
            versions: 1,
            policies: vec![],
            registrations: vec![],
            action: Fate::CannotMove,
            reason: String::new(),
        }
    }

    #[test]
    fn each_kind_of_key_gets_its_move() {
        let none = Material::default();
        assert_eq!(classify(&key(true, false, 1), &none).0, Fate::Copy);
        assert_eq!(classify(&key(true, true, 1), &none).0, Fate::Copy);
        assert_eq!(
            classify(&key(false, false, 1), &none).0,
            Fate::RecreateAndRewrap
        );
        assert_eq!(
            classify(&key(false, true, 1), &none).0,
            Fate::RecreateAndRewrap
        );
        assert_eq!(classify(&key(false, false, 5), &none).0, Fate::CannotMove);
        assert_eq!(classify(&key(true, false, 5), &none).0, Fate::CannotMove);
        let (m, why) = classify(&key(false, false, 2), &none);
        assert_eq!(m, Fate::RecreateAndRewrap);
        assert!(why.contains("SUSPENDED"), "{why}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("payments"), "AAAAAAAAAAAAAAAAAAAAAA==\n").unwrap();
        let given = Material(Some(dir.path().to_path_buf()));
        assert_eq!(classify(&key(false, true, 1), &given).0, Fate::Import);
        assert_eq!(
            given
                .payload_of(&key(false, true, 1))
                .unwrap()
                .unwrap()
                .as_str(),
            "AAAAAAAAAAAAAAAAAAAAAA=="
        );
        std::fs::write(dir.path().join("payments"), "AAAA\n").unwrap();
        let e = given.payload_of(&key(false, true, 1)).unwrap_err();
        assert!(e.to_string().contains("3 bytes"), "{e}");
    }
}
