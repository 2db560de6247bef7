//! The GREP11 client: the protobuf messages and the `grep11.Crypto` stub, and the error
//! detail (`grep11.Grep11Error`) a refusal carries.

use prost::Message;

/// The GREP11 messages and the client stub.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("grep11");
}

/// Strongroom's keystore for PKCS#11 token objects.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod keystore {
    tonic::include_proto!("strongroom.keystore");
}

#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod rpc {
    tonic::include_proto!("google.rpc");
}

/// The `grep11.Grep11Error` a status carries, if it carries exactly one.
pub fn grep11_error_of(status: &tonic::Status) -> Option<pb::Grep11Error> {
    let rich = rpc::Status::decode(status.details()).ok()?;
    match rich.details.as_slice() {
        [any] if any.type_url.ends_with("/grep11.Grep11Error") => {
            pb::Grep11Error::decode(any.value.as_slice()).ok()
        }
        _ => None,
    }
}
