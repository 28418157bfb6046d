//! `anchor.toml`: every setting of an anchor, with its default written out by
//! `distsoc-anchor init`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use distsoc_net::transport::{
    DEFAULT_FRAME_DEADLINE_FLOOR, DEFAULT_FRAME_MIN_RATE, DEFAULT_IDLE_SLOT_GRACE,
    DEFAULT_IP_FRAME_BUDGET,
};
use serde::{Deserialize, Serialize};

use crate::ratelimit::{LimitConfig, RateConfig};

/// Anchor settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnchorConfig {
    /// UDP address of the QUIC endpoint.
    pub listen: SocketAddr,
    /// Addresses announced to peers (the anchor's public addresses).
    pub advertise: Vec<SocketAddr>,
    /// Storage: `sqlite:PATH` (relative to the data directory; the default) or
    /// `postgres://user@host/db` (several anchors may share one database).
    pub store: String,
    /// How long undelivered mailbox messages are kept, seconds (7 days).
    pub mailbox_ttl_secs: u64,
    /// Seconds between sweeps of expired mailbox messages (and of posts
    /// past `post_retention_days`).
    pub sweep_interval_secs: u64,
    /// Days a deposited post is kept for pull sync, counted from when the
    /// anchor received it; 0 keeps posts forever.
    pub post_retention_days: u64,
    /// Longest FetchWait held open, ms (at most 60000).
    pub max_fetch_wait_ms: u32,
    /// Requests per second allowed per identity.
    pub rate_limit_per_second: u32,
    /// Requests an identity may send at once above its sustained rate.
    pub rate_limit_burst: u32,
    /// Requests per second allowed per IP address, all identities on it
    /// together; divided equally between the identities active on the IP,
    /// so one flooding identity cannot starve the others behind a NAT.
    pub ip_rate_limit_per_second: u32,
    /// Requests an IP may send at once (divided like the rate).
    pub ip_rate_limit_burst: u32,
    /// `CreateChannel` requests per minute allowed per creator (on top of
    /// the request rate; asking again for an existing channel counts too).
    pub channel_create_per_minute: u32,
    /// `CreateChannel` requests a creator may send at once.
    pub channel_create_burst: u32,
    /// `CreateChannel` requests per minute allowed per IP address, divided
    /// equally between the identities active on it.
    pub channel_create_ip_per_minute: u32,
    /// `CreateChannel` requests an IP may send at once.
    pub channel_create_ip_burst: u32,
    /// A check-in counts as recent for address answers and bootstrap for this
    /// many seconds.
    pub checkin_window_secs: u64,
    /// Most posts per pull-sync response.
    pub max_pull_batch: u16,
    /// Bound of one address-verification dial-back, ms.
    pub verify_timeout_ms: u64,
    /// Address-verification dial-backs in flight at once.
    pub verify_max_concurrent: usize,
    /// Announced addresses verified per check-in.
    pub verify_max_addrs: usize,
    /// Dial-backs caused by clients of one source IP per minute.
    pub verify_dials_per_ip_per_minute: u32,
    /// A verified (NodeId, address) is trusted this long without dialling
    /// again, seconds.
    pub verify_cache_secs: u64,
    /// A failed (NodeId, address) is not dialled again for this long,
    /// seconds.
    pub verify_retry_secs: u64,
    /// At most one check-in write per identity per this many seconds,
    /// unless its verified addresses or role changed.
    pub checkin_write_interval_secs: u64,
    /// Deposit quotas (PushPost) are counted over this rolling window,
    /// seconds (1 day). Refusals are `quotaExceeded` with `retryAfterMs`.
    pub post_quota_window_secs: u64,
    /// Posts one author may deposit per window (0 = no limit).
    pub post_quota_author_posts: u64,
    /// Bytes of posts (canonical `SyncPost`) one author may deposit per
    /// window (0 = no limit).
    pub post_quota_author_bytes: u64,
    /// Posts one depositor (the connecting identity) may deposit per window,
    /// whoever the authors (0 = no limit).
    pub post_quota_depositor_posts: u64,
    /// Bytes of posts one depositor may deposit per window (0 = no limit).
    pub post_quota_depositor_bytes: u64,
    /// Threads that validate deposited posts, the signatures of concurrent
    /// deposits verified in one batch (0 = one per two cores, at least one).
    pub ingest_verify_threads: usize,
    /// Most simultaneous peer connections. When all are taken, an idle
    /// incoming connection (see `idle_slot_grace_secs`) is evicted to let a
    /// new one in.
    pub max_connections: usize,
    /// Most incoming connections from one IP address (256). Many users can
    /// sit behind one NAT, so keep it generous, but well below
    /// `max_connections`; further ones are closed with code 0x6.
    pub max_connections_per_ip: usize,
    /// When every slot is taken, an incoming connection with no request for
    /// this many seconds (and none running) is closed with code 0x7 to let
    /// a new client in; never-used connections go first (10).
    pub idle_slot_grace_secs: u64,
    /// Seconds any incoming frame has to arrive completely, on top of the
    /// time its size needs at `frame_min_rate` (5).
    pub frame_deadline_floor_secs: u64,
    /// Bytes per second an incoming frame must arrive at beyond the floor
    /// (32768: a 16 MiB frame has 5 s + 512 s). Slower streams are cut.
    pub frame_min_rate: u64,
    /// Bytes of incoming frames held at once by all connections from one IP
    /// address (33554432 = 32 MiB, half of the endpoint's 64 MiB; at least
    /// 16 MiB + 2057 B).
    pub ip_frame_budget_bytes: usize,
    /// Seconds without traffic before a connection is closed.
    pub idle_timeout_secs: u64,
    /// Log filter (`RUST_LOG` syntax) when `RUST_LOG` is not set.
    pub log: String,
    /// TCP address of the admin gRPC API and gRPC health service; empty
    /// disables it. UNAUTHENTICATED: keep it on loopback or behind a firewall.
    pub admin_listen: String,
    /// TCP address of the Prometheus endpoint (`GET /metrics`); empty
    /// disables it. Unauthenticated: keep it on loopback or behind a firewall.
    pub metrics_listen: String,
}

impl Default for AnchorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 4433)),
            advertise: Vec::new(),
            store: "sqlite:anchor.sqlite".into(),
            mailbox_ttl_secs: 7 * 24 * 3600,
            sweep_interval_secs: 60,
            post_retention_days: 0,
            max_fetch_wait_ms: 60_000,
            rate_limit_per_second: 50,
            rate_limit_burst: 50,
            ip_rate_limit_per_second: 500,
            ip_rate_limit_burst: 500,
            channel_create_per_minute: 30,
            channel_create_burst: 10,
            channel_create_ip_per_minute: 600,
            channel_create_ip_burst: 200,
            checkin_window_secs: 24 * 3600,
            max_pull_batch: 200,
            verify_timeout_ms: 5_000,
            verify_max_concurrent: 16,
            verify_max_addrs: 4,
            verify_dials_per_ip_per_minute: 60,
            verify_cache_secs: 3600,
            verify_retry_secs: 600,
            checkin_write_interval_secs: 60,
            post_quota_window_secs: 24 * 3600,
            post_quota_author_posts: 1_000,
            post_quota_author_bytes: 64 * 1024 * 1024,
            post_quota_depositor_posts: 2_000,
            post_quota_depositor_bytes: 128 * 1024 * 1024,
            ingest_verify_threads: 0,
            max_connections: 2000,
            max_connections_per_ip: DEFAULT_ANCHOR_MAX_CONNECTIONS_PER_IP,
            idle_slot_grace_secs: DEFAULT_IDLE_SLOT_GRACE.as_secs(),
            frame_deadline_floor_secs: DEFAULT_FRAME_DEADLINE_FLOOR.as_secs(),
            frame_min_rate: DEFAULT_FRAME_MIN_RATE,
            ip_frame_budget_bytes: DEFAULT_IP_FRAME_BUDGET,
            idle_timeout_secs: 60,
            log: "info".into(),
            admin_listen: "127.0.0.1:4501".into(),
            metrics_listen: "127.0.0.1:4502".into(),
        }
    }
}

/// Default `max_connections_per_ip` of an anchor: 256 of its 2,000 slots.
pub const DEFAULT_ANCHOR_MAX_CONNECTIONS_PER_IP: usize = 256;

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Invalid TOML, unknown keys or out-of-range values.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl AnchorConfig {
    /// Loads a config file; a missing file means all defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let cfg: Self = match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Invalid {
                path: path.into(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(source) => {
                return Err(ConfigError::Io {
                    path: path.into(),
                    source,
                })
            }
        };
        cfg.validate().map_err(|message| ConfigError::Invalid {
            path: path.into(),
            message,
        })?;
        Ok(cfg)
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_fetch_wait_ms > 60_000 {
            return Err("max_fetch_wait_ms must be at most 60000".into());
        }
        if [
            self.rate_limit_per_second,
            self.rate_limit_burst,
            self.ip_rate_limit_per_second,
            self.ip_rate_limit_burst,
            self.channel_create_per_minute,
            self.channel_create_burst,
            self.channel_create_ip_per_minute,
            self.channel_create_ip_burst,
        ]
        .contains(&0)
        {
            return Err("rate limits must be positive".into());
        }
        if self.mailbox_ttl_secs == 0 {
            return Err("mailbox_ttl_secs must be positive".into());
        }
        if self.verify_timeout_ms == 0
            || self.verify_max_concurrent == 0
            || self.verify_max_addrs == 0
        {
            return Err(
                "verify_timeout_ms, verify_max_concurrent and verify_max_addrs must be positive"
                    .into(),
            );
        }
        if self.post_quota_window_secs == 0 {
            return Err("post_quota_window_secs must be positive".into());
        }
        if self.max_connections_per_ip == 0 {
            return Err("max_connections_per_ip must be positive".into());
        }
        if self.frame_deadline_floor_secs == 0 || self.frame_min_rate == 0 {
            return Err("frame_deadline_floor_secs and frame_min_rate must be positive".into());
        }
        let admin = optional_addr("admin_listen", &self.admin_listen)?;
        let metrics = optional_addr("metrics_listen", &self.metrics_listen)?;
        if let (Some(a), Some(m)) = (admin, metrics) {
            if a.port() != 0 && a == m {
                return Err("admin_listen and metrics_listen must differ".into());
            }
        }
        Ok(())
    }

    /// The request limits.
    pub fn request_limits(&self) -> LimitConfig {
        LimitConfig {
            identity: RateConfig::new(
                f64::from(self.rate_limit_per_second),
                f64::from(self.rate_limit_burst),
            ),
            ip: RateConfig::new(
                f64::from(self.ip_rate_limit_per_second),
                f64::from(self.ip_rate_limit_burst),
            ),
        }
    }

    /// The `CreateChannel` limits.
    pub fn channel_create_limits(&self) -> LimitConfig {
        LimitConfig {
            identity: RateConfig::per_minute(
                f64::from(self.channel_create_per_minute),
                f64::from(self.channel_create_burst),
            ),
            ip: RateConfig::per_minute(
                f64::from(self.channel_create_ip_per_minute),
                f64::from(self.channel_create_ip_burst),
            ),
        }
    }

    /// The address-verification settings.
    pub fn verify(&self) -> crate::verify::VerifyConfig {
        use std::time::Duration;
        crate::verify::VerifyConfig {
            timeout: Duration::from_millis(self.verify_timeout_ms),
            max_concurrent: self.verify_max_concurrent,
            max_addrs: self.verify_max_addrs,
            dials_per_ip_per_minute: self.verify_dials_per_ip_per_minute,
            cache_ttl: Duration::from_secs(self.verify_cache_secs),
            retry_after: Duration::from_secs(self.verify_retry_secs),
            write_interval: Duration::from_secs(self.checkin_write_interval_secs),
        }
    }

    /// The deposit quota settings.
    pub fn quota(&self) -> crate::quota::QuotaConfig {
        crate::quota::QuotaConfig {
            window: std::time::Duration::from_secs(self.post_quota_window_secs),
            author_posts: self.post_quota_author_posts,
            author_bytes: self.post_quota_author_bytes,
            depositor_posts: self.post_quota_depositor_posts,
            depositor_bytes: self.post_quota_depositor_bytes,
        }
    }

    /// The admin API address; `None` when disabled (empty) or invalid.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        optional_addr("admin_listen", &self.admin_listen)
            .ok()
            .flatten()
    }

    /// The metrics address; `None` when disabled (empty) or invalid.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        optional_addr("metrics_listen", &self.metrics_listen)
            .ok()
            .flatten()
    }

    /// The TOML text with every setting.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!(
            "# distsoc-anchor configuration. Every setting is shown with its default;\n\
             # see `distsoc-anchor --help`.\n\
             # admin_listen (gRPC admin API) and metrics_listen (Prometheus) are\n\
             # UNAUTHENTICATED: keep them on loopback or behind a firewall; \"\" disables.\n\n{body}"
        )
    }

    /// The store URL with a relative `sqlite:` path resolved against `dir`.
    pub fn store_url(&self, dir: &Path) -> String {
        match self.store.strip_prefix("sqlite:") {
            Some(p) if p != ":memory:" && !Path::new(p).is_absolute() => {
                format!("sqlite:{}", dir.join(p).display())
            }
            _ => self.store.clone(),
        }
    }
}

/// An empty (disabled) or `IP:PORT` setting.
fn optional_addr(key: &str, value: &str) -> Result<Option<SocketAddr>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| format!("{key} must be IP:PORT or empty (disabled), got {value:?}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_written_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anchor.toml");
        assert_eq!(AnchorConfig::load(&path).unwrap(), AnchorConfig::default());
        std::fs::write(&path, AnchorConfig::default().to_toml()).unwrap();
        assert_eq!(AnchorConfig::load(&path).unwrap(), AnchorConfig::default());
        std::fs::write(&path, "max_fetch_wait_ms = 90000\n").unwrap();
        assert!(AnchorConfig::load(&path).is_err());
        std::fs::write(&path, "post_quota_window_secs = 0\n").unwrap();
        assert!(AnchorConfig::load(&path).is_err());
        std::fs::write(&path, "nope = 1\n").unwrap();
        assert!(AnchorConfig::load(&path).is_err());
        std::fs::write(&path, "admin_listen = \"localhost\"\n").unwrap();
        assert!(AnchorConfig::load(&path).is_err());
        std::fs::write(&path, "admin_listen = \"\"\nmetrics_listen = \"\"\n").unwrap();
        let off = AnchorConfig::load(&path).unwrap();
        assert_eq!((off.admin_addr(), off.metrics_addr()), (None, None));
        let same = AnchorConfig {
            metrics_listen: "127.0.0.1:4501".into(),
            ..AnchorConfig::default()
        };
        assert!(same.validate().is_err());
        assert_eq!(
            AnchorConfig::default().admin_addr(),
            Some(SocketAddr::from(([127, 0, 0, 1], 4501)))
        );
        let cfg = AnchorConfig::default();
        assert_eq!(cfg.store_url(Path::new("/d")), "sqlite:/d/anchor.sqlite");
        let pg = AnchorConfig {
            store: "postgres://a@b/c".into(),
            ..cfg
        };
        assert_eq!(pg.store_url(Path::new("/d")), "postgres://a@b/c");
        let d = AnchorConfig::default();
        assert_eq!(d.request_limits(), LimitConfig::default());
        assert_eq!(d.channel_create_limits(), LimitConfig::channel_creation());
        std::fs::write(&path, "channel_create_per_minute = 0\n").unwrap();
        assert!(AnchorConfig::load(&path).is_err());
    }
}
