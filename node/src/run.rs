//! `deltanode run`: starts the node and its API, prints the ready line, and shuts both down cleanly
//! on SIGINT or SIGTERM.

use crate::cli::{LogFormat, RunArgs};
use crate::node::{Node, NodeConfig};
use anyhow::Context;
use protocol::wire;
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// The one line printed on stdout when the node is ready (SPEC "Command line"), fields in that order.
#[derive(Serialize)]
struct Ready {
    event: &'static str,
    peer_id: String,
    api: String,
    listen: Vec<String>,
}

/// Runs the node until a signal.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logs(args.log_format);
    let loopback = args.api.ip().is_loopback();
    anyhow::ensure!(
        loopback || args.api_token.is_some(),
        "--api {} is not a loopback address: set --api-token (or DELTANODE_API_TOKEN)",
        args.api
    );
    anyhow::ensure!(
        loopback || args.api_tls_cert.is_some() || args.insecure_http,
        "--api {} is not a loopback address: serve it over TLS (--api-tls-cert and \
         --api-tls-key), or say --insecure-http to send the token in the clear",
        args.api
    );
    let tls = match (&args.api_tls_cert, &args.api_tls_key) {
        (Some(cert), Some(key)) => Some(crate::api::serve::tls(cert, key)?),
        _ => None,
    };
    // `--neighbour` fixes the neighbours; 0 lifts the bound.
    let max_neighbours = (args.max_neighbours > 0 && args.neighbour.is_empty())
        .then_some(usize::from(args.max_neighbours));
    let cfg = NodeConfig {
        data_dir: args.data_dir,
        listen: args.listen,
        peers: args.peer,
        mdns: !args.no_mdns,
        neighbours: args.neighbour,
        sync_interval: Duration::from_millis(args.sync_interval.max(1)),
        algorithm: args.algorithm,
        swarm_key: args.swarm_key,
        max_frame: wire::DEFAULT_MAX_FRAME,
        forget_after: Duration::from_secs(args.forget_after),
        max_neighbours,
        recover_from_peers: args.recover_from_peers,
        max_clock_skew: (args.max_clock_skew > 0).then(|| Duration::from_secs(args.max_clock_skew)),
    };
    let (algorithm, sync_interval, max_clock_skew) =
        (cfg.algorithm, cfg.sync_interval, cfg.max_clock_skew);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let node = Node::start(cfg).await?;
        let listener = tokio::net::TcpListener::bind(args.api)
            .await
            .with_context(|| format!("binding the API on {}", args.api))?;
        let api_addr = listener.local_addr()?;
        let info = crate::api::NodeInfo {
            peer_id: node.peer_id().to_string(),
            replica: format!("{:016x}", node.replica_id().0),
            replicas: node
                .replica_ids()
                .iter()
                .map(|r| format!("{:016x}", r.0))
                .collect(),
            addrs: node.own_addrs(),
            api: api_addr.to_string(),
            algorithm: algorithm.name().to_string(),
            sync_interval_ms: sync_interval.as_millis() as u64,
            started: std::time::Instant::now(),
            warnings: node.warnings().to_vec(),
            rekeyed: node.rekeyed(),
            max_clock_skew_ms: max_clock_skew.map(|d| d.as_millis() as u64),
        };
        let (closing, closed) = tokio::sync::watch::channel(false);
        let streams = crate::api::Streams {
            max: args.api_max_streams,
            closing: closed,
        };
        let cors = crate::api::browser::cors(&args.cors_origin)?;
        let app = crate::api::router(node.client(), args.api_token, info, streams, cors);
        let limits = crate::api::serve::Limits {
            header_timeout: Duration::from_secs(args.api_header_timeout.max(1)),
            write_timeout: Duration::from_secs(args.api_write_timeout.max(1)),
            max_connections: args.api_max_connections.max(1),
            ..Default::default()
        };
        let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::api::serve::serve(
            listener,
            app,
            limits,
            tls,
            async {
                let _ = api_stopped.await;
            },
        ));
        // Before the ready line: a SIGTERM sent as soon as it is read must stop the node cleanly,
        // not find the default action (death by signal) still in place.
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let ready = Ready {
            event: "ready",
            peer_id: node.peer_id().to_string(),
            api: api_addr.to_string(),
            listen: node
                .listen_addrs()
                .iter()
                .map(ToString::to_string)
                .collect(),
        };
        let ready = serde_json::to_string(&ready)?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{ready}")?;
        out.flush()?;
        drop(out);
        tracing::info!(peer_id = %node.peer_id(), api = %api_addr, "ready");
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        }
        // Change-feed streams end at once; requests in flight get up to a second.
        let _ = closing.send(true);
        let _ = stop_api.send(());
        let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
        node.shutdown().await;
        Ok(())
    })
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,libp2p=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
