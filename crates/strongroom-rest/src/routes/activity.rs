//! The instance's activity events and usage (Strongroom extensions): its audit records as CADF
//! events, as IBM's Activity Tracker delivers Key Protect's.

use crate::*;

pub(crate) async fn list_activity(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Activity events could not be listed";
    let call = Call::begin(&st, &h, Action::ActivityRead, WHAT).await?;
    let parsed = activity_query(&q);
    let query = call.accept(&st, parsed, None).await?;
    let events = call.run(st.svc.activity(&call.ctx, query)).await?;
    let next = events.last().map(|e| e.seq);
    let mut body = collection(
        ACTIVITY_EVENT_JSON,
        events
            .iter()
            .map(|e| activity_event_json(&call.ctx.instance, e))
            .collect(),
    );
    with_next(&mut body, next);
    Ok(call.respond(StatusCode::OK, "application/json", Some(body)))
}

/// `GET /api/v2/instance/usage[?month=YYYY-MM]`: the instance's API calls in a calendar
/// month (UTC) and each crypto unit's share, as the administrator's usage report gives them.
pub(crate) async fn instance_usage(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Usage could not be retrieved";
    let call = Call::begin(&st, &h, Action::UsageRead, WHAT).await?;
    let parsed = month_bounds(q.get("month").map(String::as_str), st.svc.now());
    let (from, to, month) = call.accept(&st, parsed, None).await?;
    let usage = call.run(st.svc.usage(&call.ctx, from, to, &month)).await?;
    let body = usage_json(call.ctx.instance, &month, from, to, &usage);
    Ok(call.respond(StatusCode::OK, "application/json", Some(body)))
}

/// `GET /api/v2/instance/backups`: the archives holding this instance where the node writes
/// its backups, newest first, and when this node last wrote its scheduled backup.
pub(crate) async fn instance_backups(State(st): State<AppState>, h: HeaderMap) -> ApiResult {
    const WHAT: &str = "Backups could not be listed";
    let call = Call::begin(&st, &h, Action::BackupsRead, WHAT).await?;
    let view = call.run(st.svc.backups(&call.ctx)).await?;
    Ok(call.respond(
        StatusCode::OK,
        "application/json",
        Some(backups_json(&view)),
    ))
}
