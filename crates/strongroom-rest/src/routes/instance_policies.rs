//! Instance policies and the allowedIP port listing.

use crate::*;

pub(crate) async fn put_instance_policies(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
    body: Body,
) -> ApiResult {
    const WHAT: &str = "Instance policies could not be updated";
    let only = q.get("policy").filter(|p| !p.is_empty()).cloned();
    let (call, inputs) = Call::with_body(
        &st,
        &h,
        body,
        Action::InstancePoliciesWrite,
        WHAT,
        None,
        |body| {
            let obj = required_object(body, "Missing body in request")?;
            parse_instance_policies(obj)
        },
    )
    .await?;
    let ctx = &call.ctx;
    call.run(st.svc.put_instance_policies(ctx, inputs, only.as_deref()))
        .await?;
    Ok(call.respond(StatusCode::NO_CONTENT, POLICY_JSON, None))
}

pub(crate) async fn get_instance_policies(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Instance policies could not be retrieved";
    let call = Call::begin(&st, &h, Action::InstancePoliciesRead, WHAT).await?;
    let ctx = &call.ctx;
    let only = q.get("policy").filter(|p| !p.is_empty()).cloned();
    let list = call
        .run(st.svc.get_instance_policies(ctx, only.as_deref()))
        .await?;
    let resources: Vec<Value> = list.iter().map(instance_policy_json).collect();
    Ok(call.respond(
        StatusCode::OK,
        "application/json",
        Some(collection(POLICY_JSON, resources)),
    ))
}

/// Strongroom has no private endpoint: the list is empty (documented in docs/compatibility.md).
pub(crate) async fn allowed_ip_port(State(st): State<AppState>, h: HeaderMap) -> ApiResult {
    const WHAT: &str = "Allowed IP port could not be retrieved";
    let call = Call::begin(&st, &h, Action::InstancePoliciesRead, WHAT).await?;
    let ctx = &call.ctx;
    call.run(st.svc.get_instance_policies(ctx, Some("allowedIP")))
        .await?;
    Ok(call.respond(
        StatusCode::OK,
        "application/json",
        Some(collection(
            "application/vnd.ibm.kms.allowed_ip_metadata+json",
            vec![],
        )),
    ))
}
