//! Key aliases.

use crate::*;

pub(crate) async fn create_alias(
    State(st): State<AppState>,
    Path((id, alias)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key alias could not be created";
    let call = Call::begin(&st, &h, Action::SecretsCreateAlias, WHAT).await?;
    let ctx = &call.ctx;
    let (key_id, at) = call.run(st.svc.create_key_alias(ctx, &id, &alias)).await?;
    let res = alias_json(key_id, &alias, at, &ctx.principal.subject);
    Ok(call.one(StatusCode::CREATED, ALIAS_JSON, res))
}

pub(crate) async fn delete_alias(
    State(st): State<AppState>,
    Path((id, alias)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    const WHAT: &str = "Key alias could not be deleted";
    let call = Call::begin(&st, &h, Action::SecretsDeleteAlias, WHAT).await?;
    let ctx = &call.ctx;
    call.run(st.svc.delete_key_alias(ctx, &id, &alias)).await?;
    Ok(call.respond(StatusCode::NO_CONTENT, ALIAS_JSON, None))
}
