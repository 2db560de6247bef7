//! One function per KMIP operation, grouped by family. Each reads its request payload,
//! calls the service once, and returns the response payload's items.

mod attributes;
mod crypto;
mod objects;
mod server;

use crate::codes::{op, reason};
use crate::error_map::KmipError;
use crate::message::OpCtx;
use crate::ttlv::Ttlv;

/// Runs one batch item.
pub async fn run(ctx: &mut OpCtx<'_>, operation: u32, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    match operation {
        op::DISCOVER_VERSIONS => server::discover_versions(p),
        op::QUERY => server::query(ctx, p),
        op::CREATE => objects::create(ctx, p).await,
        op::CREATE_KEY_PAIR => objects::create_key_pair(ctx, p).await,
        op::REGISTER => objects::register(ctx, p).await,
        op::GET => objects::get(ctx, p).await,
        op::ACTIVATE => objects::activate(ctx, p).await,
        op::GET_USAGE_ALLOCATION => objects::get_usage_allocation(ctx, p).await,
        op::REVOKE => objects::revoke(ctx, p).await,
        op::DESTROY => objects::destroy(ctx, p).await,
        op::REKEY => objects::rekey(ctx, p).await,
        op::GET_ATTRIBUTES => attributes::get_attributes(ctx, p).await,
        op::GET_ATTRIBUTE_LIST => attributes::get_attribute_list(ctx, p).await,
        op::ADD_ATTRIBUTE => attributes::add_attribute(ctx, p).await,
        op::MODIFY_ATTRIBUTE | op::SET_ATTRIBUTE => attributes::modify_attribute(ctx, p).await,
        op::DELETE_ATTRIBUTE => attributes::delete_attribute(ctx, p).await,
        op::LOCATE => attributes::locate(ctx, p).await,
        op::ENCRYPT => crypto::encrypt(ctx, p).await,
        op::DECRYPT => crypto::decrypt(ctx, p).await,
        op::SIGN => crypto::sign(ctx, p).await,
        op::SIGNATURE_VERIFY => crypto::signature_verify(ctx, p).await,
        op::MAC => crypto::mac(ctx, p).await,
        other => Err(KmipError::new(
            reason::OPERATION_NOT_SUPPORTED,
            format!("operation {other:#x} is not supported by this server"),
        )),
    }
}
