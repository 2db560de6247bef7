//! A connection wrapper that makes HTTP/2 coalesce small frames into one write.
//!
//! h2 sends a DATA payload of 256 bytes or more as a separate slice of a vectored write and
//! must flush it before it may encode the next frame. A gRPC response whose message is a
//! 2048-bit RSA signature (263 bytes framed) therefore costs two `writev` calls: HEADERS +
//! DATA, then the trailers. Reporting the socket as *not* vectored raises h2's copy threshold
//! to 1 KiB: small payloads are copied into its write buffer and every frame that is ready
//! (the responses of many streams included) leaves in one `write`. A copy of at most 1 KiB
//! costs far less than a system call and a TCP segment.
//!
//! The GREP11 (HTTP/2) listener turns it on, and so do GREP11 clients (the PKCS#11 library):
//! a unary request is HEADERS, DATA and an empty DATA with END_STREAM, three writes without
//! it. The REST listener leaves it off: hyper's HTTP/1 writer already sends a response in
//! one call, so there is nothing to gain there.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Wraps a connection; reads and writes pass through. When on, vectored writes are not
/// advertised.
pub struct Coalesce<T> {
    inner: T,
    on: bool,
}

impl<T> Coalesce<T> {
    /// `inner`, with vectored writes hidden when `on`.
    pub fn new(inner: T, on: bool) -> Coalesce<T> {
        Coalesce { inner, on }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesce<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesce<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        !self.on && self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use http_body_util::{BodyExt, Empty, Full};
    use hyper::body::Bytes;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio::io::DuplexStream;

    use super::*;

    /// Counts the write calls that reach the connection; advertises vectored writes when
    /// asked to, as a TCP or TLS stream does.
    struct Counting {
        inner: DuplexStream,
        writes: Arc<AtomicUsize>,
        vectored: bool,
    }

    impl AsyncRead for Counting {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Counting {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let r = Pin::new(&mut self.inner).poll_write(cx, buf);
            if r.is_ready() {
                self.writes.fetch_add(1, Ordering::SeqCst);
            }
            r
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            self.as_mut().poll_write(cx, &all)
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// Serves HTTP/2 responses shaped like a unary gRPC answer carrying an RSA-2048
    /// signature (HEADERS, a 263-byte DATA frame, trailers) and returns how many writes the
    /// server made for the second of two such responses.
    async fn writes_per_response(coalesce: bool) -> usize {
        let (server_end, client_end) = tokio::io::duplex(1 << 20);
        let writes = Arc::new(AtomicUsize::new(0));
        let io = Counting {
            inner: server_end,
            writes: Arc::clone(&writes),
            vectored: true,
        };
        let svc = hyper::service::service_fn(|_req: hyper::Request<hyper::body::Incoming>| async {
            let mut trailers = hyper::HeaderMap::new();
            trailers.insert("grpc-status", hyper::header::HeaderValue::from_static("0"));
            let body = Full::new(Bytes::from(vec![7u8; 263]))
                .with_trailers(async move { Some(Ok::<_, Infallible>(trailers)) });
            Ok::<_, Infallible>(hyper::Response::new(body))
        });
        let server = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        // Off, the wrapper passes the connection's vectored writes through unchanged.
        let io = Coalesce::new(io, coalesce);
        tokio::spawn(server.serve_connection(TokioIo::new(io), svc));
        let (mut client, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client_end))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut before = 0;
        for round in 0..2 {
            // Let the connection settle (SETTINGS acknowledgements) before counting.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            before = writes.load(Ordering::SeqCst);
            let resp = client
                .send_request(hyper::Request::new(Empty::<Bytes>::new()))
                .await
                .unwrap();
            let body = resp.into_body().collect().await.unwrap();
            assert_eq!(
                body.trailers().unwrap()["grpc-status"],
                "0",
                "round {round}"
            );
            assert_eq!(body.to_bytes().len(), 263);
        }
        writes.load(Ordering::SeqCst) - before
    }

    #[tokio::test]
    async fn a_grpc_sized_response_leaves_in_one_write() {
        assert_eq!(writes_per_response(true).await, 1);
        // Without the wrapper h2 flushes the chained DATA payload before the trailers; if a
        // later h2 stops doing that, this wrapper may go.
        assert_eq!(writes_per_response(false).await, 2);
    }
}
