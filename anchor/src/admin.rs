//! The admin gRPC API (`anchor/proto/admin.proto`, package
//! `distsoc.admin.v1`), the standard gRPC health service and gRPC server
//! reflection, served on `admin_listen` (default `127.0.0.1:4501`).
//!
//! Health (`""` and `distsoc.admin.v1.Admin`) is SERVING while the anchor
//! accepts requests; NOT_SERVING while its PostgreSQL database is
//! unreachable (the store's `LISTEN` connection notices, and its reconnect
//! turns health back to SERVING), and for good once it drains.
//!
//! **Unauthenticated and unencrypted**: whoever reaches the port can ban
//! identities, change retention and drain the anchor. Keep it on loopback or
//! behind a firewall.
//!
//! [`pb`] holds the generated messages, server and client: with a tonic
//! channel (`tonic` feature `channel`),
//! `pb::admin_client::AdminClient::new(channel)` talks to an anchor.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use distsoc_protocol::ids::NodeId;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tracing::{info, warn};

use crate::operator::{set_health, OperatorState};

/// Generated from `anchor/proto/admin.proto` by `build.rs` (protox +
/// tonic-prost-build; no protoc).
pub mod pb {
    #![allow(clippy::all, clippy::pedantic, unreachable_pub)]
    tonic::include_proto!("distsoc.admin.v1");
}

/// The encoded `FileDescriptorSet` of `admin.proto` (for gRPC reflection).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/admin_descriptor.bin"));

use pb::admin_server::{Admin, AdminServer};
use pb::{
    BanRequest, BanResponse, DrainRequest, DrainResponse, GetStatsRequest, GetStatsResponse,
    RequestCounters, RetentionSource, SetRetentionRequest, SetRetentionResponse, UnbanRequest,
    UnbanResponse,
};

/// A store failure as a gRPC status (`UNAVAILABLE` when the database is
/// out of reach: the operator retries).
fn store_status(e: crate::store::StoreError) -> Status {
    if e.is_unavailable() {
        Status::unavailable(e.to_string())
    } else {
        Status::internal(e.to_string())
    }
}

/// Longest retention `SetRetention` accepts (10 years), so that
/// `now + ttl` stays far from overflow.
pub const MAX_MAILBOX_TTL_SECS: u64 = 10 * 365 * 24 * 3600;

/// The `distsoc.admin.v1.Admin` implementation.
#[derive(Debug)]
pub(crate) struct AdminApi {
    state: Arc<OperatorState>,
    health: HealthReporter,
}

impl AdminApi {
    pub(crate) fn new(state: Arc<OperatorState>, health: HealthReporter) -> Self {
        Self { state, health }
    }
}

fn node_id(hex: &str) -> Result<NodeId, Status> {
    hex.trim()
        .parse()
        .map_err(|e| Status::invalid_argument(format!("node_id: {e}")))
}

#[tonic::async_trait]
impl Admin for AdminApi {
    async fn get_stats(
        &self,
        _req: Request<GetStatsRequest>,
    ) -> Result<Response<GetStatsResponse>, Status> {
        // Fresh, not the metrics cache: operators expect what they just did.
        // Without the database (an outage) the rest is still answered.
        let (stats, store_error) = match self.state.service.store().stats().await {
            Ok(s) => (s, String::new()),
            Err(e) => (crate::store::Stats::default(), e.to_string()),
        };
        let service = &self.state.service;
        let c = service.counters();
        Ok(Response::new(GetStatsResponse {
            connections: self.state.connections() as u64,
            channels: stats.channels,
            queued_messages: stats.queued_messages,
            queued_bytes: stats.queued_bytes,
            posts: stats.posts,
            checkins: stats.checkins,
            requests: Some(RequestCounters {
                total: c.requests.load(Ordering::Relaxed),
                rate_limited: c.rate_limited.load(Ordering::Relaxed),
                unauthorized: c.unauthorized.load(Ordering::Relaxed),
                unavailable: c.unavailable.load(Ordering::Relaxed),
                enqueued: c.enqueued.load(Ordering::Relaxed),
                delivered: c.delivered.load(Ordering::Relaxed),
            }),
            uptime_secs: self.state.started.elapsed().as_secs(),
            mailbox_ttl_secs: service.mailbox_ttl().as_secs(),
            draining: service.is_draining(),
            banned: service.banned().iter().map(NodeId::to_hex).collect(),
            mailbox_ttl_source: retention_source(service).into(),
            configured_mailbox_ttl_secs: service.configured_mailbox_ttl().as_secs(),
            default_mailbox_ttl_secs: crate::config::AnchorConfig::default().mailbox_ttl_secs,
            store_reachable: service.store().listener_connected().unwrap_or(true),
            store_error,
        }))
    }

    async fn ban(&self, req: Request<BanRequest>) -> Result<Response<BanResponse>, Status> {
        let id = node_id(&req.get_ref().node_id)?;
        let newly_banned = self.state.service.ban(id).await.map_err(store_status)?;
        info!(node = %id, newly_banned, "admin: banned");
        Ok(Response::new(BanResponse { newly_banned }))
    }

    async fn unban(&self, req: Request<UnbanRequest>) -> Result<Response<UnbanResponse>, Status> {
        let id = node_id(&req.get_ref().node_id)?;
        let was_banned = self.state.service.unban(id).await.map_err(store_status)?;
        info!(node = %id, was_banned, "admin: unbanned");
        Ok(Response::new(UnbanResponse { was_banned }))
    }

    async fn set_retention(
        &self,
        req: Request<SetRetentionRequest>,
    ) -> Result<Response<SetRetentionResponse>, Status> {
        let SetRetentionRequest {
            mailbox_ttl_secs: secs,
            clear,
        } = *req.get_ref();
        let service = &self.state.service;
        let previous = if clear {
            if secs != 0 {
                return Err(Status::invalid_argument(
                    "mailbox_ttl_secs must be 0 with clear",
                ));
            }
            let previous = service.clear_mailbox_ttl().await.map_err(store_status)?;
            info!(
                previous_secs = previous.as_secs(),
                secs = service.mailbox_ttl().as_secs(),
                "admin: mailbox retention override cleared, mailbox_ttl_secs applies"
            );
            previous
        } else {
            if secs == 0 || secs > MAX_MAILBOX_TTL_SECS {
                return Err(Status::invalid_argument(format!(
                    "mailbox_ttl_secs must be in 1..={MAX_MAILBOX_TTL_SECS}"
                )));
            }
            let previous = service
                .set_mailbox_ttl(Duration::from_secs(secs))
                .await
                .map_err(store_status)?;
            info!(
                previous_secs = previous.as_secs(),
                secs, "admin: mailbox retention changed"
            );
            previous
        };
        Ok(Response::new(SetRetentionResponse {
            previous_ttl_secs: previous.as_secs(),
            mailbox_ttl_secs: service.mailbox_ttl().as_secs(),
            source: retention_source(service).into(),
        }))
    }

    async fn drain(&self, _req: Request<DrainRequest>) -> Result<Response<DrainResponse>, Status> {
        let newly_draining = self.state.service.drain();
        // Before answering, so a health check right after sees it.
        set_health(&self.health, ServingStatus::NotServing).await;
        warn!(newly_draining, "admin: draining, new requests are refused");
        Ok(Response::new(DrainResponse { newly_draining }))
    }
}

fn retention_source(service: &crate::service::AnchorService) -> RetentionSource {
    if service.mailbox_ttl_overridden() {
        RetentionSource::Api
    } else {
        RetentionSource::Config
    }
}

/// Serves the admin API, gRPC health and reflection on `listener` until
/// `shutdown` resolves, then finishes the requests in flight.
pub(crate) async fn serve<H: Health>(
    listener: TcpListener,
    api: AdminApi,
    health: HealthServer<H>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    // The descriptor sets are built in: a failure is a build defect.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let (v1, v1alpha) = match (reflection().build_v1(), reflection().build_v1alpha()) {
        (Ok(v1), Ok(v1alpha)) => (v1, v1alpha),
        (Err(e), _) | (_, Err(e)) => {
            warn!(error = %e, "admin API: gRPC reflection descriptors invalid; not serving");
            return;
        }
    };
    let result = tonic::transport::Server::builder()
        .timeout(Duration::from_secs(30))
        .concurrency_limit_per_connection(64)
        .add_service(health)
        .add_service(AdminServer::new(api))
        .add_service(v1)
        .add_service(v1alpha)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await;
    if let Err(e) = result {
        warn!(error = %e, "admin API server failed");
    }
}
