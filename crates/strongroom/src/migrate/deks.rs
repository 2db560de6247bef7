//! Rewrapping data keys: each wrapped DEK the user gives is unwrapped at the source, wrapped
//! here under the key that replaced its root key, and unwrapped here again to check that
//! both ends give the same plaintext (compared by SHA-256 hash). The output file maps
//! each old ciphertext to its new one; it is also this step's record, so a rerun skips
//! every DEK it already holds.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use strongroom_client::Client;
use strongroom_engine::{CryptoProvider, DigestAlg};
use zeroize::Zeroizing;

use super::plan::{Fate, Plan};
use crate::cli::urlencode;
use crate::error::Error;

/// One wrapped DEK of the input: `{key, ciphertext, aad?}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Input {
    /// The root key at the source (id or alias).
    pub key: String,
    /// The wrapped DEK, as the source returned it.
    pub ciphertext: String,
    /// Its additional authenticated data.
    #[serde(default)]
    pub aad: Option<Vec<String>>,
}

/// A DEK of the input, with where it came from.
#[derive(Debug, Clone)]
pub struct Job {
    /// The input file.
    pub file: String,
    /// Its line (1-based).
    pub line: usize,
    /// The DEK.
    pub dek: Input,
}

/// One line of the output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rewrapped {
    /// The input file and line.
    pub file: String,
    /// The line.
    pub line: usize,
    /// The root key at the source, as the input named it.
    pub key: String,
    /// The key that wraps it here.
    pub new_key: String,
    /// The old ciphertext.
    pub ciphertext: String,
    /// The new ciphertext.
    pub new_ciphertext: String,
    /// Both ends unwrapped it to the same plaintext (SHA-256 compared).
    pub verified: bool,
}

/// A DEK that could not be rewrapped (it stays out of the output; a rerun tries it again).
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The input file.
    pub file: String,
    /// The line.
    pub line: usize,
    /// Why.
    pub error: String,
}

/// Reads every DEK of the files and directories given (a directory: each of its files,
/// in name order).
pub fn read_inputs(paths: &[PathBuf]) -> Result<Vec<Job>, Error> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(Error::context(format!("cannot read {}", p.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            in_dir.sort();
            files.extend(in_dir);
        } else {
            files.push(p.clone());
        }
    }
    let mut jobs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)
            .map_err(Error::context(format!("cannot read {}", f.display())))?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let dek: Input = serde_json::from_str(line).map_err(|e| {
                Error::usage(format!(
                    "{} line {}: not a wrapped DEK ({{\"key\", \"ciphertext\", \"aad\"?}}): {e}",
                    f.display(),
                    i + 1
                ))
            })?;
            jobs.push(Job {
                file: f.display().to_string(),
                line: i + 1,
                dek,
            });
        }
    }
    Ok(jobs)
}

/// The output file: what earlier runs rewrapped, and the file to append to.
pub struct Output {
    file: std::fs::File,
    /// Old ciphertexts already rewrapped.
    pub done: HashSet<String>,
    /// Lines already there, all verified.
    pub lines: usize,
}

impl Output {
    /// Opens `path`, dropping a line a kill cut short.
    pub fn open(path: &Path) -> Result<Output, Error> {
        let ctx = || format!("DEK output {}", path.display());
        let (text, file) = super::journal::open_lines(path, &ctx())?;
        let mut done = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let r: Rewrapped = serde_json::from_str(line)
                .map_err(|e| Error::check(format!("{} line {}: {e}", ctx(), n + 1)))?;
            done.insert(r.ciphertext);
        }
        Ok(Output {
            file,
            lines: done.len(),
            done,
        })
    }

    fn append(&mut self, r: &Rewrapped) -> Result<(), Error> {
        let mut line = serde_json::to_string(r)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.done.insert(r.ciphertext.clone());
        self.lines += 1;
        Ok(())
    }

    fn sync(&self) -> Result<(), Error> {
        Ok(self.file.sync_data()?)
    }
}

/// The clients and key map one rewrap needs.
pub struct Ends {
    /// The source.
    pub source: Client,
    /// Here.
    pub dest: Client,
}

/// Why one DEK was not rewrapped: a line of the report.
#[derive(Debug, thiserror::Error)]
enum DekError {
    /// The plan does not move its key.
    #[error("{0}")]
    Plan(String),
    /// A call to one of the two ends failed.
    #[error("{step}: {source}")]
    Call {
        /// Which call (`unwrap at the source`, `wrap here`, `unwrap here`).
        step: &'static str,
        /// The client's error.
        #[source]
        source: strongroom_client::ClientError,
    },
    /// An end answered without what the call returns, or the two ends disagree.
    #[error("{0}")]
    Answer(&'static str),
}

fn b64(s: &str) -> Result<Zeroizing<Vec<u8>>, DekError> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map(Zeroizing::new)
        .map_err(|_| DekError::Answer("an answer's plaintext is not base64"))
}

async fn action(
    c: &Client,
    key: &str,
    name: &str,
    body: Value,
    step: &'static str,
) -> Result<Value, DekError> {
    c.post(
        &format!("/api/v2/keys/{}/actions/{name}", urlencode(key)),
        Some(body),
    )
    .await
    .map(|r| r.body)
    .map_err(|source| DekError::Call { step, source })
}

/// Rewraps one DEK under `new_key` and checks it.
async fn rewrap_one(
    ends: &Ends,
    old_key: &str,
    new_key: &str,
    dek: &Input,
) -> Result<String, DekError> {
    let mut body = json!({"ciphertext": dek.ciphertext});
    if let Some(aad) = &dek.aad {
        body["aad"] = json!(aad);
    }
    let src = action(
        &ends.source,
        old_key,
        "unwrap",
        body,
        "unwrap at the source",
    )
    .await?;
    let plain = Zeroizing::new(
        src["plaintext"]
            .as_str()
            .ok_or(DekError::Answer("the source answered no plaintext"))?
            .to_string(),
    );
    let mut wrap = json!({"plaintext": plain.as_str()});
    if let Some(aad) = &dek.aad {
        wrap["aad"] = json!(aad);
    }
    let wrapped = action(&ends.dest, new_key, "wrap", wrap, "wrap here").await?;
    let new_ct = wrapped["ciphertext"]
        .as_str()
        .ok_or(DekError::Answer("wrap answered no ciphertext"))?
        .to_string();
    let mut check = json!({"ciphertext": new_ct});
    if let Some(aad) = &dek.aad {
        check["aad"] = json!(aad);
    }
    let back = action(&ends.dest, new_key, "unwrap", check, "unwrap here").await?;
    let again = Zeroizing::new(
        back["plaintext"]
            .as_str()
            .ok_or(DekError::Answer("unwrap here answered no plaintext"))?
            .to_string(),
    );
    let p = strongroom_crypto_awslc::AwsLcProvider;
    let (h1, h2) = (
        p.digest(DigestAlg::Sha256, &b64(&plain)?),
        p.digest(DigestAlg::Sha256, &b64(&again)?),
    );
    if !p.ct_eq(&h1, &h2) {
        return Err(DekError::Answer(
            "the two ends unwrap to different plaintexts",
        ));
    }
    Ok(new_ct)
}

/// What the DEK step did.
#[derive(Debug, Default, Serialize)]
pub struct DekReport {
    /// DEKs in the input.
    pub given: usize,
    /// Rewrapped and verified in earlier runs.
    pub earlier: usize,
    /// Rewrapped and verified in this run.
    pub rewrapped: usize,
    /// Those that failed (retried by the next run).
    pub failed: Vec<Failure>,
    /// Seconds this run spent on them.
    pub seconds: f64,
}

/// Rewraps every DEK of `jobs` not in `out`, `concurrency` at a time.
pub async fn rewrap_all(
    plan: &Plan,
    keys: &std::collections::HashMap<String, String>,
    ends: Arc<Ends>,
    jobs: Vec<Job>,
    out: &mut Output,
    concurrency: usize,
) -> Result<DekReport, Error> {
    let mut report = DekReport {
        given: jobs.len(),
        earlier: jobs
            .iter()
            .filter(|j| out.done.contains(&j.dek.ciphertext))
            .count(),
        ..Default::default()
    };
    let todo: Vec<Job> = jobs
        .into_iter()
        .filter(|j| !out.done.contains(&j.dek.ciphertext))
        .collect();
    let bar = super::progress(todo.len() as u64, "DEKs rewrapped");
    let started = std::time::Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let mut it = todo.into_iter();
    loop {
        while set.len() < concurrency.max(1) {
            let Some(job) = it.next() else { break };
            let target = match plan.key(&job.dek.key) {
                None => Err(format!("key {} is not in the plan", job.dek.key)),
                Some(k) if k.action == Fate::CannotMove => {
                    Err(format!("key {} cannot move: {}", job.dek.key, k.reason))
                }
                Some(k) if k.extractable => Err(format!(
                    "key {} is a standard key, which wraps nothing",
                    job.dek.key
                )),
                Some(k) => keys
                    .get(&k.id)
                    .map(|n| (k.id.clone(), n.clone()))
                    .ok_or_else(|| format!("key {} was not created here", job.dek.key)),
            }
            .map_err(DekError::Plan);
            let ends = ends.clone();
            set.spawn(async move {
                let r = match target {
                    Ok((old, new)) => rewrap_one(&ends, &old, &new, &job.dek)
                        .await
                        .map(|ct| (new, ct)),
                    Err(e) => Err(e),
                };
                (job, r)
            });
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        let (job, r) = done?;
        match r {
            Ok((new_key, new_ciphertext)) => {
                out.append(&Rewrapped {
                    file: job.file,
                    line: job.line,
                    key: job.dek.key,
                    new_key,
                    ciphertext: job.dek.ciphertext,
                    new_ciphertext,
                    verified: true,
                })?;
                report.rewrapped += 1;
            }
            Err(error) => report.failed.push(Failure {
                file: job.file,
                line: job.line,
                error: error.to_string(),
            }),
        }
        bar.inc(1);
    }
    out.sync()?;
    bar.finish_and_clear();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
