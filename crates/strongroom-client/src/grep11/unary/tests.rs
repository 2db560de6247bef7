use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::*;

/// What a test server answers.
#[derive(Clone)]
enum Answer {
    /// HTTP 200, the message framed, then trailers with `grpc-status` and, when given,
    /// `grpc-status-details-bin` (a google.rpc.Status with one grep11.Grep11Error).
    Message(Vec<u8>, &'static str, Option<pb::Grep11Error>),
    /// A body that is not one gRPC message, with `grpc-status: 0`.
    RawBody(Vec<u8>),
    /// A refusal in the response headers only ("trailers-only").
    HeadersOnly(&'static str, &'static str),
    /// An HTTP error status.
    Http(u16),
    /// Never answers.
    Silence,
}

/// What the server saw of the last request: path, headers, body.
type Seen = Arc<Mutex<Option<(String, HeaderMap, Bytes)>>>;

fn details(e: &pb::Grep11Error) -> HeaderValue {
    use base64::Engine as _;
    let any = prost_types::Any {
        type_url: "type.googleapis.com/grep11.Grep11Error".into(),
        value: e.encode_to_vec(),
    };
    let st = super::super::rpc::Status {
        code: 3,
        message: e.detail.clone(),
        details: vec![any],
    };
    base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(st.encode_to_vec())
        .parse()
        .unwrap()
}

/// A plaintext HTTP/2 server on loopback that answers every request with `answer`.
async fn server(answer: Answer) -> (u16, Seen) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let (answer, seen) = (answer.clone(), s2.clone());
            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let (answer, seen) = (answer.clone(), seen.clone());
                async move {
                    let path = req.uri().path().to_string();
                    let headers = req.headers().clone();
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    *seen.lock().unwrap() = Some((path, headers, body));
                    let mut trailers = HeaderMap::new();
                    let (status, body) = match answer {
                        Answer::Message(m, code, err) => {
                            trailers.insert("grpc-status", HeaderValue::from_static(code));
                            if let Some(e) = err {
                                trailers.insert("grpc-message", "refused%20here".parse().unwrap());
                                trailers.insert("grpc-status-details-bin", details(&e));
                            }
                            (200, frame(&RawMessage(m)).to_vec())
                        }
                        Answer::RawBody(b) => {
                            trailers.insert("grpc-status", HeaderValue::from_static("0"));
                            (200, b)
                        }
                        Answer::HeadersOnly(code, msg) => {
                            let mut r = hyper::Response::new(
                                Full::new(Bytes::new())
                                    .with_trailers(async { None })
                                    .boxed_unsync(),
                            );
                            r.headers_mut()
                                .insert("grpc-status", HeaderValue::from_static(code));
                            r.headers_mut()
                                .insert("grpc-message", HeaderValue::from_static(msg));
                            return Ok::<_, Infallible>(r);
                        }
                        Answer::Http(code) => (code, Vec::new()),
                        Answer::Silence => {
                            std::future::pending::<()>().await;
                            unreachable!()
                        }
                    };
                    let mut r = hyper::Response::new(
                        Full::new(Bytes::from(body))
                            .with_trailers(async move { Some(Ok::<_, Infallible>(trailers)) })
                            .boxed_unsync(),
                    );
                    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                    Ok::<_, Infallible>(r)
                }
            });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc),
            );
        }
    });
    (port, seen)
}

/// Bytes that encode as themselves (a message already encoded).
#[derive(Debug)]
struct RawMessage(Vec<u8>);

impl Message for RawMessage {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        buf.put_slice(&self.0);
    }
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Only encoded in these tests; decoding one skips its fields.
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }
    fn encoded_len(&self) -> usize {
        self.0.len()
    }
    fn clear(&mut self) {
        self.0.clear();
    }
}

async fn open(port: u16, call: Duration) -> Connection {
    let t = Timeouts {
        connect: Duration::from_secs(5),
        call,
    };
    Connection::open("127.0.0.1", port, &Transport::Plain, t)
        .await
        .unwrap()
}

fn sign_request() -> pb::SignSingleRequest {
    pb::SignSingleRequest {
        data: vec![7; 32],
        priv_key: Some(pb::KeyBlob {
            key_blobs: vec![vec![9; 2500]],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn metadata() -> HeaderMap {
    let mut m = HeaderMap::new();
    m.insert("authorization", HeaderValue::from_static("Bearer t0k"));
    m.insert("bluemix-instance", HeaderValue::from_static("i-1"));
    m
}

#[test]
fn paths_and_responses_come_from_the_protos() {
    assert_eq!(pb::SignSingleRequest::PATH, "/grep11.Crypto/SignSingle");
    assert_eq!(
        pb::GetMechanismListRequest::PATH,
        "/grep11.Crypto/GetMechanismList"
    );
    assert_eq!(
        keystore::ListObjectsRequest::PATH,
        "/strongroom.keystore.Keystore/ListObjects"
    );
    // The response type is the method's: decoding a SignSingleResponse through it works.
    let r = <pb::SignSingleRequest as Unary>::Response::decode(
        pb::SignSingleResponse {
            signature: vec![1, 2],
        }
        .encode_to_vec()
        .as_slice(),
    )
    .unwrap();
    assert_eq!(r.signature, vec![1, 2]);
}

#[test]
fn a_frame_holds_exactly_one_uncompressed_message() {
    let req = sign_request();
    let f = frame(&req);
    assert_eq!(f[0], 0);
    assert_eq!(
        u32::from_be_bytes([f[1], f[2], f[3], f[4]]) as usize,
        req.encoded_len()
    );
    assert_eq!(unframe(&f).unwrap(), &req.encode_to_vec()[..]);
    let mut compressed = f.to_vec();
    compressed[0] = 1;
    assert!(unframe(&compressed)
        .unwrap_err()
        .message()
        .contains("compressed"));
    assert!(unframe(&f[..f.len() - 1]).is_err(), "short");
    let mut long = f.to_vec();
    long.push(0);
    assert!(unframe(&long).is_err(), "trailing bytes");
    assert!(unframe(&f[..4]).is_err(), "no header");
}

#[tokio::test]
async fn a_call_sends_the_method_metadata_and_message_and_decodes_the_answer() {
    let want = pb::SignSingleResponse {
        signature: vec![5; 64],
    };
    let (port, seen) = server(Answer::Message(want.encode_to_vec(), "0", None)).await;
    let mut c = open(port, Duration::from_secs(5)).await;
    let req = sign_request();
    let got = c.call(&req, &metadata()).await.unwrap();
    assert_eq!(got, want);
    let (path, headers, body) = seen.lock().unwrap().take().unwrap();
    assert_eq!(path, "/grep11.Crypto/SignSingle");
    assert_eq!(headers["content-type"], "application/grpc");
    assert_eq!(headers["te"], "trailers");
    assert_eq!(headers["authorization"], "Bearer t0k");
    assert_eq!(headers["bluemix-instance"], "i-1");
    assert_eq!(
        pb::SignSingleRequest::decode(unframe(&body).unwrap()).unwrap(),
        req
    );
    // The connection serves further calls, from clones too.
    let mut c2 = c.clone();
    assert_eq!(c2.call(&req, &metadata()).await.unwrap(), want);
    assert!(!c.is_closed());
}

#[tokio::test]
async fn a_refusal_keeps_its_code_message_and_grep11_detail() {
    let e = pb::Grep11Error {
        code: 0x68,
        detail: "key handle invalid".into(),
        retry: false,
    };
    let (port, _) = server(Answer::Message(Vec::new(), "3", Some(e.clone()))).await;
    let mut c = open(port, Duration::from_secs(5)).await;
    let st = c.call(&sign_request(), &metadata()).await.unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    assert_eq!(st.message(), "refused here");
    assert_eq!(crate::grep11::grep11_error_of(&st), Some(e));
}

#[tokio::test]
async fn a_headers_only_refusal_is_a_refusal() {
    let (port, _) = server(Answer::HeadersOnly("16", "no token")).await;
    let mut c = open(port, Duration::from_secs(5)).await;
    let st = c.call(&sign_request(), &metadata()).await.unwrap_err();
    assert_eq!(st.code(), Code::Unauthenticated);
    assert_eq!(st.message(), "no token");
}

#[tokio::test]
async fn http_errors_map_to_grpc_codes() {
    for (http, code) in [
        (404, Code::Unimplemented),
        (401, Code::Unauthenticated),
        (503, Code::Unavailable),
        (500, Code::Unknown),
    ] {
        let (port, _) = server(Answer::Http(http)).await;
        let mut c = open(port, Duration::from_secs(5)).await;
        let st = c.call(&sign_request(), &metadata()).await.unwrap_err();
        assert_eq!(st.code(), code, "HTTP {http}");
    }
}

#[tokio::test]
async fn an_answer_that_is_not_one_message_is_an_internal_error() {
    for body in [vec![0, 0, 0, 0, 9, 1], vec![0xff; 3], Vec::new()] {
        let (port, _) = server(Answer::RawBody(body.clone())).await;
        let mut c = open(port, Duration::from_secs(5)).await;
        let st = c.call(&sign_request(), &metadata()).await.unwrap_err();
        assert_eq!(st.code(), Code::Internal, "{body:?}: {st:?}");
    }
    // One framed message that is not a SignSingleResponse.
    let (port, _) = server(Answer::Message(vec![0x0a, 0x05, 1], "0", None)).await;
    let mut c = open(port, Duration::from_secs(5)).await;
    let st = c.call(&sign_request(), &metadata()).await.unwrap_err();
    assert!(st.message().contains("does not decode"), "{st:?}");
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_gone_one_is_unreachable() {
    let (port, _) = server(Answer::Silence).await;
    let mut c = open(port, Duration::from_millis(200)).await;
    let st = c.call(&sign_request(), &metadata()).await.unwrap_err();
    assert_eq!(st.code(), Code::DeadlineExceeded);

    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let t = Timeouts::default();
    let err = Connection::open("127.0.0.1", port, &Transport::Plain, t)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ConnectError::Unreachable { .. }), "{err}");
}

#[tokio::test]
async fn a_closed_connection_says_so_and_its_calls_are_unavailable() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let svc = hyper::service::service_fn(|_req: hyper::Request<Incoming>| async {
            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new())))
        });
        // Serve the handshake, then drop the connection.
        let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(tcp), svc);
        let _ = tokio::time::timeout(Duration::from_millis(100), conn).await;
    });
    let mut c = open(port, Duration::from_secs(5)).await;
    server.await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !c.is_closed() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(c.is_closed());
    let st = c.call(&sign_request(), &metadata()).await.unwrap_err();
    assert_eq!(st.code(), Code::Unavailable, "{st:?}");
}
