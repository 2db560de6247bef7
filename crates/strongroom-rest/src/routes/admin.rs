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

/// One call of the administrator's API, once the admin token is checked: the words its
/// errors start with, said once per handler, and its answers with the correlation id.
pub(crate) struct AdminCall {
    pub(crate) ctx: AdminCtx,
    what: &'static str,
    correlation_id: String,
}

impl AdminCall {
    /// Checks the admin token; a refusal is audited under `action`.
    pub(crate) async fn begin(
        st: &AppState,
        h: &HeaderMap,
        action: Action,
        what: &'static str,
    ) -> Result<AdminCall, ApiError> {
        Ok(AdminCall {
            ctx: admin(st, h, action, what).await?,
            what,
            correlation_id: correlation_id(h),
        })
    }

    /// The instance a path names (an id that is not one is an unknown instance).
    pub(crate) fn instance(&self, id: &str) -> Result<InstanceId, ApiError> {
        parse_instance_id(id, self.what)
    }

    /// The error answer of a refusal.
    pub(crate) fn fail(&self, e: ServiceError) -> ApiError {
        ApiError::new(e, self.what)
    }

    /// Awaits the service's answer; a refusal becomes the call's error answer.
    pub(crate) async fn run<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, ApiError> {
        f.await.map_err(|e| self.fail(e))
    }

    /// A JSON answer.
    pub(crate) fn respond(&self, status: StatusCode, body: Option<Value>) -> Response {
        respond(status, "application/json", body, &self.correlation_id)
    }
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
    let c = AdminCall::begin(&st, &h, Action::AdminInstancesCreate, WHAT).await?;
    let name = parse_object(&body)
        .and_then(|o| {
            o.ok_or_else(|| {
                ServiceError::new(
                    ErrorKind::NoBody,
                    "Missing body in request: {\"name\": ...} is required",
                )
            })
        })
        .and_then(|o| {
            Fields::new(
                o,
                &[
                    "name",
                    "units",
                    "recovery_units",
                    "dev_master_key",
                    "allow_same_zone",
                ],
            )
        })
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
            let recovery_given = f.get("recovery_units").is_some();
            let layout = UnitLayout {
                operational: count("units", 1)?,
                recovery: count("recovery_units", 0)?,
                dev_master_key: f.bool("dev_master_key", "dev_master_key")?.unwrap_or(false),
                allow_same_zone: f
                    .bool("allow_same_zone", "allow_same_zone")?
                    .unwrap_or(false),
            };
            Ok((name, layout, recovery_given))
        })
        .map_err(|e| c.fail(e))?;
    let (name, mut layout, recovery_given) = name;
    // Without recovery_units, the recovery units HPCS keeps (two, the second in another
    // region when the cluster has one).
    if !recovery_given && !layout.dev_master_key {
        layout.recovery = c.run(st.svc.default_recovery_units()).await?;
    }
    let rec = c.run(st.svc.create_instance(&c.ctx, &name, layout)).await?;
    Ok(c.respond(StatusCode::CREATED, Some(instance_json(&rec))))
}

/// `POST /admin/v1/instances/{id}/units` `{"kind": "operational"|"recovery",
/// "allow_same_zone"?}`: a new unit of the instance on this node, in imprint mode. An
/// operational unit is refused in a zone where the instance already has one.
pub(crate) async fn admin_add_unit(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "Crypto unit could not be created";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let c = AdminCall::begin(&st, &h, Action::AdminUnitsCreate, WHAT).await?;
    let instance = c.instance(&id)?;
    let (kind, allow_same_zone) = parse_object(&body)
        .and_then(|o| Fields::new(o.unwrap_or_default(), &["kind", "allow_same_zone"]))
        .and_then(|f| {
            let k = f
                .string("kind", "kind")?
                .unwrap_or_else(|| "operational".into());
            let kind = strongroom_service::parse_unit_kind(&k).ok_or_else(|| {
                ServiceError::field(
                    ErrorKind::InvalidField,
                    "kind",
                    "kind must be 'operational' or 'recovery'",
                )
            })?;
            Ok((
                kind,
                f.bool("allow_same_zone", "allow_same_zone")?
                    .unwrap_or(false),
            ))
        })
        .map_err(|e| c.fail(e))?;
    let unit = c
        .run(st.svc.add_unit(&c.ctx, instance, kind, allow_same_zone))
        .await?;
    Ok(c.respond(StatusCode::CREATED, Some(unit_added_json(unit, instance))))
}

/// `GET /admin/v1/instances/{id}/units`: the instance's units on every node, with their
/// zones and regions, and what the placement lacks.
pub(crate) async fn admin_list_units(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Crypto units could not be listed";
    let c = AdminCall::begin(&st, &h, Action::AdminUnitsList, WHAT).await?;
    let instance = c.instance(&id)?;
    let placement = c.run(st.svc.unit_placement(&c.ctx, instance)).await?;
    Ok(c.respond(StatusCode::OK, Some(placement_json(&placement))))
}

pub(crate) async fn admin_list_instances(State(st): State<AppState>, h: HeaderMap) -> ApiResult {
    const WHAT: &str = "Instances could not be listed";
    let c = AdminCall::begin(&st, &h, Action::AdminInstancesList, WHAT).await?;
    let list = c.run(st.svc.list_instances(&c.ctx)).await?;
    let body = admin_list_json("instances", &list, instance_json);
    Ok(c.respond(StatusCode::OK, Some(body)))
}

pub(crate) async fn admin_delete_instance(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Instance could not be deleted";
    let c = AdminCall::begin(&st, &h, Action::AdminInstancesDelete, WHAT).await?;
    let id = c.instance(&id)?;
    c.run(st.svc.delete_instance(&c.ctx, id)).await?;
    Ok(c.respond(StatusCode::NO_CONTENT, None))
}

/// `GET /admin/v1/instances/{id}/usage[?month=YYYY-MM]`: API calls in a calendar month (UTC).
pub(crate) async fn admin_instance_usage(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Usage could not be retrieved";
    let c = AdminCall::begin(&st, &h, Action::AdminInstancesUsage, WHAT).await?;
    let instance = c.instance(&id)?;
    let (from, to, month) =
        month_bounds(q.get("month").map(String::as_str), st.svc.now()).map_err(|e| c.fail(e))?;
    let usage = c
        .run(st.svc.instance_usage(&c.ctx, instance, from, to, &month))
        .await?;
    let body = usage_json(instance, &month, from, to, &usage);
    Ok(c.respond(StatusCode::OK, Some(body)))
}

/// The grant of a request body: `roles` (required) and `key_rings` (absent or null for
/// the whole instance).
fn grant_of(f: &Fields) -> Result<Grant, ServiceError> {
    let roles = f
        .strings("roles", "roles")?
        .iter()
        .map(|r| {
            r.parse::<Role>()
                .map_err(|e| ServiceError::field(ErrorKind::InvalidField, "roles", e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key_rings = match f.get("key_rings") {
        None | Some(Value::Null) => None,
        Some(_) => Some(f.strings("key_rings", "key_rings")?),
    };
    Ok(Grant {
        roles: Roles::of(&roles),
        key_rings,
    })
}

/// A JSON object body with only `known` fields, or `NoBody` saying what is required.
fn object_body(body: &[u8], known: &[&str], required: &str) -> Result<Fields, ServiceError> {
    let o = parse_object(body)?.ok_or_else(|| {
        ServiceError::new(
            ErrorKind::NoBody,
            format!("Missing body in request: {required} is required"),
        )
    })?;
    Fields::new(o, known)
}

/// `POST /admin/v1/instances/{id}/api_keys`: `{name, roles, key_rings?}` for a key with
/// its own grant, or `{name, service_id}` for a key of a service ID.
pub(crate) async fn admin_create_api_key(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "API key could not be created";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let c = AdminCall::begin(&st, &h, Action::AdminApiKeysCreate, WHAT).await?;
    let instance = c.instance(&id)?;
    let (name, access) = (|| {
        let f = object_body(
            &body,
            &["name", "roles", "key_rings", "service_id"],
            "{\"name\", \"roles\"} or {\"name\", \"service_id\"}",
        )?;
        let name = f
            .string("name", "name")?
            .unwrap_or_else(|| "api key".into());
        let access = match f.string("service_id", "service_id")? {
            Some(_) if f.get("roles").is_some() || f.get("key_rings").is_some() => {
                return Err(ServiceError::field(
                    ErrorKind::InvalidField,
                    "service_id",
                    "a service ID's API key has the service ID's roles and key rings: leave roles and key_rings out",
                ));
            }
            Some(sid) => Access::ServiceId(sid),
            None => Access::Roles(grant_of(&f)?),
        };
        Ok::<_, ServiceError>((name, access))
    })()
    .map_err(|e| c.fail(e))?;
    let created = c
        .run(st.svc.create_api_key(&c.ctx, instance, &name, access))
        .await?;
    Ok(c.respond(StatusCode::CREATED, Some(api_key_created_json(&created))))
}

/// `POST /admin/v1/instances/{id}/service_ids`: `{name, roles, key_rings?}`.
pub(crate) async fn admin_create_service_id(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "Service ID could not be created";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let c = AdminCall::begin(&st, &h, Action::AdminServiceIdsCreate, WHAT).await?;
    let instance = c.instance(&id)?;
    let (name, grant) = object_body(
        &body,
        &["name", "roles", "key_rings"],
        "{\"name\", \"roles\"}",
    )
    .and_then(|f| {
        let name = f
            .string("name", "name")?
            .unwrap_or_else(|| "service id".into());
        Ok((name, grant_of(&f)?))
    })
    .map_err(|e| c.fail(e))?;
    let created = c
        .run(st.svc.create_service_id(&c.ctx, instance, &name, grant))
        .await?;
    Ok(c.respond(StatusCode::CREATED, Some(service_id_json(&created))))
}

/// `GET /admin/v1/instances/{id}/service_ids`.
pub(crate) async fn admin_list_service_ids(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Service IDs could not be listed";
    let c = AdminCall::begin(&st, &h, Action::AdminServiceIdsList, WHAT).await?;
    let instance = c.instance(&id)?;
    let list = c.run(st.svc.list_service_ids(&c.ctx, instance)).await?;
    let body = admin_list_json("service_ids", &list, service_id_json);
    Ok(c.respond(StatusCode::OK, Some(body)))
}

/// `PUT /admin/v1/instances/{id}/service_ids/{sid}`: `{roles, key_rings?}` replaces the
/// service ID's grant.
pub(crate) async fn admin_update_service_id(
    State(st): State<AppState>,
    Path((id, sid)): Path<(String, String)>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "Service ID could not be updated";
    let body = body_bytes(body, st.opts.max_body, WHAT).await?;
    let c = AdminCall::begin(&st, &h, Action::AdminServiceIdsUpdate, WHAT).await?;
    let instance = c.instance(&id)?;
    let grant = object_body(&body, &["roles", "key_rings"], "{\"roles\"}")
        .and_then(|f| grant_of(&f))
        .map_err(|e| c.fail(e))?;
    let updated = c
        .run(st.svc.update_service_id(&c.ctx, instance, &sid, grant))
        .await?;
    Ok(c.respond(StatusCode::OK, Some(service_id_json(&updated))))
}

/// `DELETE /admin/v1/instances/{id}/service_ids/{sid}`: the service ID and its API keys.
pub(crate) async fn admin_delete_service_id(
    State(st): State<AppState>,
    Path((id, sid)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Service ID could not be deleted";
    let c = AdminCall::begin(&st, &h, Action::AdminServiceIdsDelete, WHAT).await?;
    let instance = c.instance(&id)?;
    c.run(st.svc.delete_service_id(&c.ctx, instance, &sid))
        .await?;
    Ok(c.respond(StatusCode::NO_CONTENT, None))
}

pub(crate) async fn admin_list_api_keys(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "API keys could not be listed";
    let c = AdminCall::begin(&st, &h, Action::AdminApiKeysList, WHAT).await?;
    let instance = c.instance(&id)?;
    let list = c.run(st.svc.list_api_keys(&c.ctx, instance)).await?;
    let body = admin_list_json("api_keys", &list, api_key_json);
    Ok(c.respond(StatusCode::OK, Some(body)))
}

pub(crate) async fn admin_delete_api_key(
    State(st): State<AppState>,
    Path((id, key_id)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "API key could not be deleted";
    let c = AdminCall::begin(&st, &h, Action::AdminApiKeysDelete, WHAT).await?;
    let instance = c.instance(&id)?;
    c.run(st.svc.delete_api_key(&c.ctx, instance, &key_id))
        .await?;
    Ok(c.respond(StatusCode::NO_CONTENT, None))
}

/// `DELETE /admin/v1/instances/{id}/allowed_ip`: turns the instance's allowedIP policy off,
/// for an instance whose Managers locked themselves out. Answers whether a policy was on.
pub(crate) async fn admin_clear_allowed_ip(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "allowedIP policy could not be cleared";
    let c = AdminCall::begin(&st, &h, Action::AdminInstancesAllowedIpClear, WHAT).await?;
    let instance = c.instance(&id)?;
    let was_enabled = c
        .run(st.svc.admin_clear_allowed_ip(&c.ctx, instance))
        .await?;
    Ok(c.respond(
        StatusCode::OK,
        Some(allowed_ip_cleared_json(&id, was_enabled)),
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
        Some(clock_json(st.svc.now())),
        &correlation_id(&h),
    ))
}
