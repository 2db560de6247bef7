//! Key policies (rotation, dual authorization delete).

use crate::*;

pub(crate) fn policy_filter(q: &HashMap<String, String>) -> Result<Option<&str>, ServiceError> {
    match q.get("policy").map(String::as_str) {
        None | Some("") => Ok(None),
        Some(p @ ("rotation" | "dualAuthDelete")) => Ok(Some(p)),
        Some(other) => Err(ServiceError::new(
            ErrorKind::InvalidQueryParam,
            format!("'policy' must be rotation or dualAuthDelete, not '{other}'"),
        )),
    }
}

pub(crate) async fn get_policies(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key policies could not be retrieved";
    let call = Call::begin(&st, &h, Action::PoliciesRead, WHAT).await?;
    let ctx = &call.ctx;
    let which = call.accept(&st, policy_filter(&q), Some(&id)).await?;
    let (key, p) = call.run(st.svc.get_key_policies(ctx, &id)).await?;
    Ok(call.respond(
        StatusCode::OK,
        "application/json",
        Some(policies_json(ctx.instance, key, &p, which)),
    ))
}

pub(crate) async fn put_policies(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "Key policies could not be updated";
    let (call, (rotation, dual)) = Call::with_body(
        &st,
        &h,
        body,
        Action::PoliciesWrite,
        WHAT,
        Some(&id),
        |body| {
            let which = policy_filter(&q)?;
            let obj = required_object(body, "Missing body in request")?;
            parse_policy_body(obj, which)
        },
    )
    .await?;
    let ctx = &call.ctx;
    let (key, p) = call
        .run(st.svc.put_key_policies(ctx, &id, rotation, dual))
        .await?;
    Ok(call.respond(
        StatusCode::OK,
        "application/json",
        Some(policies_json(ctx.instance, key, &p, None)),
    ))
}
