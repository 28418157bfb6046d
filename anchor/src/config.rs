//! `anchor.toml`: every setting of an anchor, with its default written out by
//! `distsoc-anchor init`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use distsoc_net::transport::{
    DEFAULT_FRAME_DEADLINE_FLOOR, DEFAULT_FRAME_MIN_RATE, DEFAULT_IDLE_SLOT_GRACE,
    DEFAULT_IP_FRAME_BUDGET,
};
use std::time::Duration;

use distsoc_net::operator::LogFormat;
use distsoc_protocol::limits::MAX_FETCH_WAIT_MS;
use serde::{Deserialize, Serialize};

use crate::ratelimit::{LimitConfig, RateConfig};
use crate::store::StoreOptions;

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
    /// PostgreSQL: most pooled connections per anchor process (each anchor
    /// also holds one `LISTEN` connection).
    pub pg_pool_size: usize,
    /// PostgreSQL: longest wait for a pooled connection and for opening
    /// one, ms; beyond it a request is answered `unavailable`.
    pub pg_connect_timeout_ms: u64,
    /// PostgreSQL: longest time one database operation may take, ms.
    pub pg_op_timeout_ms: u64,
    /// PostgreSQL: group-commit workers (write transactions in flight).
    pub pg_write_workers: usize,
    /// Most write requests group-committed in one transaction (both
    /// backends).
    pub store_max_write_batch: usize,
    /// SQLite: how long a write waits for another process holding the
    /// database's write lock, ms.
    pub sqlite_busy_timeout_ms: u64,
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
    /// Log line format on stderr: `text` or `json` (`--log-format`
    /// overrides).
    pub log_format: LogFormat,
    /// Seconds in-flight requests get to finish after SIGTERM or Ctrl-C.
    pub drain_timeout_secs: u64,
    /// TCP address of the admin gRPC API and gRPC health service; empty
    /// disables it. UNAUTHENTICATED: keep it on loopback or behind a firewall.
    pub admin_listen: String,
    /// TCP address of the Prometheus endpoint (`GET /metrics`); empty
    /// disables it. Unauthenticated: keep it on loopback or behind a firewall.
    pub metrics_listen: String,
}

impl Default for AnchorConfig {
    fn default() -> Self {
        let store = StoreOptions::default();
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_ANCHOR_PORT)),
            advertise: Vec::new(),
            store: "sqlite:anchor.sqlite".into(),
            pg_pool_size: store.pool_size,
            pg_connect_timeout_ms: millis(store.connect_timeout),
            pg_op_timeout_ms: millis(store.op_timeout),
            pg_write_workers: store.write_workers,
            store_max_write_batch: store.max_write_batch,
            sqlite_busy_timeout_ms: millis(store.busy_timeout),
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
            log_format: LogFormat::Text,
            drain_timeout_secs: 10,
            admin_listen: "127.0.0.1:4501".into(),
            metrics_listen: "127.0.0.1:4502".into(),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The anchor's default UDP port (4500; a user node's default is 4433, so
/// both run on one machine without settings).
pub const DEFAULT_ANCHOR_PORT: u16 = 4500;

/// Most `advertise` addresses: Hello's `listenAddresses` carries at most 8.
pub const MAX_ADVERTISED: usize = 8;

/// Default `max_connections_per_ip` of an anchor: 256 of its 2,000 slots.
pub const DEFAULT_ANCHOR_MAX_CONNECTIONS_PER_IP: usize = 256;

/// The comment written above each key of `anchor.toml`: meaning, unit and
/// what an operator should consider (the default is added from
/// [`AnchorConfig::default`]). A test checks that every key has one.
pub const KEY_DOCS: &[(&str, &str)] = &[
    (
        "listen",
        "UDP address (IP:PORT) of the QUIC endpoint that nodes connect to. \
      0.0.0.0 listens on every IPv4 address, [::] on IPv4 and IPv6. The port \
      differs from a user node's default (4433), so both can run on one machine. \
      Open this UDP port in the firewall.",
    ),
    (
        "advertise",
        "Public addresses (IP:PORT, at most 8) announced to peers in Hello and \
      in bootstrap answers. Set them when the anchor is behind NAT or listens on \
      0.0.0.0; empty announces none (peers still know the address they dialled).",
    ),
    (
        "store",
        "Storage. \"sqlite:PATH\" (relative to the data directory; nothing to set \
      up) or PostgreSQL: \"postgres://USER@HOST:PORT/DB\" or a libpq string such as \
      \"host=/run/postgresql user=distsoc dbname=distsoc\" (a host starting with / is \
      a unix-socket directory). Several anchors may share one PostgreSQL database; \
      each needs its own data directory. No TLS: use a unix socket or a trusted \
      network.",
    ),
    (
        "pg_pool_size",
        "PostgreSQL: most pooled connections of this anchor process (half, \
      rounded up, for the mailbox, the rest for everything else; at least one \
      each). The anchor also holds one LISTEN connection, so size the server's \
      max_connections for (pg_pool_size + 1) per anchor process (3 if pg_pool_size \
      is 1), plus your own tools.",
    ),
    (
        "pg_connect_timeout_ms",
        "PostgreSQL: milliseconds a request waits for a pooled \
      connection, and for opening one. During an outage requests are answered \
      `unavailable` after this long instead of hanging.",
    ),
    (
        "pg_op_timeout_ms",
        "PostgreSQL: milliseconds one database operation may take \
      before the request is answered `unavailable`.",
    ),
    (
        "pg_write_workers",
        "PostgreSQL: group-commit workers, i.e. write transactions in \
      flight at once. Few is better: one worker takes everything queued while its \
      previous transaction committed (larger batches, fewer commits); many workers \
      under moderate load make many one-request transactions.",
    ),
    (
        "store_max_write_batch",
        "Most write requests (enqueues, acknowledgements, audit rows, \
      check-ins) committed in one transaction, both backends. Every request is \
      acknowledged only after its transaction committed.",
    ),
    (
        "sqlite_busy_timeout_ms",
        "SQLite: milliseconds a write waits while another process \
      holds the database's write lock (e.g. a backup with the sqlite3 shell).",
    ),
    (
        "mailbox_ttl_secs",
        "Seconds an undelivered mailbox or DM message is kept (604800 = 7 \
      days); announced in Hello. A retention set through the admin API \
      (SetRetention) overrides this value, is stored in the database and logged at \
      start.",
    ),
    (
        "sweep_interval_secs",
        "Seconds between sweeps that delete expired mailbox messages, \
      old audit rows and check-ins, and posts past post_retention_days.",
    ),
    (
        "post_retention_days",
        "Days a deposited post is kept for pull sync, counted from \
      when this anchor received it. 0 keeps posts forever: set a limit on a public \
      anchor, or the disk grows without bound.",
    ),
    (
        "max_fetch_wait_ms",
        "Longest FetchWait (long poll for new messages) held open, ms; \
      at most 60000 (the protocol's limit); announced in Hello.",
    ),
    (
        "rate_limit_per_second",
        "Requests per second allowed per identity, sustained; \
      announced in Hello as rateLimitPerSecond, a 16-bit field: a larger value is \
      enforced but announced as 65535, with a warning at start. Refused requests get `rateLimited` with retryAfterMs and cost no storage work. \
      Raise it (and the IP limits) for load tests.",
    ),
    (
        "rate_limit_burst",
        "Requests an identity may send at once above its sustained rate \
      (the token bucket's size).",
    ),
    (
        "ip_rate_limit_per_second",
        "Requests per second allowed per source IP address, all \
      identities on it together, divided equally between the identities active on \
      the IP, so one flooding identity behind a NAT cannot starve the others. Raise \
      it for a known large NAT (a campus, a carrier) rather than the per-identity \
      limit.",
    ),
    (
        "ip_rate_limit_burst",
        "Requests an IP address may send at once (divided like the \
      rate).",
    ),
    (
        "channel_create_per_minute",
        "CreateChannel requests per minute allowed per creator, \
      on top of the request rate (asking again for an existing channel counts too).",
    ),
    (
        "channel_create_burst",
        "CreateChannel requests a creator may send at once.",
    ),
    (
        "channel_create_ip_per_minute",
        "CreateChannel requests per minute allowed per source \
      IP address, divided equally between the identities active on it.",
    ),
    (
        "channel_create_ip_burst",
        "CreateChannel requests an IP address may send at once.",
    ),
    (
        "checkin_window_secs",
        "Seconds a check-in counts as recent for address answers and \
      bootstrap (86400 = 1 day).",
    ),
    (
        "max_pull_batch",
        "Most posts per pull-sync response (1 to 65535); announced in \
      Hello.",
    ),
    (
        "verify_timeout_ms",
        "Bound of one address-verification dial-back (handshake and \
      Hello), ms. Only addresses verified by a dial-back with the client's NodeId \
      pinned are handed out.",
    ),
    (
        "verify_max_concurrent",
        "Address-verification dial-backs in flight at once; a \
      check-in finding none free is verified at its next connection.",
    ),
    (
        "verify_max_addrs",
        "Announced addresses verified per check-in.",
    ),
    (
        "verify_dials_per_ip_per_minute",
        "Dial-backs caused by the clients of one source IP \
      address per minute.",
    ),
    (
        "verify_cache_secs",
        "Seconds a verified (NodeId, address) is trusted without \
      dialling again.",
    ),
    (
        "verify_retry_secs",
        "Seconds a failed (NodeId, address) is not dialled again.",
    ),
    (
        "checkin_write_interval_secs",
        "At most one check-in write per identity per this many \
      seconds, unless its verified addresses or role changed.",
    ),
    (
        "post_quota_window_secs",
        "Deposit quotas (PushPost) are counted over this rolling \
      window, seconds (86400 = 1 day). A deposit over a quota gets `quotaExceeded` \
      with retryAfterMs and stores nothing.",
    ),
    (
        "post_quota_author_posts",
        "Posts one author may deposit per window; 0 = no limit.",
    ),
    (
        "post_quota_author_bytes",
        "Bytes of posts (canonical SyncPost) one author may \
      deposit per window (67108864 = 64 MiB); 0 = no limit.",
    ),
    (
        "post_quota_depositor_posts",
        "Posts one depositor (the connecting identity, \
      whoever the authors) may deposit per window; 0 = no limit.",
    ),
    (
        "post_quota_depositor_bytes",
        "Bytes of posts one depositor may deposit per window \
      (134217728 = 128 MiB); 0 = no limit. With the defaults one identity adds at \
      most about 128 MiB a day through one anchor.",
    ),
    (
        "ingest_verify_threads",
        "Threads that validate deposited posts, verifying the \
      signatures of concurrent deposits in one batch. 0 = one per two cores, at \
      least one. More help only when one is busy all the time.",
    ),
    (
        "max_connections",
        "Most simultaneous connections, incoming and outgoing. When all \
      are taken, an idle incoming one (see idle_slot_grace_secs) is evicted for a \
      new one. Each costs memory; raise the process's file limits with it.",
    ),
    (
        "max_connections_per_ip",
        "Most incoming connections from one IP address; further \
      ones are closed with code 0x6. Many users can sit behind one NAT, so keep it \
      generous, but well below max_connections.",
    ),
    (
        "idle_slot_grace_secs",
        "When every slot is taken, an incoming connection with no \
      request for this many seconds (and none running) is closed with code 0x7 to \
      let a new client in; never-used connections go first.",
    ),
    (
        "frame_deadline_floor_secs",
        "Seconds any incoming frame has to arrive completely, on \
      top of the time its size needs at frame_min_rate. Slower streams are cut (the \
      connection stays).",
    ),
    (
        "frame_min_rate",
        "Bytes per second an incoming frame must arrive at beyond the \
      floor (32768: a 16 MiB frame has 5 s + 512 s).",
    ),
    (
        "ip_frame_budget_bytes",
        "Bytes of incoming frames held at once by all connections \
      from one IP address (33554432 = 32 MiB, half of the endpoint's 64 MiB; at \
      least 16 MiB + 2057 B). Charged as bytes arrive, never for declared sizes.",
    ),
    (
        "idle_timeout_secs",
        "Seconds without any traffic before a connection is closed \
      (the smaller of both peers' values applies).",
    ),
    (
        "log",
        "Log filter when RUST_LOG is not set (tracing's EnvFilter syntax, e.g. \
      \"info\" or \"info,distsoc_net=debug\"). At debug every connection is logged \
      with its peer, address, duration and close reason, one line each.",
    ),
    (
        "log_format",
        "Log lines on stderr: \"text\" (colour codes only on a terminal) or \
      \"json\" (one JSON object per line, for log collectors). The flag \
      --log-format overrides it.",
    ),
    (
        "drain_timeout_secs",
        "Seconds in-flight requests get to finish after SIGTERM or \
      Ctrl-C (new requests are answered `unavailable` meanwhile) before the endpoint \
      closes.",
    ),
    (
        "admin_listen",
        "TCP address (IP:PORT) of the admin gRPC API and the gRPC health \
      service; \"\" disables it. UNAUTHENTICATED: keep it on loopback or behind a \
      firewall.",
    ),
    (
        "metrics_listen",
        "TCP address (IP:PORT) of the Prometheus endpoint (GET /metrics); \
      \"\" disables it. Unauthenticated: keep it on loopback or behind a firewall.",
    ),
];

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

    /// Checks ranges, and that the values the anchor announces in its
    /// Hello fit the wire fields that carry them where announcing less
    /// would mislead (`advertise`, `max_fetch_wait_ms`, `max_pull_batch`).
    /// A rate limit above what `rateLimitPerSecond` carries is not an
    /// error but a [`AnchorConfig::warnings`] entry. The message names the
    /// key and its limit.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_fetch_wait_ms > MAX_FETCH_WAIT_MS {
            return Err(format!(
                "max_fetch_wait_ms = {} is over {MAX_FETCH_WAIT_MS}, the protocol's longest FetchWait",
                self.max_fetch_wait_ms
            ));
        }
        if self.max_pull_batch == 0 {
            return Err("max_pull_batch must be at least 1 (it is announced in Hello)".into());
        }
        if self.advertise.len() > MAX_ADVERTISED {
            return Err(format!(
                "advertise lists {} addresses; Hello's listenAddresses carries at most {MAX_ADVERTISED}",
                self.advertise.len()
            ));
        }
        for (key, value) in [
            ("rate_limit_per_second", self.rate_limit_per_second),
            ("rate_limit_burst", self.rate_limit_burst),
            ("ip_rate_limit_per_second", self.ip_rate_limit_per_second),
            ("ip_rate_limit_burst", self.ip_rate_limit_burst),
            ("channel_create_per_minute", self.channel_create_per_minute),
            ("channel_create_burst", self.channel_create_burst),
            (
                "channel_create_ip_per_minute",
                self.channel_create_ip_per_minute,
            ),
            ("channel_create_ip_burst", self.channel_create_ip_burst),
        ] {
            if value == 0 {
                return Err(format!(
                    "{key} must be positive (rate limits cannot be turned off)"
                ));
            }
        }
        for (key, value) in [
            ("mailbox_ttl_secs", self.mailbox_ttl_secs),
            ("verify_timeout_ms", self.verify_timeout_ms),
            ("verify_max_concurrent", self.verify_max_concurrent as u64),
            ("verify_max_addrs", self.verify_max_addrs as u64),
            ("post_quota_window_secs", self.post_quota_window_secs),
            ("max_connections", self.max_connections as u64),
            ("max_connections_per_ip", self.max_connections_per_ip as u64),
            ("frame_deadline_floor_secs", self.frame_deadline_floor_secs),
            ("frame_min_rate", self.frame_min_rate),
            ("pg_pool_size", self.pg_pool_size as u64),
            ("pg_connect_timeout_ms", self.pg_connect_timeout_ms),
            ("pg_op_timeout_ms", self.pg_op_timeout_ms),
            ("pg_write_workers", self.pg_write_workers as u64),
            ("store_max_write_batch", self.store_max_write_batch as u64),
        ] {
            if value == 0 {
                return Err(format!("{key} must be positive"));
            }
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

    /// Values that are enforced as set but announced clamped, because the
    /// wire field cannot carry them: `rate_limit_per_second` above 65535
    /// (Hello's `rateLimitPerSecond` is 16 bits). Clamping is harmless
    /// there — a client pacing itself by the announced rate stays below
    /// the one enforced — and load tests set 1000000 to mean "unlimited",
    /// so it is a warning (logged at start, naming the key and the limit),
    /// not an error.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.rate_limit_per_second > u32::from(u16::MAX) {
            out.push(format!(
                "rate_limit_per_second = {} is enforced, but announced to clients as {}: \
                 the most the Hello's rateLimitPerSecond (a 16-bit field) can carry",
                self.rate_limit_per_second,
                u16::MAX
            ));
        }
        out
    }

    /// The store's tuning knobs (`pg_*`, `store_max_write_batch`,
    /// `sqlite_busy_timeout_ms`).
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            pool_size: self.pg_pool_size,
            connect_timeout: Duration::from_millis(self.pg_connect_timeout_ms),
            op_timeout: Duration::from_millis(self.pg_op_timeout_ms),
            max_write_batch: self.store_max_write_batch,
            write_workers: self.pg_write_workers,
            busy_timeout: Duration::from_millis(self.sqlite_busy_timeout_ms),
        }
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

    /// The TOML text with every setting, each with a comment above it: its
    /// meaning and unit, its default, and what to consider
    /// ([`KEY_DOCS`]).
    pub fn to_toml(&self) -> String {
        distsoc_net::operator::commented_toml(
            "distsoc-anchor configuration (`distsoc-anchor init` writes it).\n\
             Every setting is shown with its value and default; delete a line to\n\
             go back to the default. Flags of `distsoc-anchor run` (--store,\n\
             --listen, --admin-listen, --metrics-listen, --log-format) override it.\n\
             Unknown keys are refused at start, so a typo does not pass silently.\n\
             docs/OPERATING-AN-ANCHOR.md explains each group.",
            self,
            &Self::default(),
            KEY_DOCS,
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

    #[test]
    fn written_file_has_a_comment_on_every_key_and_parses_back() {
        let text = AnchorConfig::default().to_toml();
        assert_eq!(
            toml::from_str::<AnchorConfig>(&text).unwrap(),
            AnchorConfig::default()
        );
        // Every key of the serialized default is in the text, each with a
        // comment above it that says more than the default.
        let table = toml::Table::try_from(AnchorConfig::default()).unwrap();
        for key in table.keys() {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{key} = "))),
                "{key} not written"
            );
            assert!(
                KEY_DOCS.iter().any(|(k, _)| k == key),
                "{key} has no entry in KEY_DOCS"
            );
        }
        assert_eq!(
            distsoc_net::operator::keys_without_comment(&text),
            Vec::<String>::new()
        );
        assert!(text.contains("# Default: 16\npg_pool_size = 16"), "{text}");
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
        // No stale entries either.
        for (k, _) in KEY_DOCS {
            assert!(table.contains_key(*k), "KEY_DOCS names unknown key {k}");
        }
    }

    #[test]
    fn values_the_wire_cannot_carry_are_refused_or_warned_naming_key_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anchor.toml");
        for (text, words) in [
            (
                "max_fetch_wait_ms = 90000\n",
                &["max_fetch_wait_ms", "60000"][..],
            ),
            ("max_pull_batch = 0\n", &["max_pull_batch"]),
            ("pg_pool_size = 0\n", &["pg_pool_size"]),
            (
                "advertise = [\"1.2.3.4:1\", \"1.2.3.4:2\", \"1.2.3.4:3\", \"1.2.3.4:4\", \
                 \"1.2.3.4:5\", \"1.2.3.4:6\", \"1.2.3.4:7\", \"1.2.3.4:8\", \"1.2.3.4:9\"]\n",
                &["advertise", "8"],
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = AnchorConfig::load(&path).unwrap_err().to_string();
            assert!(e.contains(&path.display().to_string()), "{e}");
            for w in words {
                assert!(e.contains(w), "{e} lacks {w}");
            }
        }
        std::fs::write(&path, "rate_limit_per_second = 65535\npg_pool_size = 4\n").unwrap();
        let cfg = AnchorConfig::load(&path).unwrap();
        assert!(cfg.warnings().is_empty());
        assert_eq!(cfg.store_options().pool_size, 4);
        assert_eq!(
            cfg.store_options().connect_timeout,
            StoreOptions::default().connect_timeout
        );
        // Enforced as set, announced clamped, with a warning naming both.
        std::fs::write(&path, "rate_limit_per_second = 100000\n").unwrap();
        let fast = AnchorConfig::load(&path).unwrap();
        assert_eq!(fast.request_limits().identity.per_second, 100_000.0);
        let w = fast.warnings().join("\n");
        for word in [
            "rate_limit_per_second = 100000",
            "65535",
            "rateLimitPerSecond",
        ] {
            assert!(w.contains(word), "{w} lacks {word}");
        }
    }
}
