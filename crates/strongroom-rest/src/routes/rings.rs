//! Key rings.

use crate::*;

pub(crate) async fn list_rings(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key rings could not be listed";
    let call = Call::begin(&st, &h, Action::KeyRingsList, WHAT).await?;
    let ctx = &call.ctx;
    let parsed = (|| {
        let (limit, offset, total) = paging(&q, 100)?;
        Ok((limit, offset, total))
    })();
    let (limit, offset, want_total) = call.accept(&st, parsed, None).await?;
    let rings = call.run(st.svc.list_key_rings(ctx)).await?;
    let total = rings.len();
    let page: Vec<Value> = rings
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(ring_json)
        .collect();
    let mut body = collection(KEY_RING_JSON, page);
    with_total(&mut body, want_total.then_some(total as u64));
    Ok(call.respond(StatusCode::OK, "application/json", Some(body)))
}

pub(crate) async fn create_ring(
    State(st): State<AppState>,
    Path(ring): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key ring could not be created";
    let call = Call::begin(&st, &h, Action::KeyRingsCreate, WHAT).await?;
    let ctx = &call.ctx;
    call.run(st.svc.create_key_ring(ctx, &ring)).await?;
    Ok(call.respond(StatusCode::CREATED, KEY_RING_JSON, None))
}

pub(crate) async fn delete_ring(
    State(st): State<AppState>,
    Path(ring): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key ring could not be deleted";
    let call = Call::begin(&st, &h, Action::KeyRingsDelete, WHAT).await?;
    let ctx = &call.ctx;
    let force = call.force(&st, &q, Some(&ring)).await?;
    call.run(st.svc.delete_key_ring(ctx, &ring, force)).await?;
    Ok(call.respond(StatusCode::NO_CONTENT, KEY_RING_JSON, None))
}
