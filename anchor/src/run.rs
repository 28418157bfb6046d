//! Starting and stopping an anchor: store, transport, background tasks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use distsoc_net::identity::NetworkKey;
use distsoc_net::mesh::MeshHandle;
use distsoc_net::transport::{Transport, TransportConfig};
use distsoc_protocol::mesh::MeshConfig;
use distsoc_protocol::messages::common::Role;
use distsoc_protocol::messages::wire::Limits;
use tracing::{info, warn};

use crate::config::AnchorConfig;
use crate::error::AnchorError;
use crate::metrics::{Instrumented, RequestMetrics};
use crate::operator::{OperatorServers, OperatorState};
use crate::service::{AnchorService, ServiceConfig, ANCHOR_CAPABILITIES};
use crate::store::AnchorStore;
use crate::verify::Verifier;

/// Options that are not in `anchor.toml`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Data directory (relative `sqlite:` paths are resolved against it).
    pub data_dir: PathBuf,
    /// How long to wait for in-flight requests after a stop signal.
    pub drain_timeout: Duration,
}

/// How often an anchor reloads bans and the mailbox retention from the
/// store (changes made through another anchor on the same database).
pub const OPERATOR_STATE_REFRESH: Duration = Duration::from_secs(5);

/// A running anchor.
#[derive(Debug)]
pub struct Anchor {
    /// The request handler (counters, ban, drain).
    pub service: Arc<AnchorService>,
    /// The QUIC endpoint (shared with the admin API and metrics).
    pub transport: Arc<Transport>,
    verifier: Arc<Verifier>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    operator: OperatorServers,
}

impl Anchor {
    /// Opens the store and binds the endpoint; starts the sweeper.
    pub async fn start(
        key: &NetworkKey,
        cfg: &AnchorConfig,
        opts: &RunOptions,
    ) -> Result<Anchor, AnchorError> {
        let url = cfg.store_url(&opts.data_dir);
        let store = AnchorStore::open_with(&url, &cfg.store_options())
            .await
            .map_err(|source| AnchorError::OpenStore {
                target: crate::store::describe_target(&url),
                source,
            })?;
        let mesh = MeshHandle::new(key.node_id(), MeshConfig::anchor());
        let service = Arc::new(AnchorService::new(
            store.clone(),
            ServiceConfig {
                mailbox_ttl: Duration::from_secs(cfg.mailbox_ttl_secs),
                max_fetch_wait_ms: cfg.max_fetch_wait_ms,
                rate: cfg.request_limits(),
                channel_rate: cfg.channel_create_limits(),
                checkin_window: Duration::from_secs(cfg.checkin_window_secs),
                max_pull_batch: cfg.max_pull_batch,
                quota: cfg.quota(),
                ingest_verify_threads: cfg.ingest_verify_threads,
            },
            mesh.clone(),
        ));
        service.seed_quotas().await?;
        let verifier = Arc::new(Verifier::start(
            cfg.verify(),
            cfg.listen.ip(),
            store.clone(),
            service.counters(),
        )?);
        verifier.set_mesh(service.mesh().clone());
        service.set_verifier(verifier.clone());
        // Bans and a retention set through the admin API survive restarts
        // and are shared by every anchor on the database.
        service.refresh_operator_state().await?;
        if service.mailbox_ttl_overridden() {
            if service.mailbox_ttl() == Duration::from_secs(cfg.mailbox_ttl_secs) {
                info!(
                    stored_secs = service.mailbox_ttl().as_secs(),
                    "mailbox retention set through the admin API equals mailbox_ttl_secs"
                );
            } else {
                warn!(
                    stored_secs = service.mailbox_ttl().as_secs(),
                    configured_secs = cfg.mailbox_ttl_secs,
                    "mailbox retention set through the admin API overrides mailbox_ttl_secs in \
                     the configuration; `distsoc-anchor admin retention --clear` goes back to it"
                );
            }
        }
        let tcfg = TransportConfig {
            listen: cfg.listen,
            roles: vec![Role::Anchor],
            capabilities: ANCHOR_CAPABILITIES.iter().map(|s| s.to_string()).collect(),
            limits: Limits {
                max_pull_batch: cfg.max_pull_batch,
                rate_limit_per_second: u16::try_from(cfg.rate_limit_per_second).unwrap_or(u16::MAX),
                max_fetch_wait_ms: cfg.max_fetch_wait_ms,
                mailbox_ttl_ms: u64::try_from(service.mailbox_ttl().as_millis())
                    .unwrap_or(u64::MAX),
                ..Limits::default()
            },
            listen_addresses: cfg.advertise.clone(),
            idle_timeout: Duration::from_secs(cfg.idle_timeout_secs.max(1)),
            // FetchWait holds a stream for up to a minute.
            request_timeout: Duration::from_millis(u64::from(cfg.max_fetch_wait_ms) + 10_000),
            agent: concat!("distsoc-anchor/", env!("CARGO_PKG_VERSION")).to_string(),
            max_connections: cfg.max_connections,
            max_connections_per_ip: cfg.max_connections_per_ip,
            idle_slot_grace: Duration::from_secs(cfg.idle_slot_grace_secs),
            frame_deadline_floor: Duration::from_secs(cfg.frame_deadline_floor_secs),
            frame_min_rate: cfg.frame_min_rate,
            ip_frame_budget: cfg.ip_frame_budget_bytes,
            ..TransportConfig::default()
        };
        let requests = RequestMetrics::default();
        let router = Arc::new(Instrumented::new(
            service.clone().router(),
            requests.clone(),
        ));
        let transport = Arc::new(Transport::bind(key.signing_key(), tcfg, router)?);
        // The anchor is a large mesh node (§13.6): map sync, worm fan-out,
        // AddressRequests beyond its check-in cache.
        mesh.set_own_addresses(cfg.advertise.clone());
        mesh.attach(&transport);
        let operator = OperatorServers::start(
            Arc::new(OperatorState::new(
                service.clone(),
                transport.clone(),
                requests,
            )),
            cfg.admin_addr(),
            cfg.metrics_addr(),
        )
        .await?;
        let sweeper = {
            let store = store.clone();
            let service = service.clone();
            let every = Duration::from_secs(cfg.sweep_interval_secs.max(1));
            let post_retention_ms = cfg.post_retention_days.saturating_mul(24 * 3600 * 1000);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    let now = distsoc_net::now_ms();
                    match store.sweep_expired(now).await {
                        Ok(0) => {}
                        Ok(n) => info!(expired = n, "swept expired mailbox messages"),
                        Err(e) => warn!(error = %e, "sweep failed"),
                    }
                    // Audit entries and check-ins are kept as long as mailbox
                    // messages, then dropped.
                    let ttl = u64::try_from(service.mailbox_ttl().as_millis()).unwrap_or(u64::MAX);
                    let cutoff = now.saturating_sub(ttl);
                    if let Err(e) = store.prune_audit_before(cutoff).await {
                        warn!(error = %e, "audit pruning failed");
                    }
                    if let Err(e) = store.forget_checkins_before(cutoff).await {
                        warn!(error = %e, "check-in pruning failed");
                    }
                    if post_retention_ms > 0 {
                        match store
                            .prune_posts_received_before(now.saturating_sub(post_retention_ms))
                            .await
                        {
                            Ok(0) => {}
                            Ok(n) => info!(pruned = n, "pruned posts past post_retention_days"),
                            Err(e) => warn!(error = %e, "post pruning failed"),
                        }
                    }
                    service.prune_limits();
                }
            })
        };
        // Another anchor on the same database may ban, unban or change the
        // retention: picked up within OPERATOR_STATE_REFRESH.
        let refresher = {
            let service = service.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(OPERATOR_STATE_REFRESH);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if let Err(e) = service.refresh_operator_state().await {
                        warn!(error = %e, "reloading bans and retention failed");
                    }
                }
            })
        };
        Ok(Anchor {
            service,
            transport,
            verifier,
            tasks: vec![sweeper, refresher],
            operator,
        })
    }

    /// The bound address of the admin gRPC API (`None` when disabled).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.operator.admin_addr
    }

    /// The bound address of the metrics endpoint (`None` when disabled).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.operator.metrics_addr
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.transport.local_addr()
    }

    /// Graceful stop: health turns NOT_SERVING, refuse new requests, let
    /// in-flight ones finish (bounded), close the endpoint, then stop the
    /// admin and metrics servers.
    pub async fn stop(self, drain_timeout: Duration) {
        self.operator.set_not_serving().await;
        self.service.drain();
        for t in &self.tasks {
            t.abort();
        }
        let _ = tokio::time::timeout(drain_timeout, self.transport.close()).await;
        self.service.mesh().stop();
        self.verifier.close().await;
        self.operator.shutdown(drain_timeout).await;
    }
}

/// Runs an anchor until `shutdown` resolves.
pub async fn run_anchor(
    key: Arc<NetworkKey>,
    cfg: AnchorConfig,
    opts: RunOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AnchorError> {
    let anchor = Anchor::start(&key, &cfg, &opts).await?;
    let addr = anchor.local_addr()?;
    info!(anchor = %key.node_id(), connect = %format!("{}@{}", key.node_id(), addr), "anchor running");
    println!("{}@{}", key.node_id(), addr);
    shutdown.await;
    info!("stopping: draining in-flight requests");
    anchor.stop(opts.drain_timeout).await;
    info!("anchor stopped");
    Ok(())
}
