//! DiscoverVersions and Query.

use crate::codes::{object, op, query};
use crate::error_map::KmipError;
use crate::message::{OpCtx, Version, VERSIONS};
use crate::ttlv::{Tag, Ttlv};

/// The versions this server speaks that the client lists (all of them, newest first,
/// when it lists none).
pub fn discover_versions(p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let asked: Vec<Version> = p
        .children(Tag::PROTOCOL_VERSION)
        .map(|t| Version::from_ttlv(t).ok_or_else(|| KmipError::invalid("Protocol Version")))
        .collect::<Result<_, _>>()?;
    Ok(VERSIONS
        .iter()
        .map(|&(major, minor)| Version { major, minor })
        .filter(|v| asked.is_empty() || asked.contains(v))
        .map(Version::to_ttlv)
        .collect())
}

/// Operations, object types and server information.
pub fn query(ctx: &OpCtx<'_>, p: &Ttlv) -> Result<Vec<Ttlv>, KmipError> {
    let mut out = Vec::new();
    for f in p.children(Tag::QUERY_FUNCTION) {
        match f.as_enum() {
            Some(query::OPERATIONS) => out.extend(
                op::SUPPORTED
                    .iter()
                    .filter(|&&o| ctx.version.v2() || o != op::SET_ATTRIBUTE)
                    .map(|&o| Ttlv::enumeration(Tag::OPERATION, o)),
            ),
            Some(query::OBJECTS) => out.extend(
                [
                    object::CERTIFICATE,
                    object::SYMMETRIC_KEY,
                    object::PUBLIC_KEY,
                    object::PRIVATE_KEY,
                    object::SECRET_DATA,
                    object::OPAQUE_OBJECT,
                ]
                .iter()
                .map(|&o| Ttlv::enumeration(Tag::OBJECT_TYPE, o)),
            ),
            Some(query::SERVER_INFORMATION) => {
                out.push(Ttlv::text(Tag::VENDOR_IDENTIFICATION, "Strongroom"));
                out.push(Ttlv::structure(
                    Tag::SERVER_INFORMATION,
                    vec![
                        Ttlv::text(Tag::PRODUCT_NAME, "Strongroom KMS"),
                        Ttlv::text(Tag::BUILD_LEVEL, env!("CARGO_PKG_VERSION")),
                    ],
                ));
            }
            // Other query functions have nothing to report here.
            Some(_) => {}
            None => return Err(KmipError::invalid("Query Function")),
        }
    }
    Ok(out)
}
