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
    /// What identifies the step (not its result): the step's name and its identifying
    /// fields as a JSON array, so that no two steps share it whatever their text holds.
    fn done_key(&self) -> String {
        let (step, fields) = match self {
            Entry::Ring { id } => ("ring", vec![id]),
            Entry::KeyStart { old } => ("key-start", vec![old]),
            Entry::Key { old, .. } => ("key", vec![old]),
            Entry::AliasDropped { old } => ("alias", vec![old]),
            Entry::Policies { old } => ("policies", vec![old]),
            Entry::Registration { old, crn } => ("registration", vec![old, crn]),
            Entry::Adapter { old, .. } => ("adapter", vec![old]),
            Entry::Certificate { adapter, name } => ("certificate", vec![adapter, name]),
            Entry::Suspended { old } => ("suspended", vec![old]),
            Entry::InstancePolicies => ("instance-policies", vec![]),
        };
        format!("{step} {}", serde_json::json!(fields))
    }
}

/// Opens a file of JSON lines to append to, with its whole lines so far: a last line that
/// a kill cut short was never acted on, and is dropped. The cut is found in the bytes, so a
/// line cut inside a multi-byte character is dropped like any other.
pub fn open_lines(path: &Path, what: &str) -> Result<(String, std::fs::File), Error> {
    let mut bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::context(what.to_string())(e)),
    };
    if bytes.last().is_some_and(|b| *b != b'\n') {
        let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(keep);
        std::fs::write(path, &bytes).map_err(Error::context(what.to_string()))?;
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::check(format!("{what}: a whole line is not UTF-8 text")))?;
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
    use proptest::prelude::*;

    fn entry() -> impl Strategy<Value = Entry> {
        let t = || "[a-z0-9 é中\\\"-]{0,6}";
        prop_oneof![
            t().prop_map(|id| Entry::Ring { id }),
            t().prop_map(|old| Entry::KeyStart { old }),
            (t(), t()).prop_map(|(old, new)| Entry::Key { old, new }),
            t().prop_map(|old| Entry::AliasDropped { old }),
            t().prop_map(|old| Entry::Policies { old }),
            (t(), t()).prop_map(|(old, crn)| Entry::Registration { old, crn }),
            (t(), t()).prop_map(|(old, new)| Entry::Adapter { old, new }),
            (t(), t()).prop_map(|(adapter, name)| Entry::Certificate { adapter, name }),
            t().prop_map(|old| Entry::Suspended { old }),
            Just(Entry::InstancePolicies),
        ]
    }

    proptest! {
        /// A journal killed at any byte of its file reopens knowing exactly the steps whose
        /// lines were written whole, with their results, and takes new steps after them.
        #[test]
        fn a_journal_cut_at_any_byte_knows_exactly_its_whole_steps(
            entries in proptest::collection::vec(entry(), 1..12),
            at in any::<prop::sample::Index>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("j");
            let mut j = Journal::open(&p).unwrap();
            for e in &entries {
                j.record(e.clone()).unwrap();
            }
            drop(j);
            let bytes = std::fs::read(&p).unwrap();
            let cut = at.index(bytes.len() + 1);
            std::fs::write(&p, &bytes[..cut]).unwrap();
            // The steps whose line (with its newline) lies before the cut.
            let mut end = 0;
            let mut kept = Vec::new();
            for (e, line) in entries.iter().zip(bytes.split_inclusive(|b| *b == b'\n')) {
                end += line.len();
                if end <= cut {
                    kept.push(e.clone());
                }
            }
            let mut j = Journal::open(&p).unwrap();
            let done: HashSet<String> = kept.iter().map(Entry::done_key).collect();
            for e in &entries {
                prop_assert_eq!(j.is_done(e), done.contains(&e.done_key()), "{:?}", e);
            }
            let mut keys = HashMap::new();
            for e in &kept {
                if let Entry::Key { old, new } = e {
                    keys.insert(old.clone(), new.clone());
                }
            }
            prop_assert_eq!(&j.keys, &keys);
            j.record(Entry::InstancePolicies).unwrap();
            let j = Journal::open(&p).unwrap();
            prop_assert!(j.is_done(&Entry::InstancePolicies));
            prop_assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), kept.len() + 1);
        }

        /// Two different steps never count as one.
        #[test]
        fn different_steps_have_different_done_keys(a in entry(), b in entry()) {
            let same_step = match (&a, &b) {
                (Entry::Key { old: x, .. }, Entry::Key { old: y, .. })
                | (Entry::Adapter { old: x, .. }, Entry::Adapter { old: y, .. }) => x == y,
                _ => a == b,
            };
            prop_assert_eq!(a.done_key() == b.done_key(), same_step);
        }
    }

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
