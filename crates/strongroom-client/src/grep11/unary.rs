//! A lean client for unary gRPC calls: one request message out, one response message back,
//! over an HTTP/2 connection of its own.
//!
//! The PKCS#11 library makes one blocking GREP11 call per PKCS#11 function, from each
//! application thread, so the client's own cost per call bounds the rate of small operations
//! (an ECDSA signature, an AES block). A general gRPC stack sends each call through a
//! request buffer task, a codec with its own buffers and an interceptor chain, and hyper
//! adds a task per request to send its body; this client encodes the message once, sends
//! it as one stream of the `h2` crate's HTTP/2 client (the protocol layer under hyper) from
//! the calling task itself, and decodes the one message of the answer. What a call means is
//! unchanged: the same paths, the same messages, and a refusal comes back as the same
//! `tonic::Status`, details included, so callers map errors as they did.
//!
//! Which path and response type go with a request message is generated from the protos by
//! the build script ([`Unary`]).

use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use h2::client::SendRequest;
use hyper::body::Bytes;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE, TE};
use prost::Message;
use tonic::{Code, Status};

use super::{keystore, pb, ConnectError, Dial, Timeouts, Transport};

/// A request message of a unary method: the method's path and its response message.
pub trait Unary: Message {
    /// `/package.Service/Method`.
    const PATH: &'static str;
    /// The response message.
    type Response: Message + Default;
}

include!(concat!(env!("OUT_DIR"), "/unary_methods.rs"));

/// The largest response accepted (the server's messages are far smaller; a larger one is
/// refused rather than buffered).
pub const MAX_RESPONSE: usize = 64 << 20;

/// `msg` framed for gRPC: the uncompressed flag, the length (big-endian), the message.
pub fn frame(msg: &impl Message) -> Bytes {
    let len = msg.encoded_len();
    let mut buf = Vec::with_capacity(5 + len);
    buf.push(0);
    buf.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    // Encoding into a Vec with room for the message cannot fail.
    let _ = msg.encode(&mut buf);
    buf.into()
}

/// The one message of a unary answer's body, unframed.
pub fn unframe(body: &[u8]) -> Result<&[u8], Status> {
    let Some((&[flag, a, b, c, d], msg)) = body.split_first_chunk::<5>() else {
        return Err(Status::internal("the answer carries no gRPC message"));
    };
    if flag != 0 {
        return Err(Status::internal(
            "the answer is compressed, which this client did not ask for",
        ));
    }
    if msg.len() != u32::from_be_bytes([a, b, c, d]) as usize {
        return Err(Status::internal(
            "the answer is not exactly one gRPC message",
        ));
    }
    Ok(msg)
}

/// The gRPC code of an answer that is not HTTP 200 (gRPC's HTTP-to-status mapping).
fn code_of_http(status: hyper::StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502..=504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// One HTTP/2 connection to a GREP11 server, for unary calls. Clones share the connection
/// and may call concurrently (each call is a stream of its own).
#[derive(Clone)]
pub struct Connection {
    sender: SendRequest<Bytes>,
    closed: Arc<AtomicBool>,
    scheme: hyper::http::uri::Scheme,
    authority: hyper::http::uri::Authority,
    call_timeout: Duration,
}

/// A transport failure as gRPC reports one.
fn transport(e: h2::Error) -> Status {
    Status::unavailable(format!("GREP11 transport: {e}"))
}

impl Connection {
    /// Connects to `host`:`port` (TLS as `transport` says, the same settings as
    /// [`super::channel`]). The connection's task runs on the calling runtime.
    pub async fn open(
        host: &str,
        port: u16,
        transport: &Transport,
        timeouts: Timeouts,
    ) -> Result<Connection, ConnectError> {
        let dial = Dial::new(host, port, transport)?;
        let authority = dial
            .endpoint
            .parse()
            .map_err(|_| ConnectError::Endpoint(dial.endpoint.clone()))?;
        let timed_out = || ConnectError::Unreachable {
            endpoint: dial.endpoint.clone(),
            detail: format!("no connection within {:?}", timeouts.connect),
        };
        let io = tokio::time::timeout(timeouts.connect, dial.connect())
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| dial.unreachable(&e))?;
        let handshake = h2::client::Builder::new()
            .enable_push(false)
            .handshake::<_, Bytes>(io);
        let (sender, conn) = tokio::time::timeout(timeouts.connect, handshake)
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| dial.unreachable(&e))?;
        // The connection's task ends when the connection does (closed by either side, or
        // failed); from then on the connection is closed for good.
        let closed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&closed);
        tokio::spawn(async move {
            let _ = conn.await;
            flag.store(true, Ordering::Release);
        });
        Ok(Connection {
            sender,
            closed,
            scheme: if dial.is_tls() {
                hyper::http::uri::Scheme::HTTPS
            } else {
                hyper::http::uri::Scheme::HTTP
            },
            authority,
            call_timeout: timeouts.call,
        })
    }

    /// Whether the connection has closed (a new one is needed).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Calls the method of `req`, with `metadata` as request headers (`authorization`,
    /// `bluemix-instance`). A refusal, a transport failure or a timeout comes back as the
    /// `Status` a gRPC stack would give.
    pub async fn call<R: Unary>(
        &mut self,
        req: &R,
        metadata: &HeaderMap,
    ) -> Result<R::Response, Status> {
        let body = frame(req);
        let answer =
            tokio::time::timeout(self.call_timeout, self.exchange(R::PATH, body, metadata))
                .await
                .map_err(|_| {
                    Status::deadline_exceeded(format!("no answer within {:?}", self.call_timeout))
                })??;
        let msg = unframe(&answer)?;
        R::Response::decode(msg)
            .map_err(|e| Status::internal(format!("the answer does not decode: {e}")))
    }

    async fn exchange(
        &mut self,
        path: &'static str,
        body: Bytes,
        metadata: &HeaderMap,
    ) -> Result<Vec<u8>, Status> {
        let uri = hyper::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| Status::internal(format!("bad request path {path}: {e}")))?;
        let mut req = hyper::Request::post(uri)
            .body(())
            .map_err(|e| Status::internal(e.to_string()))?;
        let headers = req.headers_mut();
        headers.reserve(2 + metadata.len());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(TE, HeaderValue::from_static("trailers"));
        for (name, value) in metadata {
            headers.append(name, value.clone());
        }
        let mut sender = self.sender.clone().ready().await.map_err(transport)?;
        let (answer, mut stream) = sender.send_request(req, false).map_err(transport)?;
        // The body is queued whole (h2 sends it as the peer's flow control allows, while
        // this task waits for the answer below); the connection's `Coalesce` wrapper sends
        // it in the same write as the headers.
        stream.send_data(body, true).map_err(transport)?;
        let resp = answer.await.map_err(transport)?;
        if resp.status() != hyper::StatusCode::OK {
            return Err(Status::new(
                code_of_http(resp.status()),
                format!("the server answered HTTP {}", resp.status()),
            ));
        }
        // A refusal may come as headers only ("trailers-only"), with no body.
        if let Some(st) = Status::from_header_map(resp.headers()) {
            if st.code() != Code::Ok {
                return Err(st);
            }
        }
        // Each DATA frame is copied out and released at once, as a gRPC stack's decoder
        // does: a frame held until the end of the stream would pin the connection's read
        // buffer, which then grows a new one, and the freed buffers leave holes in the
        // application's heap between its long-lived objects (measured: 8 MB more resident
        // for 10,000 session objects made from one thread). Its room in the flow control
        // window is given back at once too.
        let mut body = resp.into_body();
        let mut message = Vec::new();
        while let Some(data) = body.data().await {
            let data = data.map_err(transport)?;
            let _ = body.flow_control().release_capacity(data.len());
            if message.len() + data.len() > MAX_RESPONSE {
                return Err(Status::resource_exhausted(format!(
                    "the answer is larger than {MAX_RESPONSE} bytes"
                )));
            }
            message.extend_from_slice(&data);
        }
        let trailers = body.trailers().await.map_err(transport)?;
        match trailers.as_ref().and_then(Status::from_header_map) {
            Some(st) if st.code() == Code::Ok => Ok(message),
            Some(st) => Err(st),
            None => Err(Status::internal("the answer has no grpc-status")),
        }
    }
}

#[cfg(test)]
mod tests;
