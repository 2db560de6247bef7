//! Activity events: the query of `GET /api/v2/activity_events`, and each event in the CADF
//! shape of IBM's Activity Tracker.

use super::*;

pub const ACTIVITY_EVENT_JSON: &str = "application/vnd.strongroom.activity_event+json";

/// The activity query of `GET /api/v2/activity_events`: `after` (the `next` of the last
/// page), `from` and `to` (RFC 3339), `action`, `outcome` (`success`, `failure`, or an error
/// code), `key`, `limit` (1 to 1,000, default 100).
pub fn activity_query(
    q: &HashMap<String, String>,
) -> Result<strongroom_service::ActivityQuery, ServiceError> {
    let after = match q.get("after") {
        None => 0,
        Some(s) => s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ServiceError::field(
                ErrorKind::InvalidQueryParam,
                "after",
                "must be the `next` value of a previous page",
            )
        })?,
    };
    let limit = q
        .get("limit")
        .map(|s| parse_u32_param("limit", s, 1, strongroom_service::MAX_ACTIVITY_PAGE))
        .transpose()?
        .unwrap_or(100);
    let (outcome, failures) = match q.get("outcome").map(String::as_str) {
        None => (None, false),
        Some("failure") => (None, true),
        Some(o) if !o.is_empty() && o.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') => {
            (Some(o.to_string()), false)
        }
        Some(_) => {
            return Err(ServiceError::field(
                ErrorKind::InvalidQueryParam,
                "outcome",
                "must be success, failure or an error code",
            ))
        }
    };
    Ok(strongroom_service::ActivityQuery {
        after,
        from: q.get("from").map(|s| time_param("from", s)).transpose()?,
        to: q.get("to").map(|s| time_param("to", s)).transpose()?,
        action: q.get("action").cloned(),
        outcome,
        failures,
        key: q.get("key").cloned(),
        limit,
    })
}

/// A time given as a query parameter (RFC 3339).
fn time_param(name: &'static str, s: &str) -> Result<UnixMillis, ServiceError> {
    parse_ts(name, s)
        .map_err(|e| ServiceError::field(ErrorKind::InvalidQueryParam, name, e.message))
}

/// One activity event in the CADF shape IBM's Activity Tracker gives Key Protect's events
/// (`action`, `eventTime`, `initiator`, `target`, `outcome`, `reason`, `severity`,
/// `correlationId`), plus its `seq`.
pub fn activity_event_json(
    instance: &strongroom_model::InstanceId,
    e: &strongroom_service::ActivityEvent,
) -> Value {
    let ok = e.outcome == "success";
    let destructive = ["delete", "purge", "destroy", "zeroize"]
        .iter()
        .any(|w| e.action.contains(w));
    let severity = match (ok, destructive) {
        (false, _) => "warning",
        (true, true) => "critical",
        (true, false) => "normal",
    };
    let target = match &e.key {
        Some(k) => json!({"id": k, "typeURI": "kms/secrets", "instance": instance.to_string()}),
        None => json!({"id": instance.to_string(), "typeURI": "kms/instance"}),
    };
    json!({
        "id": format!("{instance}:{}", e.seq),
        "seq": e.seq.to_string(),
        "typeURI": "http://schemas.dmtf.org/cloud/audit/1.0/event",
        "eventTime": ts(e.at),
        "action": e.action,
        "outcome": if ok { "success" } else { "failure" },
        "reason": {"reasonCode": e.status, "reasonType": e.outcome},
        "severity": severity,
        "initiator": {"id": e.principal, "typeURI": "service/security/account/user"},
        "target": target,
        "observer": {"name": "strongroom"},
        "correlationId": e.correlation_id,
    })
}
