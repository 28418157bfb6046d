//! The operator surface of a running anchor: the admin gRPC API with the
//! standard gRPC health service ([`crate::admin`]) and the Prometheus
//! endpoint ([`crate::metrics`]), each on its own TCP listener.
//!
//! **Neither listener is authenticated or encrypted.** Both default to
//! loopback (`admin_listen = "127.0.0.1:4501"`, `metrics_listen =
//! "127.0.0.1:4502"`); keep them there, or behind a firewall. An empty
//! setting disables the listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use distsoc_net::transport::Transport;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tracing::{info, warn};

use crate::admin::pb::admin_server::SERVICE_NAME;
use crate::error::AnchorError;
use crate::service::AnchorService;
use crate::store::{Stats, StoreError};

/// How long `/metrics` reuses the store sizes (counting rows is not free on a
/// large database; scrapes are typically every 15–60 s).
pub(crate) const STATS_CACHE_TTL: Duration = Duration::from_secs(5);

/// What the admin API and the metrics endpoint read.
#[derive(Debug)]
pub(crate) struct OperatorState {
    pub(crate) service: Arc<AnchorService>,
    pub(crate) transport: Arc<Transport>,
    pub(crate) started: Instant,
    /// Per-message latency and outcomes (recorded around the router).
    pub(crate) requests: crate::metrics::RequestMetrics,
    cache: tokio::sync::Mutex<Option<(Instant, Stats)>>,
}

impl OperatorState {
    pub(crate) fn new(
        service: Arc<AnchorService>,
        transport: Arc<Transport>,
        requests: crate::metrics::RequestMetrics,
    ) -> Self {
        Self {
            service,
            transport,
            requests,
            started: Instant::now(),
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// Open, Hello-complete QUIC connections.
    pub(crate) fn connections(&self) -> usize {
        self.transport.peers().len()
    }

    /// Store sizes, at most [`STATS_CACHE_TTL`] old. Concurrent callers wait
    /// for one query instead of each running their own.
    pub(crate) async fn cached_stats(&self) -> Result<Stats, StoreError> {
        let mut cache = self.cache.lock().await;
        if let Some((at, stats)) = *cache {
            if at.elapsed() < STATS_CACHE_TTL {
                return Ok(stats);
            }
        }
        let stats = self.service.store().stats().await?;
        *cache = Some((Instant::now(), stats));
        Ok(stats)
    }
}

/// The running admin and metrics servers of an anchor.
#[derive(Debug)]
pub(crate) struct OperatorServers {
    health: HealthReporter,
    pub(crate) admin_addr: Option<SocketAddr>,
    pub(crate) metrics_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    watcher: JoinHandle<()>,
}

/// Sets the health of the whole server ("") and of the admin service.
pub(crate) async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    health.set_service_status(SERVICE_NAME, status).await;
}

fn warn_if_exposed(what: &str, addr: SocketAddr) {
    if !addr.ip().is_loopback() {
        warn!(%addr, "{what} listens on a non-loopback address: it is unauthenticated, keep it behind a firewall");
    }
}

impl OperatorServers {
    /// Binds the enabled listeners (an error if a bind fails) and serves them
    /// in background tasks.
    pub(crate) async fn start(
        state: Arc<OperatorState>,
        admin: Option<SocketAddr>,
        metrics: Option<SocketAddr>,
    ) -> Result<Self, AnchorError> {
        let (shutdown, _) = watch::channel(false);
        let (health, health_service) = tonic_health::server::health_reporter();
        let status = if state.service.is_draining() {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        };
        set_health(&health, status).await;
        // Bind both before serving either, so a failed bind leaves nothing
        // running.
        let bind = |what: &'static str, addr: Option<SocketAddr>| async move {
            let Some(addr) = addr else {
                return Ok::<_, AnchorError>(None);
            };
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| AnchorError::Bind { what, addr, source })?;
            let bound = listener.local_addr()?;
            Ok(Some((listener, bound)))
        };
        let admin = bind("admin_listen", admin).await?;
        let metrics = bind("metrics_listen", metrics).await?;

        let mut servers = Vec::new();
        let admin_addr = admin.map(|(listener, bound)| {
            warn_if_exposed("the admin API", bound);
            let api = crate::admin::AdminApi::new(state.clone(), health.clone());
            servers.push(tokio::spawn(crate::admin::serve(
                listener,
                api,
                health_service,
                stopped(shutdown.subscribe()),
            )));
            info!(addr = %bound, "admin gRPC API listening (unauthenticated)");
            bound
        });
        let metrics_addr = metrics.map(|(listener, bound)| {
            warn_if_exposed("the metrics endpoint", bound);
            servers.push(tokio::spawn(crate::metrics::serve(
                listener,
                state.clone(),
                stopped(shutdown.subscribe()),
            )));
            info!(url = %format!("http://{bound}/metrics"), "Prometheus metrics listening");
            bound
        });

        // Health follows the service and the store: however it is drained
        // (admin Drain, stop, or a direct `AnchorService::drain`), health
        // turns NOT_SERVING for good; while the database is unreachable
        // (PostgreSQL: the store's LISTEN connection is down), NOT_SERVING
        // until it is back.
        let watcher = tokio::spawn(follow_health(
            health.clone(),
            state.service.drain_watch(),
            state.service.store().reachable_watch(),
        ));

        Ok(Self {
            health,
            admin_addr,
            metrics_addr,
            shutdown,
            servers,
            watcher,
        })
    }

    /// Health turns NOT_SERVING (first step of a stop).
    pub(crate) async fn set_not_serving(&self) {
        set_health(&self.health, ServingStatus::NotServing).await;
    }

    /// Graceful shutdown of both servers: no new connections, requests in
    /// flight finish; whatever is left after `timeout` is aborted.
    pub(crate) async fn shutdown(self, timeout: Duration) {
        self.shutdown.send_replace(true);
        self.watcher.abort();
        let deadline = tokio::time::Instant::now() + timeout;
        for mut task in self.servers {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                warn!("operator server did not stop in time; aborting it");
                task.abort();
            }
        }
    }
}

/// Keeps the health status in step with draining and store reachability.
async fn follow_health(
    health: HealthReporter,
    mut drained: watch::Receiver<bool>,
    mut reachable: Option<watch::Receiver<bool>>,
) {
    let mut was_reachable = true;
    loop {
        let draining = *drained.borrow_and_update();
        let up = reachable.as_mut().is_none_or(|r| *r.borrow_and_update());
        if up != was_reachable && !draining {
            if up {
                info!("database reachable again: health SERVING");
            } else {
                warn!("database unreachable: health NOT_SERVING until it is back");
            }
        }
        was_reachable = up;
        let status = if draining || !up {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        };
        set_health(&health, status).await;
        if draining {
            return;
        }
        let store_changed = async {
            match reachable.as_mut() {
                Some(r) => {
                    if r.changed().await.is_err() {
                        // The store is gone (shutting down): nothing more.
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            r = drained.changed() => if r.is_err() { return },
            () = store_changed => {}
        }
    }
}

/// Resolves once `rx` sees `true` (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
