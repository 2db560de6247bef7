//! The listeners' accept loop: HTTP/1 and HTTP/2 (TLS or not) for the REST front end and
//! routers (GREP11, the bench baseline), graceful shutdown on SIGTERM or Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::watch;

use strongroom_client::coalesce::Coalesce;

/// Waits for SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Accepts connections until `stop` flips, then waits (up to 30 s) for open connections
/// to finish their requests.
/// What a listener serves: the Strongroom front end, or a bare router (the bench baseline).
#[derive(Clone)]
pub enum App {
    /// The REST front end (allowedIP check, metrics, router).
    Frontend(Arc<strongroom_rest::Frontend>),
    /// A bare router.
    Router(axum::Router),
}

/// One request's answer from `app`.
async fn respond(
    app: App,
    mut req: hyper::Request<hyper::body::Incoming>,
    peer: std::net::SocketAddr,
) -> axum::response::Response {
    match app {
        // The REST front end takes the peer as an argument (allowedIP before routing; it
        // hands it on to the token exchange).
        App::Frontend(f) => f.handle(req, peer).await,
        App::Router(r) => {
            // GREP11 reads the peer's address from here (allowedIP).
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            match tower::ServiceExt::oneshot(r, req.map(axum::body::Body::new)).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        }
    }
}

/// `coalesce`: small HTTP/2 frames leave in one write (the GREP11 listener; see
/// `coalesce.rs`).
pub async fn serve_loop(
    listener: TcpListener,
    name: &'static str,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: App,
    coalesce: bool,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = Builder::new(TokioExecutor::new());
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            // The request runs to its end in a task of its own: hyper drops a request's
            // future when its client goes away (a closed connection, a reset stream), and
            // a state change cut off between its keystore write and its audit record
            // would be made and never audited.
            let answer = tokio::spawn(respond(app.clone(), req, peer));
            async move {
                Ok::<_, std::convert::Infallible>(answer.await.unwrap_or_else(|_| {
                    tracing::error!("a request's task ended without an answer");
                    let mut r = axum::response::Response::new(axum::body::Body::empty());
                    *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                    r
                }))
            }
        });
        let builder = builder.clone();
        match &tls {
            None => {
                let conn = builder
                    .serve_connection(TokioIo::new(Coalesce::new(stream, coalesce)), svc)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(
                        Duration::from_secs(10),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        _ => return,
                    };
                    crate::tls::handshake(name, stream.get_ref().1);
                    let conn = builder
                        .serve_connection(TokioIo::new(Coalesce::new(stream, coalesce)), svc)
                        .into_owned();
                    let _ = watcher.watch(conn).await;
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after 30 s; closing them");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_runs_to_its_end_when_its_client_goes_away() {
        let done = Arc::new(AtomicUsize::new(0));
        let seen = done.clone();
        let router = axum::Router::new().route(
            "/slow",
            axum::routing::post(move || {
                let seen = seen.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    seen.fetch_add(1, Ordering::SeqCst);
                    "done"
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve_loop(
            listener,
            "test",
            None,
            App::Router(router),
            false,
            stopped,
        ));
        for _ in 0..3 {
            // The client gives up after 50 ms and closes its connection.
            let client = reqwest::Client::builder()
                .timeout(Duration::from_millis(50))
                .build()
                .unwrap();
            let r = client.post(format!("http://{addr}/slow")).send().await;
            assert!(r.is_err(), "the client gave up before the answer");
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(
            done.load(Ordering::SeqCst),
            3,
            "every request ran to its end"
        );
        stop.send(true).unwrap();
        server.await.unwrap();
    }
}
