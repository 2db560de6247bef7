//! The run's journal: one JSON line per step done, written and synced before the next
//! step starts, so that a run killed at any point continues where it stopped and does
//! nothing twice. A line cut short by the kill is dropped when the journal is opened.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// One step done.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Entry {
    /// A key ring exists here.
    Ring { id: String },
    /// A key is about to be created here (so a kill before [`Entry::Key`] is found out).
    KeyStart { old: String },
    /// A key exists here: `old` at the source is `new` here.
    Key { old: String, new: String },
    /// The temporary alias that finds a key after a kill is gone.
    AliasDropped { old: String },
    /// The key's policies are set here.
    Policies { old: String },
    /// One registration of the key exists here.
    Registration { old: String, crn: String },
    /// A KMIP adapter exists here.
    Adapter { old: String, new: String },
    /// One client certificate of an adapter is registered here.
    Certificate { adapter: String, name: String },
    /// A suspended key is suspended here too.
    Suspended { old: String },
    /// The instance policies are set here.
    InstancePolicies,
}

impl Entry {
    fn done_key(&self) -> String {
        match self {
            Entry::Ring { id } => format!("ring {id}"),
            Entry::KeyStart { old } => format!("key-start {old}"),
            Entry::Key { old, .. } => format!("key {old}"),
            Entry::AliasDropped { old } => format!("alias {old}"),
            Entry::Policies { old } => format!("policies {old}"),
            Entry::Registration { old, crn } => format!("registration {old} {crn}"),
            Entry::Adapter { old, .. } => format!("adapter {old}"),
            Entry::Certificate { adapter, name } => format!("certificate {adapter} {name}"),
            Entry::Suspended { old } => format!("suspended {old}"),
            Entry::InstancePolicies => "instance-policies".into(),
        }
    }
}

/// Opens a file of JSON lines to append to, with its whole lines so far: a last line that
/// a kill cut short was never acted on, and is dropped.
pub fn open_lines(path: &Path, what: &str) -> Result<(String, std::fs::File), Error> {
    let mut text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::context(what.to_string())(e)),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        let keep = text.rfind('\n').map_or(0, |i| i + 1);
        text.truncate(keep);
        std::fs::write(path, &text).map_err(Error::context(what.to_string()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(Error::context(what.to_string()))?;
    Ok((text, file))
}

/// The journal of one plan's run.
pub struct Journal {
    file: std::fs::File,
    done: HashSet<String>,
    /// Source key id → key id here.
    pub keys: HashMap<String, String>,
    /// Source adapter id → adapter id here.
    pub adapters: HashMap<String, String>,
}

impl Journal {
    /// Opens (or starts) the journal at `path`.
    pub fn open(path: &Path) -> Result<Journal, Error> {
        let ctx = || format!("journal {}", path.display());
        let (text, file) = open_lines(path, &ctx())?;
        let mut j = Journal {
            file,
            done: HashSet::new(),
            keys: HashMap::new(),
            adapters: HashMap::new(),
        };
        for (n, line) in text.lines().enumerate() {
            let e: Entry = serde_json::from_str(line)
                .map_err(|e| Error::check(format!("{} line {}: {e}", ctx(), n + 1)))?;
            j.note(&e);
        }
        Ok(j)
    }

    fn note(&mut self, e: &Entry) {
        match e {
            Entry::Key { old, new } => {
                self.keys.insert(old.clone(), new.clone());
            }
            Entry::Adapter { old, new } => {
                self.adapters.insert(old.clone(), new.clone());
            }
            _ => {}
        }
        self.done.insert(e.done_key());
    }

    /// Whether `e`'s step is done (for entries with a result, whatever the result).
    pub fn is_done(&self, e: &Entry) -> bool {
        self.done.contains(&e.done_key())
    }

    /// Records a step as done, on disk, before the run goes on.
    pub fn record(&mut self, e: Entry) -> Result<(), Error> {
        let mut line = serde_json::to_string(&e)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        self.note(&e);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopened_journal_knows_its_steps_and_drops_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        let mut j = Journal::open(&p).unwrap();
        j.record(Entry::Ring { id: "r".into() }).unwrap();
        j.record(Entry::Key {
            old: "a".into(),
            new: "b".into(),
        })
        .unwrap();
        drop(j);
        // A kill in the middle of a line.
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"step":"policies","o"#).unwrap();
        drop(f);
        let mut j = Journal::open(&p).unwrap();
        assert!(j.is_done(&Entry::Ring { id: "r".into() }));
        assert_eq!(j.keys["a"], "b");
        assert!(!j.is_done(&Entry::Policies { old: "a".into() }));
        j.record(Entry::Policies { old: "a".into() }).unwrap();
        let j = Journal::open(&p).unwrap();
        assert!(j.is_done(&Entry::Policies { old: "a".into() }));
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 3);
    }
}
