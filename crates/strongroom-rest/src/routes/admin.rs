//! The service administrator's API (`/admin/v1/...`): instances, API keys, units of an
//! instance on this node, usage, the allowedIP way back in, the test clock.

use crate::*;

pub(crate) async fn admin(
    st: &AppState,
    h: &HeaderMap,
    action: Action,
    what: &'static str,
) -> Result<AdminCtx, ApiError> {
    st.svc
        .authenticate_admin(header(h, "authorization"), correlation_id(h), action)
        .await
        .map_err(|e| ApiError::new(e, what))
}

pub(crate) fn instance_json(i: &strongroom_service::InstanceInfo) -> Value {
    json!({"id": i.id.to_string(), "name": i.name, "creationDate": ts(i.created_at)})
}

pub(crate) fn parse_instance_id(s: &str, what: &'static str) -> Result<InstanceId, ApiError> {
    s.parse().map_err(|_| {
        ApiError::new(
            ServiceError::new(ErrorKind::InstanceNotFound, "instance does not exist"),
            what,
        )
    })
}

pub(crate) async fn admin_create_instance(
    State(st): State<AppState>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "Instance could not be created";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let ctx = admin(&st, &h, Action::AdminInstancesCreate, WHAT).await?;
    let name = parse_object(&body)
        .and_then(|o| {
            o.ok_or_else(|| {
                ServiceError::new(
                    ErrorKind::NoBody,
                    "Missing body in request: {\"name\": ...} is required",
                )
            })
        })
        .and_then(|o| Fields::new(o, &["name", "units", "recovery_units", "dev_master_key"]))
        .and_then(|f| {
            let name = f.string("name", "name")?.ok_or_else(|| {
                ServiceError::field(
                    ErrorKind::InvalidField,
                    "name",
                    "The field 'name' is required",
                )
            })?;
            let count = |field: &'static str, default: i64| -> Result<u8, ServiceError> {
                let n = f.int(field, field)?.unwrap_or(default);
                u8::try_from(n).map_err(|_| {
                    ServiceError::field(
                        ErrorKind::InvalidField,
                        field,
                        "must be a small non-negative number",
                    )
                })
            };
            let layout = UnitLayout {
                operational: count("units", 1)?,
                recovery: count("recovery_units", 0)?,
                dev_master_key: f.bool("dev_master_key", "dev_master_key")?.unwrap_or(false),
            };
            Ok((name, layout))
        })
        .map_err(|e| ApiError::new(e, WHAT))?;
    let (name, layout) = name;
    let rec = st
        .svc
        .create_instance(&ctx, &name, layout)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::CREATED,
        "application/json",
        Some(instance_json(&rec)),
        &correlation_id(&h),
    ))
}

/// `POST /admin/v1/instances/{id}/units` `{"kind": "operational"|"recovery"}`: a new unit
/// of the instance on this node, in imprint mode.
pub(crate) async fn admin_add_unit(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "Crypto unit could not be created";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let ctx = admin(&st, &h, Action::AdminUnitsCreate, WHAT).await?;
    let instance = parse_instance_id(&id, WHAT)?;
    let kind = parse_object(&body)
        .and_then(|o| Fields::new(o.unwrap_or_default(), &["kind"]))
        .and_then(|f| f.string("kind", "kind"))
        .and_then(|k| {
            let k = k.unwrap_or_else(|| "operational".into());
            strongroom_service::parse_unit_kind(&k).ok_or_else(|| {
                ServiceError::field(
                    ErrorKind::InvalidField,
                    "kind",
                    "kind must be 'operational' or 'recovery'",
                )
            })
        })
        .map_err(|e| ApiError::new(e, WHAT))?;
    let unit = st
        .svc
        .add_unit(&ctx, instance, kind)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::CREATED,
        "application/json",
        Some(json!({"unit": unit.to_string(), "instance": instance.to_string()})),
        &correlation_id(&h),
    ))
}

pub(crate) async fn admin_list_instances(State(st): State<AppState>, h: HeaderMap) -> ApiResult {
    const WHAT: &str = "Instances could not be listed";
    let ctx = admin(&st, &h, Action::AdminInstancesList, WHAT).await?;
    let list = st
        .svc
        .list_instances(&ctx)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let body = json!({"instances": list.iter().map(instance_json).collect::<Vec<_>>()});
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(body),
        &correlation_id(&h),
    ))
}

pub(crate) async fn admin_delete_instance(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Instance could not be deleted";
    let ctx = admin(&st, &h, Action::AdminInstancesDelete, WHAT).await?;
    let id = parse_instance_id(&id, WHAT)?;
    st.svc
        .delete_instance(&ctx, id)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::NO_CONTENT,
        "application/json",
        None,
        &correlation_id(&h),
    ))
}

pub(crate) fn api_key_json(r: &strongroom_service::ApiKeyInfo) -> Value {
    json!({"id": r.id, "name": r.name, "instance": r.instance.to_string(), "roles": r.roles.names(), "creationDate": ts(r.created_at)})
}

/// `GET /admin/v1/instances/{id}/usage[?month=YYYY-MM]`: API calls in a calendar month (UTC).
pub(crate) async fn admin_instance_usage(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Usage could not be retrieved";
    let ctx = admin(&st, &h, Action::AdminInstancesUsage, WHAT).await?;
    let instance = parse_instance_id(&id, WHAT)?;
    let (from, to, month) = month_bounds(q.get("month").map(String::as_str), st.svc.now())
        .map_err(|e| ApiError::new(e, WHAT))?;
    let usage = st
        .svc
        .instance_usage(&ctx, instance, from, to, &month)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let units: Vec<Value> = usage
        .units
        .iter()
        .map(|(u, n)| json!({"unit": u.to_string(), "api_calls": n}))
        .collect();
    let body = json!({"instance": instance.to_string(), "month": month, "from": ts(from), "to": ts(to), "api_calls": usage.api_calls, "crypto_units": units});
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(body),
        &correlation_id(&h),
    ))
}

pub(crate) async fn admin_create_api_key(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "API key could not be created";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let ctx = admin(&st, &h, Action::AdminApiKeysCreate, WHAT).await?;
    let instance = parse_instance_id(&id, WHAT)?;
    let (name, roles) = (|| {
        let o = parse_object(&body)?.ok_or_else(|| {
            ServiceError::new(
                ErrorKind::NoBody,
                "Missing body in request: {\"name\", \"roles\"} is required",
            )
        })?;
        let f = Fields::new(o, &["name", "roles"])?;
        let name = f
            .string("name", "name")?
            .unwrap_or_else(|| "api key".into());
        let roles = f
            .strings("roles", "roles")?
            .iter()
            .map(|r| {
                r.parse::<Role>()
                    .map_err(|e| ServiceError::field(ErrorKind::InvalidField, "roles", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, ServiceError>((name, Roles::of(&roles)))
    })()
    .map_err(|e| ApiError::new(e, WHAT))?;
    let created = st
        .svc
        .create_api_key(&ctx, instance, &name, roles)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let mut body = api_key_json(&created.record);
    body["apikey"] = json!(created.api_key);
    Ok(respond(
        StatusCode::CREATED,
        "application/json",
        Some(body),
        &correlation_id(&h),
    ))
}

pub(crate) async fn admin_list_api_keys(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "API keys could not be listed";
    let ctx = admin(&st, &h, Action::AdminApiKeysList, WHAT).await?;
    let instance = parse_instance_id(&id, WHAT)?;
    let list = st
        .svc
        .list_api_keys(&ctx, instance)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    let body = json!({"api_keys": list.iter().map(api_key_json).collect::<Vec<_>>()});
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(body),
        &correlation_id(&h),
    ))
}

pub(crate) async fn admin_delete_api_key(
    State(st): State<AppState>,
    Path((id, key_id)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "API key could not be deleted";
    let ctx = admin(&st, &h, Action::AdminApiKeysDelete, WHAT).await?;
    let instance = parse_instance_id(&id, WHAT)?;
    st.svc
        .delete_api_key(&ctx, instance, &key_id)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::NO_CONTENT,
        "application/json",
        None,
        &correlation_id(&h),
    ))
}

/// `DELETE /admin/v1/instances/{id}/allowed_ip`: turns the instance's allowedIP policy off,
/// for an instance whose Managers locked themselves out. Answers whether a policy was on.
pub(crate) async fn admin_clear_allowed_ip(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "allowedIP policy could not be cleared";
    let ctx = admin(&st, &h, Action::AdminInstancesAllowedIpClear, WHAT).await?;
    let instance = parse_instance_id(&id, WHAT)?;
    let was_enabled = st
        .svc
        .admin_clear_allowed_ip(&ctx, instance)
        .await
        .map_err(|e| ApiError::new(e, WHAT))?;
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(json!({"instance": id, "allowedIP_was_enabled": was_enabled})),
        &correlation_id(&h),
    ))
}

/// `POST /admin/v1/test/clock {"advance_seconds": n}`: only when the server runs with
/// `--dev --test-clock`; moves the service clock forward so timing rules can be tested.
pub(crate) async fn test_clock(State(st): State<AppState>, h: HeaderMap, body: Body) -> ApiResult {
    const WHAT: &str = "Clock could not be advanced";
    let Some(clock) = st.opts.test_clock.clone() else {
        return Ok(not_found().await);
    };
    let body = body_bytes(body, 1024, WHAT).await?;
    admin(&st, &h, Action::AdminTestClockAdvance, WHAT).await?;
    let secs = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("advance_seconds").and_then(Value::as_i64))
        .ok_or_else(|| {
            ApiError::new(
                ServiceError::field(
                    ErrorKind::InvalidField,
                    "advance_seconds",
                    "advance_seconds must be an integer",
                ),
                WHAT,
            )
        })?;
    clock.advance(secs);
    Ok(respond(
        StatusCode::OK,
        "application/json",
        Some(json!({"now": ts(st.svc.now())})),
        &correlation_id(&h),
    ))
}
