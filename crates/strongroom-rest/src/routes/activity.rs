//! The instance's activity events (a Strongroom extension): its audit records as CADF
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
    let events = st
        .svc
        .activity(&call.ctx, query)
        .await
        .map_err(|e| call.fail(e))?;
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
