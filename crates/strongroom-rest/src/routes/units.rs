//! Crypto units of the caller's instance: signed status, signed administrative commands,
//! re-encryption during a rotation.

use crate::*;

/// `GET /api/v2/crypto_units`: the signed status of each unit of the instance on this node.
pub(crate) async fn list_units(State(st): State<AppState>, h: HeaderMap) -> ApiResult {
    const WHAT: &str = "Crypto units could not be listed";
    let call = Call::begin(&st, &h, Action::UnitsList, WHAT).await?;
    let ctx = &call.ctx;
    let list = call.run(st.svc.list_units(ctx)).await?;
    let (zone, region) = st.svc.placement();
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(local_units_json(&list, zone, region)),
        &correlation_id(&h),
    ))
}

pub(crate) fn parse_unit_id(s: &str, what: &'static str) -> Result<UnitId, ApiError> {
    s.parse().map_err(|_| {
        ApiError::new(
            ServiceError::new(ErrorKind::UnitNotFound, "crypto unit ids are UUIDs"),
            what,
        )
    })
}

/// `GET /api/v2/crypto_units/{unit}`: one unit's signed status.
pub(crate) async fn get_unit(
    State(st): State<AppState>,
    Path(unit): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Crypto unit could not be read";
    let call = Call::begin(&st, &h, Action::UnitsRead, WHAT).await?;
    let ctx = &call.ctx;
    let unit = parse_unit_id(&unit, WHAT)?;
    let r = call.run(st.svc.query_unit(ctx, unit)).await?;
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(json!(r)),
        &correlation_id(&h),
    ))
}

/// `POST /api/v2/crypto_units/{unit}/commands`: a signed administrative command.
pub(crate) async fn unit_command(
    State(st): State<AppState>,
    Path(unit): Path<String>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "Crypto unit command was refused";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let call = Call::begin(&st, &h, Action::UnitsCommand, WHAT).await?;
    let ctx = &call.ctx;
    let unit = parse_unit_id(&unit, WHAT)?;
    let cmd: SignedCommand = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            let err = ServiceError::new(
                ErrorKind::UnitCommandMalformed,
                format!("the body is not a signed command ({{\"body\": base64, \"signatures\": [...]}}): {e}"),
            );
            return Err(call.refuse(&st, err, Some(&unit.to_string())).await);
        }
    };
    let r = call.run(st.svc.unit_command(ctx, unit, &cmd)).await?;
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(json!(r)),
        &correlation_id(&h),
    ))
}

/// `POST /api/v2/crypto_units/reencrypt?batch=N`: re-encrypts up to N key blobs of the
/// instance under the new master key (rotation in progress); answers the progress.
pub(crate) async fn reencrypt(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key storage could not be re-encrypted";
    let call = Call::begin(&st, &h, Action::UnitsReencrypt, WHAT).await?;
    let ctx = &call.ctx;
    let batch = call
        .accept(
            &st,
            q.get("batch")
                .map(|s| parse_u32_param("batch", s, 1, 5000))
                .transpose(),
            None,
        )
        .await?
        .unwrap_or(1000);
    let r = call.run(st.svc.reencrypt(ctx, batch)).await?;
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(json!(r)),
        &correlation_id(&h),
    ))
}
