//! Data directory and `config.toml`.
//!
//! A node keeps everything in one data directory (default
//! `$XDG_DATA_HOME/distsoc`, else `~/.local/share/distsoc`; `--data-dir` or
//! `DISTSOC_DATA_DIR` override it):
//!
//! | file | what |
//! |---|---|
//! | `node.key` | the network key (0600) |
//! | `config.toml` | settings; `init` writes it with every default spelled out |
//! | `store.sqlite` (+ `-wal`, `-shm`) | the embedded store (0600) |
//! | `anchors.json` | anchor connect strings (0600) |
//! | `mesh-status.json` | the mesh snapshot `run` writes every 10 s, every second for the first 30 s (0600) |
//! | `lock` | held by `run` so that one directory serves one process |
//!
//! The directory is created 0700 and every file 0600, whatever the umask
//! ([`distsoc_net::datadir`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the configuration inside the data directory.
pub const CONFIG_FILE: &str = "config.toml";
/// File name of the store inside the data directory.
pub const STORE_FILE: &str = "store.sqlite";

/// Node settings. Every field has a default; `init` writes them all out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// UDP address the QUIC endpoint listens on.
    pub listen: SocketAddr,
    /// Addresses announced to peers in Hello, where they can reach this
    /// node later (an author pushing to its audience). Default empty: the
    /// `listen` address is announced when it is concrete; with an
    /// unspecified IP (`0.0.0.0`, `::`, the default) or port 0 nothing is
    /// announced, since it would be a wrong address — set this (e.g. the
    /// public address of a port forward) to be reachable then. At most 8.
    pub advertise: Vec<SocketAddr>,
    /// Seconds between background pull-sync rounds with known peers.
    pub sync_interval_secs: u64,
    /// Connect strings (`NodeId@host:port`) contacted at start-up, in
    /// addition to the anchors in `anchors_file`.
    pub bootstrap: Vec<String>,
    /// JSON list of anchor connect strings shipped with the node; relative
    /// paths are resolved against the data directory. Missing file = none.
    pub anchors_file: PathBuf,
    /// Seconds without traffic before a connection is closed.
    pub idle_timeout_secs: u64,
    /// Seconds a dial may take (QUIC handshake, then Hello) before the peer
    /// is reported unreachable (10).
    pub connect_timeout_secs: u64,
    /// Most posts returned per pull-sync response.
    pub max_pull_batch: u16,
    /// Most incoming connections from one IP address (32 of the node's 200);
    /// further ones are closed with code 0x6 right after the handshake.
    pub max_connections_per_ip: usize,
    /// When every connection slot is taken, an incoming connection with no
    /// request for this many seconds (and none running) is closed (code 0x7)
    /// to let a new peer in; never-used connections go first (10).
    pub idle_slot_grace_secs: u64,
    /// Seconds any incoming frame has to arrive completely, on top of the
    /// time its size needs at `frame_min_rate` (5).
    pub frame_deadline_floor_secs: u64,
    /// Bytes per second an incoming frame must arrive at beyond the floor
    /// (32768: a 16 MiB frame has 5 s + 512 s). Slower streams are cut.
    pub frame_min_rate: u64,
    /// Honour author delete records (architecture-roadmap D-2 trust model).
    pub honour_deletes: bool,
    /// Log filter (`RUST_LOG` syntax) when `RUST_LOG` is not set.
    pub log: String,
    /// Pushes (profile, post, delete, visibility and audience messages) one
    /// peer may send per second, sustained; beyond it they are refused with
    /// `rateLimited` and a `retryAfterMs`.
    pub push_rate_per_second: u32,
    /// Pushes one peer may send at once before `push_rate_per_second`
    /// applies (the token bucket's size).
    pub push_burst: u32,
    /// The mesh (`[mesh]`): connection slots, map gossip, lookups.
    pub mesh: MeshSettings,
}

/// Which slot profile `run` uses (`schema/README.md` §13.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MeshProfile {
    /// 81 social + 20 wide connections.
    #[default]
    Desktop,
    /// 10 social + 5 wide connections.
    Mobile,
}

impl MeshProfile {
    /// The profile's name in `config.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            MeshProfile::Desktop => "desktop",
            MeshProfile::Mobile => "mobile",
        }
    }
}

/// The `[mesh]` table of `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeshSettings {
    /// `desktop` (81 social + 20 wide slots) or `mobile` (10 + 5).
    pub profile: MeshProfile,
    /// Peers asked of an anchor at start (BootstrapRequest `want`, ≤ 200).
    pub bootstrap_want: u16,
    /// Seconds between status snapshots (`mesh-status.json`) of `run`.
    pub status_interval_secs: u64,
    /// Seconds a one-shot `lookup` waits for the anchors' InitialMapSync.
    pub sync_wait_secs: u64,
}

impl Default for MeshSettings {
    fn default() -> Self {
        Self {
            profile: MeshProfile::Desktop,
            bootstrap_want: 200,
            status_interval_secs: 10,
            sync_wait_secs: 5,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 4433)),
            advertise: Vec::new(),
            sync_interval_secs: 60,
            bootstrap: Vec::new(),
            anchors_file: PathBuf::from("anchors.json"),
            idle_timeout_secs: 60,
            connect_timeout_secs: 10,
            max_pull_batch: 200,
            max_connections_per_ip: distsoc_net::transport::DEFAULT_MAX_CONNECTIONS_PER_IP,
            idle_slot_grace_secs: distsoc_net::transport::DEFAULT_IDLE_SLOT_GRACE.as_secs(),
            frame_deadline_floor_secs: distsoc_net::transport::DEFAULT_FRAME_DEADLINE_FLOOR
                .as_secs(),
            frame_min_rate: distsoc_net::transport::DEFAULT_FRAME_MIN_RATE,
            honour_deletes: true,
            log: "info".into(),
            push_rate_per_second: 10,
            push_burst: 50,
            mesh: MeshSettings::default(),
        }
    }
}

/// The comment written above each key of `config.toml`: meaning, unit and
/// what to consider (the default is added from [`Config::default`]). A test
/// checks that every key has one.
pub const KEY_DOCS: &[(&str, &str)] = &[
    (
        "listen",
        "UDP address (IP:PORT) the node's QUIC endpoint listens on. 0.0.0.0 \
      listens on every IPv4 address; port 0 picks a free port at each start (peers \
      then cannot reach you at a known address). An anchor's default port is 4500, \
      so both run on one machine.",
    ),
    (
        "advertise",
        "Addresses (IP:PORT, at most 8) announced to peers in Hello, where \
      they can reach this node later (an author pushing to its audience). Empty: the \
      listen address is announced when it is concrete; with an unspecified IP \
      (0.0.0.0, ::) or port 0 nothing is announced. Set it, e.g. to the public \
      address of a port forward, to be reachable then.",
    ),
    (
        "sync_interval_secs",
        "Seconds between background pull-sync rounds with known peers \
      and anchors while `run` is up.",
    ),
    (
        "bootstrap",
        "Connect strings (NodeId@host:port) contacted at start-up and on sync, \
      in addition to the anchors in anchors_file.",
    ),
    (
        "anchors_file",
        "JSON list of anchor connect strings (`distsoc-node anchor \
      add|remove|list` manage it); a relative path is resolved against the data \
      directory. A missing file means none.",
    ),
    (
        "idle_timeout_secs",
        "Seconds without any traffic before a connection is closed (the \
      smaller of both peers' values applies).",
    ),
    (
        "connect_timeout_secs",
        "Seconds a dial may take (QUIC handshake, then Hello) before the peer is \
         reported unreachable, with its address and this timeout named. Raise it on a \
         slow or lossy network.",
    ),
    (
        "max_pull_batch",
        "Most posts returned per pull-sync response (1 to 65535).",
    ),
    (
        "max_connections_per_ip",
        "Most incoming connections from one IP address; further \
      ones are closed with code 0x6 right after the handshake.",
    ),
    (
        "idle_slot_grace_secs",
        "When every connection slot is taken, an incoming connection \
      with no request for this many seconds (and none running) is closed (code 0x7) \
      to let a new peer in; never-used connections go first.",
    ),
    (
        "frame_deadline_floor_secs",
        "Seconds any incoming frame has to arrive completely, on \
      top of the time its size needs at frame_min_rate.",
    ),
    (
        "frame_min_rate",
        "Bytes per second an incoming frame must arrive at beyond the floor \
      (32768: a 16 MiB frame has 5 s + 512 s). Slower streams are cut.",
    ),
    (
        "honour_deletes",
        "Apply authors' delete records: a deleted post is removed here and \
      not served again. false keeps deleted posts.",
    ),
    (
        "log",
        "Log filter of `run` when RUST_LOG is not set (tracing's EnvFilter syntax, \
      e.g. \"info\" or \"info,distsoc_net=debug\"). `run --log-format json` writes one \
      JSON object per line.",
    ),
    (
        "push_rate_per_second",
        "Pushes (profile, post, delete, visibility and audience \
      messages) one peer may send per second, sustained; beyond it they are refused \
      with `rateLimited` and a retryAfterMs.",
    ),
    (
        "push_burst",
        "Pushes one peer may send at once before push_rate_per_second applies \
      (the token bucket's size).",
    ),
    (
        "mesh",
        "The mesh: connection slots, map gossip and lookups.",
    ),
    (
        "mesh.profile",
        "Slot profile: \"desktop\" (81 social + 20 wide connections) or \
      \"mobile\" (10 social + 5 wide).",
    ),
    (
        "mesh.bootstrap_want",
        "Peers asked of an anchor at start (BootstrapRequest want, at \
      most 200).",
    ),
    (
        "mesh.status_interval_secs",
        "Seconds between the status snapshots `run` writes to \
      mesh-status.json (read by `map` and `peers`); every second for \
      the first 30 s, while the node joins.",
    ),
    (
        "mesh.sync_wait_secs",
        "Seconds a one-shot `lookup` waits for the anchors' map \
      sync.",
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
    /// The TOML is invalid or has unknown keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Loads `config.toml` from `dir`; a missing file means all defaults.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let path = dir.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Io { path, source }),
        }
    }

    /// The TOML text with every setting, each with a comment above it: its
    /// meaning and unit, its default, and what to consider ([`KEY_DOCS`]).
    pub fn to_toml(&self) -> String {
        distsoc_net::operator::commented_toml(
            "distsoc-node configuration (`distsoc-node init` writes it).\n\
             Every setting is shown with its value and default; delete a line to\n\
             go back to the default. Unknown keys are refused, so a typo does not\n\
             pass silently. See `distsoc-node --help`.",
            self,
            &Self::default(),
            KEY_DOCS,
        )
    }

    /// Writes `config.toml` into `dir` (mode 0600) unless it exists.
    pub fn write_if_missing(&self, dir: &Path) -> Result<bool, ConfigError> {
        let path = dir.join(CONFIG_FILE);
        match distsoc_net::datadir::write_new_private_file(&path, self.to_toml().as_bytes()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(source) => Err(ConfigError::Io { path, source }),
        }
    }

    /// The anchors file path, resolved against `dir`.
    pub fn anchors_path(&self, dir: &Path) -> PathBuf {
        if self.anchors_file.is_absolute() {
            self.anchors_file.clone()
        } else {
            dir.join(&self.anchors_file)
        }
    }
}

/// The default data directory.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DISTSOC_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("distsoc");
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".local/share/distsoc"))
        .unwrap_or_else(|| PathBuf::from(".distsoc"))
}

/// Reads an `anchors.json`: a JSON array of connect strings. A missing file is
/// an empty list; a malformed one is an error.
pub fn read_anchors(path: &Path) -> Result<Vec<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(ConfigError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes the anchors file (a JSON list of connect strings), mode 0600,
/// replacing it atomically (a temporary file in the same directory, fsynced,
/// then renamed over it).
pub fn write_anchors(path: &Path, list: &[String]) -> Result<(), ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut text = serde_json::to_string_pretty(list).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    text.push('\n');
    let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    distsoc_net::datadir::write_new_private_file(&tmp, text.as_bytes()).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_round_trip_and_unknown_keys_rejected() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), Config::default());
        assert!(Config::default().write_if_missing(dir.path()).unwrap());
        assert!(!Config::default().write_if_missing(dir.path()).unwrap());
        let text = std::fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap();
        for key in [
            "listen",
            "sync_interval_secs",
            "anchors_file",
            "honour_deletes",
            "log",
            "push_rate_per_second",
            "push_burst",
            "[mesh]",
            "profile = \"desktop\"",
            "bootstrap_want",
            "status_interval_secs",
            "sync_wait_secs",
        ] {
            assert!(text.contains(key), "{key} missing from written config");
        }
        assert_eq!(Config::load(dir.path()).unwrap(), Config::default());
        // Every key (and the [mesh] table) has a comment above it saying
        // more than the default, and KEY_DOCS names no unknown key.
        assert_eq!(
            distsoc_net::operator::keys_without_comment(&text),
            Vec::<String>::new()
        );
        let table = toml::Table::try_from(Config::default()).unwrap();
        let mut paths = Vec::new();
        for (k, v) in &table {
            paths.push(k.clone());
            if let Some(t) = v.as_table() {
                paths.extend(t.keys().map(|sub| format!("{k}.{sub}")));
            }
        }
        for p in &paths {
            assert!(KEY_DOCS.iter().any(|(k, _)| k == p), "{p} not in KEY_DOCS");
        }
        for (k, _) in KEY_DOCS {
            assert!(paths.iter().any(|p| p == k), "KEY_DOCS names unknown {k}");
        }
        assert!(
            text.contains("# Default: 10\npush_rate_per_second = 10"),
            "{text}"
        );
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            text.replace("profile = \"desktop\"", "profile = \"mobile\""),
        )
        .unwrap();
        assert_eq!(
            Config::load(dir.path()).unwrap().mesh.profile,
            MeshProfile::Mobile
        );
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "listen = \"127.0.0.1:1\"\nbogus = 1\n",
        )
        .unwrap();
        assert!(matches!(
            Config::load(dir.path()),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn anchors_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("anchors.json");
        assert!(read_anchors(&p).unwrap().is_empty());
        std::fs::write(&p, r#"["aa@127.0.0.1:1"]"#).unwrap();
        assert_eq!(
            read_anchors(&p).unwrap(),
            vec!["aa@127.0.0.1:1".to_string()]
        );
        std::fs::write(&p, "{").unwrap();
        assert!(read_anchors(&p).is_err());
    }
}
