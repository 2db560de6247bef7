//! `strongroom activity`: the instance's activity events (its audit records, as CADF
//! events), listed with filters or exported as a stream to a file or a webhook.

use std::io::Write as _;
use std::path::Path;

use super::*;
use crate::error::Error;

#[derive(Args, Debug)]
pub struct ActivityArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: ActivityCmd,
}

/// Filters shared by `list` and `export`.
#[derive(Args, Debug, Clone)]
pub(crate) struct Filters {
    /// Only events at or after this time (RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Only events before this time (RFC 3339).
    #[arg(long)]
    to: Option<String>,
    /// Only this action (kms.secrets.wrap, ep11.sign, kmip.get, ...).
    #[arg(long)]
    action: Option<String>,
    /// Only this outcome: success, failure, or an error code (key_not_found).
    #[arg(long)]
    outcome: Option<String>,
    /// Only events naming this key (id or alias, as the call named it).
    #[arg(long)]
    key: Option<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ActivityCmd {
    /// List the instance's events, oldest first (Reader role or more).
    List {
        #[command(flatten)]
        filters: Filters,
        /// Start after this event (the `seq` of the last one already seen).
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many events (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Export the instance's events as they happen: as JSON lines appended to a file, or
    /// in batches POSTed to a webhook (`{"events": [...]}`). The position is kept in
    /// --state (and, for a file, read back from its last line), so a stopped export resumes
    /// where it was: nothing is skipped and nothing is sent twice. The export's own reads
    /// (`activity.events.read`) are left out unless --include-reads.
    Export {
        #[command(flatten)]
        filters: Filters,
        /// Append JSON lines to this file (fsync'd before the position moves on).
        #[arg(long, conflicts_with = "webhook", required_unless_present = "webhook")]
        to_file: Option<PathBuf>,
        /// POST each batch to this URL; a batch counts as delivered on a 2xx answer.
        #[arg(long)]
        webhook: Option<String>,
        /// The file that keeps the position (the last `seq` delivered).
        #[arg(long)]
        state: PathBuf,
        /// Keep running: poll for new events every --every seconds.
        #[arg(long)]
        follow: bool,
        /// Seconds between polls with --follow.
        #[arg(long, default_value_t = 2)]
        every: u64,
        /// Export the export's own reads too.
        #[arg(long)]
        include_reads: bool,
    },
}

/// The query string of a page of events.
fn query(f: &Filters, after: i64, limit: u32) -> String {
    let mut q = format!("?after={after}&limit={limit}");
    for (k, v) in [
        ("from", &f.from),
        ("to", &f.to),
        ("action", &f.action),
        ("outcome", &f.outcome),
        ("key", &f.key),
    ] {
        if let Some(v) = v {
            q.push_str(&format!("&{k}={}", urlencode(v)));
        }
    }
    q
}

async fn page(c: &Client, f: &Filters, after: i64, limit: u32) -> Result<Vec<Value>, Error> {
    let r = c
        .get(&format!(
            "/api/v2/activity_events{}",
            query(f, after, limit)
        ))
        .await?;
    Ok(r.body["resources"].as_array().cloned().unwrap_or_default())
}

fn seq_of(e: &Value) -> Result<i64, Error> {
    e["seq"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::other("an activity event has no seq"))
}

/// The position: the larger of the state file's and, for a file sink, its last line's.
fn position(state: &Path, file: Option<&Path>) -> Result<i64, Error> {
    let kept = match std::fs::read_to_string(state) {
        Ok(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| Error::usage(format!("{} does not hold a position", state.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => {
            return Err(Error::context(format!("cannot read {}", state.display()))(
                e,
            ))
        }
    };
    let written = match file.map(std::fs::read_to_string) {
        Some(Ok(text)) => text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| serde_json::from_str::<Value>(l).ok())
            .map(|e| seq_of(&e))
            .transpose()?
            .unwrap_or(0),
        Some(Err(e)) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::context("cannot read the export file")(e))
        }
        _ => 0,
    };
    Ok(kept.max(written))
}

/// Records the position durably (write a temporary file, then rename over the old one).
fn save_position(state: &Path, seq: i64) -> Result<(), Error> {
    let tmp = state.with_extension("tmp");
    std::fs::write(&tmp, format!("{seq}\n"))
        .and_then(|()| std::fs::rename(&tmp, state))
        .map_err(Error::context(format!("cannot write {}", state.display())))
}

async fn deliver(
    events: &[Value],
    file: Option<&Path>,
    webhook: Option<&str>,
    http: &reqwest::Client,
) -> Result<(), Error> {
    if let Some(path) = file {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(Error::context(format!("cannot open {}", path.display())))?;
        let mut text = String::new();
        for e in events {
            text.push_str(&e.to_string());
            text.push('\n');
        }
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(Error::context(format!("cannot write {}", path.display())))?;
    }
    if let Some(url) = webhook {
        let r = http
            .post(url)
            .json(&json!({ "events": events }))
            .send()
            .await
            .map_err(Error::context(format!("webhook {url}")))?;
        if !r.status().is_success() {
            return Err(Error::other(format!(
                "webhook {url} answered {}: the batch will be sent again",
                r.status()
            )));
        }
    }
    Ok(())
}

pub async fn activity(a: ActivityArgs) -> Result<(), Error> {
    let c = a.conn.client()?;
    let out = a.conn.output();
    match a.cmd {
        ActivityCmd::List {
            filters,
            after,
            limit,
        } => {
            let events = page(&c, &filters, after, limit).await?;
            let human = events
                .iter()
                .map(|e| {
                    format!(
                        "{:>8}  {}  {:<28} {:<8} {:<20} {}",
                        e["seq"].as_str().unwrap_or(""),
                        e["eventTime"].as_str().unwrap_or(""),
                        e["action"].as_str().unwrap_or(""),
                        e["outcome"].as_str().unwrap_or(""),
                        e["reason"]["reasonType"].as_str().unwrap_or(""),
                        e["target"]["id"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(out, human, &json!({ "events": events }));
        }
        ActivityCmd::Export {
            filters,
            to_file,
            webhook,
            state,
            follow,
            every,
            include_reads,
        } => {
            let http = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .map_err(Error::context("HTTP client"))?;
            let mut after = position(&state, to_file.as_deref())?;
            let mut exported = 0u64;
            let mut backoff = 1u64;
            loop {
                let events = match page(&c, &filters, after, 1000).await {
                    Ok(v) => v,
                    Err(e) if follow => {
                        eprintln!("activity export: {e}; retrying in {backoff} s");
                        tokio::time::sleep(std::time::Duration::from_secs(backoff)).await;
                        backoff = (backoff * 2).min(30);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let Some(last) = events.last().map(seq_of).transpose()? else {
                    if !follow {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(every.max(1))).await;
                    continue;
                };
                let batch: Vec<Value> = events
                    .into_iter()
                    .filter(|e| include_reads || e["action"] != "activity.events.read")
                    .collect();
                if !batch.is_empty() {
                    if let Err(e) =
                        deliver(&batch, to_file.as_deref(), webhook.as_deref(), &http).await
                    {
                        if !follow {
                            return Err(e);
                        }
                        eprintln!("activity export: {e}; retrying in {backoff} s");
                        tokio::time::sleep(std::time::Duration::from_secs(backoff)).await;
                        backoff = (backoff * 2).min(30);
                        continue;
                    }
                }
                backoff = 1;
                exported += batch.len() as u64;
                after = last;
                save_position(&state, after)?;
            }
            print(
                out,
                format!("exported {exported} event(s); position {after}"),
                &json!({"exported": exported, "position": after}),
            );
        }
    }
    Ok(())
}
