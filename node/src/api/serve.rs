//! The API's HTTP server: hyper under the limits a node facing untrusted clients needs. A request's
//! headers must arrive within `header_timeout` (and an idle keep-alive connection's next request
//! too: a half-sent request is not held for ever); at most `max_connections` are served at once
//! (beyond, a 503 and the connection closed); a write that makes no progress for `write_timeout`
//! cuts the connection (a change-feed reader that stopped reading gives its buffers back); and a
//! stop waits at most `drain` for the requests in flight. With a TLS configuration ([`tls`]),
//! every connection is TLS (rustls), its handshake held to the header timeout too.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// The server's limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// For a request's headers, and for an idle connection's next request.
    pub header_timeout: Duration,
    /// For any write to make progress.
    pub write_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a stop waits for requests in flight.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_connections: 1024,
            drain: Duration::from_secs(1),
        }
    }
}

/// The TLS configuration of a certificate chain and its private key, both PEM files.
pub fn tls(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("--api-tls-cert {}: {e}", cert.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "--api-tls-cert {}: no certificate in it",
        cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("--api-tls-key {}: {e}", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| anyhow::anyhow!("the API's certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` (over TLS with `tls`) until `stop` completes, then for at most
/// `limits.drain`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    stop: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to be given back.
                    tracing::warn!(error = %e, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (app, watcher, tls) = (app.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            match tls {
                None => connection(stream, app, limits, watcher).await,
                Some(tls) => {
                    let handshake = tokio::time::timeout(limits.header_timeout, tls.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => connection(stream, app, limits, watcher).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "API TLS handshake failed"),
                        Err(_) => tracing::debug!("API TLS handshake timed out"),
                    }
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(limits.drain, graceful.shutdown()).await;
}

/// Serves one connection, plain or TLS, until it ends or the stop's drain does.
async fn connection<I>(io: I, app: Router, limits: Limits, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut io = TimeoutStream::new(io);
    io.set_write_timeout(Some(limits.write_timeout));
    let io = TokioIo::new(Box::pin(io));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let service = TowerToHyperService::new(app);
    let conn = builder
        .serve_connection_with_upgrades(io, service)
        .into_owned();
    let _ = watcher.watch(conn).await;
}

/// Answers a connection over the cap with a 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = r#"{"error":"too many connections: try again later"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    // Read what the client sent before answering, and until it closes after (bounded): closing
    // with its bytes unread would reset the connection, and the answer with it.
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut sink)).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
