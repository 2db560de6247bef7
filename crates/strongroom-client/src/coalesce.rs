//! A connection wrapper that gathers HTTP/2 frames into few writes.
//!
//! h2 encodes frames into a 16 KiB buffer, but a DATA payload over a threshold (256 bytes
//! with vectored writes, 1 KiB without) is chained instead of copied, and h2 must flush it
//! before it may encode the next frame. Unwrapped, a gRPC response carrying an RSA-2048
//! signature costs two system calls (HEADERS + DATA, then the trailers), and one carrying
//! an ML-DSA-65 signature (3.3 KB) or a 1 KiB ciphertext three or more: one per chained
//! payload, and the frames of the other streams wait behind each.
//!
//! When on, the wrapper does not advertise vectored writes (so small payloads are copied
//! into h2's buffer), keeps what h2 writes in a buffer of its own, and lets a flush through
//! only at the end of the connection's turn: the first flush of a turn is held and the
//! connection's task woken, so that every frame that becomes ready meanwhile (the answers
//! of the other streams included) goes out in the same `write` when the task runs again.
//! The task always runs again (it was woken), and every turn of an h2 connection ends in a
//! flush, so nothing stays held. A read marks a new turn; a buffer over `HIGH` bytes, a
//! second flush in a later turn and a shutdown write everything out.
//!
//! The GREP11 (HTTP/2) listener turns it on, and so do GREP11 clients (the PKCS#11 library):
//! a unary request is HEADERS, DATA and an empty DATA with END_STREAM, three writes without
//! it. The REST listener leaves it off: hyper's HTTP/1 writer already sends a response in
//! one call, so there is nothing to gain there.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Held bytes at which the wrapper writes without waiting for the end of the turn.
const HIGH: usize = 64 * 1024;

/// Wraps a connection; reads pass through. When on, writes are gathered (see above).
pub struct Coalesce<T> {
    inner: T,
    on: bool,
    /// Bytes accepted from h2 and not yet written; `out[sent..]` is what is left.
    out: Vec<u8>,
    sent: usize,
    /// A flush was held and the task woken to come back for it.
    held: bool,
    /// The connection read after the hold: its task is in a later turn.
    turned: bool,
}

impl<T> Coalesce<T> {
    /// `inner`, with writes gathered when `on`.
    pub fn new(inner: T, on: bool) -> Coalesce<T> {
        Coalesce {
            inner,
            on,
            out: Vec::new(),
            sent: 0,
            held: false,
            turned: false,
        }
    }
}

impl<T: AsyncWrite + Unpin> Coalesce<T> {
    /// Writes out every held byte, or registers for write readiness and answers `Pending`
    /// with what is left kept.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.out.clear();
        self.sent = 0;
        self.held = false;
        self.turned = false;
        Poll::Ready(Ok(()))
    }

    fn pending(&self) -> usize {
        self.out.len() - self.sent
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesce<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.held {
            self.turned = true;
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesce<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if !this.on {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        if this.pending() >= HIGH {
            ready!(this.drain(cx))?;
        }
        // At most `HIGH` bytes are held: a DATA payload as large as the peer's frame size
        // allows (up to 16 MiB) is taken in parts, as a socket would.
        let n = buf.len().min(HIGH - this.pending());
        this.out.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if !this.on {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        // Not advertised when on; a caller that vectors anyway is served by the first
        // non-empty slice, as `AsyncWrite`'s default does.
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &**b);
        Pin::new(this).poll_write(cx, first)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.on && this.pending() > 0 {
            // Held until a later turn (a further flush in the same turn waits for the
            // wake-up already asked for), or until `HIGH` bytes gather.
            if this.pending() < HIGH && !(this.held && this.turned) {
                if !this.held {
                    this.held = true;
                    cx.waker().wake_by_ref();
                }
                return Poll::Ready(Ok(()));
            }
            ready!(this.drain(cx))?;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.on {
            ready!(this.drain(cx))?;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
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

    /// Serves HTTP/2 responses shaped like a unary gRPC answer (HEADERS, one DATA frame of
    /// `size` bytes, trailers) and returns how many writes the server made for the second of
    /// two rounds of `at_once` concurrent requests.
    async fn writes_per_round(coalesce: bool, size: usize, at_once: usize) -> usize {
        let (server_end, client_end) = tokio::io::duplex(1 << 20);
        let writes = Arc::new(AtomicUsize::new(0));
        let io = Counting {
            inner: server_end,
            writes: Arc::clone(&writes),
            vectored: true,
        };
        let svc = hyper::service::service_fn(
            move |_req: hyper::Request<hyper::body::Incoming>| async move {
                let mut trailers = hyper::HeaderMap::new();
                trailers.insert("grpc-status", hyper::header::HeaderValue::from_static("0"));
                let body = Full::new(Bytes::from(vec![7u8; size]))
                    .with_trailers(async move { Some(Ok::<_, Infallible>(trailers)) });
                Ok::<_, Infallible>(hyper::Response::new(body))
            },
        );
        let server = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        // Off, the wrapper passes the connection's vectored writes through unchanged.
        let io = Coalesce::new(io, coalesce);
        tokio::spawn(server.serve_connection(TokioIo::new(io), svc));
        let (client, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client_end))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut before = 0;
        for round in 0..2 {
            // Let the connection settle (SETTINGS acknowledgements) before counting.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            before = writes.load(Ordering::SeqCst);
            let calls: Vec<_> = (0..at_once)
                .map(|_| {
                    let mut client = client.clone();
                    tokio::spawn(async move {
                        let resp = client
                            .send_request(hyper::Request::new(Empty::<Bytes>::new()))
                            .await
                            .unwrap();
                        resp.into_body().collect().await.unwrap()
                    })
                })
                .collect();
            for call in calls {
                // A held write that never went out would hang here.
                let body = tokio::time::timeout(std::time::Duration::from_secs(10), call)
                    .await
                    .expect("every answer arrives")
                    .unwrap();
                assert_eq!(
                    body.trailers().unwrap()["grpc-status"],
                    "0",
                    "round {round}"
                );
                assert_eq!(body.to_bytes().len(), size);
            }
        }
        writes.load(Ordering::SeqCst) - before
    }

    #[tokio::test]
    async fn a_grpc_sized_response_leaves_in_one_write() {
        // An RSA-2048 signature, framed.
        assert_eq!(writes_per_round(true, 263, 1).await, 1);
        // Without the wrapper h2 flushes the chained DATA payload before the trailers; if a
        // later h2 stops doing that, this wrapper may go.
        assert_eq!(writes_per_round(false, 263, 1).await, 2);
        // An ML-DSA-65 signature or a 1 KiB ciphertext: over h2's copy threshold either way.
        assert_eq!(writes_per_round(true, 3_314, 1).await, 1);
        assert_eq!(writes_per_round(false, 3_314, 1).await, 2);
    }

    #[tokio::test]
    async fn the_answers_of_concurrent_streams_share_writes() {
        // 32 answers of 3.3 KB (106 KB): a held turn, and a write each time 64 KiB gathers.
        let on = writes_per_round(true, 3_314, 32).await;
        let off = writes_per_round(false, 3_314, 32).await;
        assert!(on <= 4, "{on} writes for 32 answers");
        assert!(off >= 32, "{off} writes for 32 answers without the wrapper");
        // Large answers arrive whole, in writes of at most 64 KiB.
        let large = writes_per_round(true, 300_000, 2).await;
        assert!(large >= 600_000 / HIGH, "{large} writes for 600 KB");
    }

    /// Counts wake-ups.
    struct Wakes(AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_held_flush_goes_out_in_the_next_turn_and_on_shutdown() {
        use tokio::io::AsyncReadExt;
        let (ours, mut peer) = tokio::io::duplex(1 << 20);
        let mut c = Coalesce::new(ours, true);
        let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let mut c = Pin::new(&mut c);
        let written = |c: &mut Pin<&mut Coalesce<DuplexStream>>| c.as_mut().get_mut().pending();
        let write = |c: &mut Pin<&mut Coalesce<DuplexStream>>, cx: &mut Context<'_>, b: &[u8]| {
            let r = c.as_mut().poll_write(cx, b);
            let Poll::Ready(Ok(n)) = r else {
                panic!("write: {r:?}")
            };
            n
        };
        let flush = |c: &mut Pin<&mut Coalesce<DuplexStream>>, cx: &mut Context<'_>| {
            assert!(matches!(c.as_mut().poll_flush(cx), Poll::Ready(Ok(()))));
        };

        assert_eq!(write(&mut c, &mut cx, b"one"), 3);
        // The first flush of a turn is held, and the task woken to come back.
        flush(&mut c, &mut cx);
        assert_eq!((written(&mut c), wakes.0.load(Ordering::SeqCst)), (3, 1));
        // A further flush in the same turn (no read between) still holds.
        assert_eq!(write(&mut c, &mut cx, b"two"), 3);
        flush(&mut c, &mut cx);
        assert_eq!((written(&mut c), wakes.0.load(Ordering::SeqCst)), (6, 1));
        // The next turn starts with a read; its flush writes everything.
        let mut space = [0u8; 8];
        let mut rb = ReadBuf::new(&mut space);
        assert!(c.as_mut().poll_read(&mut cx, &mut rb).is_pending());
        flush(&mut c, &mut cx);
        assert_eq!(written(&mut c), 0);
        let mut got = [0u8; 6];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"onetwo");

        // At most 64 KiB is taken at once, and 64 KiB held writes without waiting for a turn.
        let big = vec![1u8; 2 * HIGH];
        assert_eq!(write(&mut c, &mut cx, &big), HIGH);
        flush(&mut c, &mut cx);
        assert_eq!(written(&mut c), 0);
        let mut got = vec![0u8; HIGH];
        peer.read_exact(&mut got).await.unwrap();

        // A shutdown writes what a flush held, then closes.
        assert_eq!(write(&mut c, &mut cx, b"last"), 4);
        flush(&mut c, &mut cx);
        assert!(matches!(
            c.as_mut().poll_shutdown(&mut cx),
            Poll::Ready(Ok(()))
        ));
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"last");
    }

    #[tokio::test]
    async fn off_it_passes_writes_through() {
        use tokio::io::AsyncReadExt;
        let (ours, mut peer) = tokio::io::duplex(1 << 20);
        let mut c = Coalesce::new(ours, false);
        let mut c = Pin::new(&mut c);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(matches!(
            c.as_mut().poll_write(&mut cx, b"now"),
            Poll::Ready(Ok(3))
        ));
        let mut got = [0u8; 3];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"now");
    }
}
