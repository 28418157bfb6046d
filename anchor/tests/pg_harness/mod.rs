//! Throwaway PostgreSQL clusters for the store tests — a real server, no
//! mocks.
//!
//! * **Binaries.** `$DISTSOC_PG_BINDIR` if set; else the directory of the
//!   first `initdb` on `PATH` (symlinks resolved, so `/usr/local/bin/initdb
//!   -> /usr/lib/postgresql/15/bin/initdb` finds `pg_ctl` and `postgres`
//!   next to it); else the newest `/usr/lib/postgresql/<ver>/bin` (Debian's
//!   `postgresql` package, not on `PATH`); else `/usr/pgsql-<ver>/bin` and
//!   `/usr/local/pgsql/bin`. Without any, the tests fail with instructions
//!   (set `DISTSOC_SKIP_PG_TESTS=1` to skip the PostgreSQL half instead).
//! * **Root.** `initdb` and `postgres` refuse to run as root. When the tests
//!   run as root, every PostgreSQL command runs as an unprivileged user —
//!   `$DISTSOC_PG_USER` if set, else `postgres` (created by Debian's
//!   package), else `nobody` — through `std::os::unix::process::CommandExt`
//!   (`setgid` + `setuid` in the child; std also clears the supplementary
//!   groups), and the cluster's temp directory is `chown`ed to that user.
//!   No user is created. As a normal user, commands run as that user.
//! * **Cluster.** `initdb --auth=trust --no-sync` into
//!   `$TMPDIR/distsoc-pg-<pid>-<tag>-<n>/data`; the server listens only on a
//!   unix socket in the same directory (`listen_addresses = ''`), with
//!   `fsync = off` (speed; commits stay synchronous). One cluster per test
//!   binary ([`shared`], a `OnceLock`), one database per test
//!   ([`Cluster::create_database`]); tests that stop the server get their
//!   own ([`Cluster::start`]).
//! * **Cleanup.** A watchdog shell (as the cluster user, ignoring
//!   INT/HUP/TERM) blocks reading a pipe whose write end only this process
//!   holds; when the test binary exits — normally, by panic or by
//!   `kill -9` — the pipe closes and the watchdog runs
//!   `pg_ctl stop -m immediate` and removes the directory. A dedicated
//!   cluster is also stopped and removed when dropped.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

/// Port number (only names the socket file: nothing listens on TCP).
pub const PORT: u16 = 5432;
/// The cluster's superuser.
pub const SUPERUSER: &str = "distsoc";

/// One throwaway cluster.
pub struct Cluster {
    base: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    bindir: PathBuf,
    run_as: Option<(u32, u32)>,
    watchdog: Mutex<Option<ChildStdin>>,
    watchdog_process: Mutex<Option<Child>>,
    next_db: AtomicU32,
    dedicated: bool,
}

/// Whether the PostgreSQL tests should be skipped (`DISTSOC_SKIP_PG_TESTS=1`).
pub fn skip() -> bool {
    std::env::var_os("DISTSOC_SKIP_PG_TESTS").is_some_and(|v| v == "1")
}

/// The cluster shared by every test of this binary.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| Cluster::init("shared", false))
}

impl Cluster {
    /// A dedicated cluster (for tests that stop and start the server);
    /// stopped and removed on drop.
    pub fn start(tag: &str) -> Cluster {
        Cluster::init(tag, true)
    }

    fn init(tag: &str, dedicated: bool) -> Cluster {
        static N: AtomicU32 = AtomicU32::new(0);
        let bindir = find_bindir();
        let run_as = unprivileged_user();
        let base = std::env::temp_dir().join(format!(
            "distsoc-pg-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&base);
        make_dir(&base, run_as);
        let data = base.join("data");
        let sock = base.join("sock");
        make_dir(&sock, run_as);
        let cluster = Cluster {
            base,
            data,
            sock,
            bindir,
            run_as,
            watchdog: Mutex::new(None),
            watchdog_process: Mutex::new(None),
            next_db: AtomicU32::new(0),
            dedicated,
        };
        cluster.spawn_watchdog();
        let data = cluster.data.clone();
        cluster.run(
            "initdb",
            [
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("-U"),
                OsStr::new(SUPERUSER),
                OsStr::new("--auth=trust"),
                OsStr::new("--encoding=UTF8"),
                OsStr::new("--locale=C"),
                OsStr::new("--no-sync"),
            ],
        );
        let conf = format!(
            "\n# distsoc test cluster\n\
             listen_addresses = ''\n\
             unix_socket_directories = '{}'\n\
             port = {PORT}\n\
             fsync = off\n\
             full_page_writes = off\n\
             synchronous_commit = on\n\
             max_connections = 300\n\
             shared_buffers = 32MB\n\
             max_wal_size = 256MB\n\
             logging_collector = off\n\
             log_min_messages = warning\n",
            cluster.sock.display()
        );
        let conf_path = cluster.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path).unwrap();
        text.push_str(&conf);
        std::fs::write(&conf_path, text).unwrap();
        cluster.start_server();
        cluster
    }

    /// A command for a PostgreSQL binary, as the cluster user.
    fn command(&self, prog: &str) -> Command {
        let mut c = Command::new(self.bindir.join(prog));
        c.current_dir(&self.base).env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::process::CommandExt;
            c.uid(uid).gid(gid);
        }
        c
    }

    fn run<I, S>(&self, prog: &str, args: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self
            .command(prog)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {prog}: {e}"));
        if !out.status.success() {
            let log = std::fs::read_to_string(self.base.join("server.log")).unwrap_or_default();
            panic!(
                "{prog} failed ({}):\n{}\n{}\nserver log:\n{log}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn spawn_watchdog(&self) {
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg(
                "trap '' INT HUP TERM; cat >/dev/null; \
                 \"$0\" -D \"$1\" stop -m immediate -w >/dev/null 2>&1; rm -rf \"$2\"",
            )
            .arg(self.bindir.join("pg_ctl"))
            .arg(&self.data)
            .arg(&self.base)
            .current_dir(&self.base)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::process::CommandExt;
            c.uid(uid).gid(gid);
        }
        let mut child = c.spawn().expect("spawning the cluster watchdog");
        *self.watchdog.lock().unwrap() = child.stdin.take();
        *self.watchdog_process.lock().unwrap() = Some(child);
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start_server(&self) {
        let data = self.data.clone();
        let log = self.base.join("server.log");
        self.run(
            "pg_ctl",
            [
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("-l"),
                log.as_os_str(),
                OsStr::new("-w"),
                OsStr::new("-t"),
                OsStr::new("60"),
                OsStr::new("start"),
            ],
        );
    }

    /// Stops the server (`-m fast`: disconnects clients, clean shutdown)
    /// and waits until it is down.
    pub fn stop_server(&self) {
        let data = self.data.clone();
        self.run(
            "pg_ctl",
            [
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("-w"),
                OsStr::new("-t"),
                OsStr::new("60"),
                OsStr::new("-m"),
                OsStr::new("fast"),
                OsStr::new("stop"),
            ],
        );
    }

    /// A libpq key=value connection string for database `db`.
    pub fn conninfo(&self, db: &str) -> String {
        format!(
            "host={} port={PORT} user={SUPERUSER} dbname={db}",
            self.sock.display()
        )
    }

    /// Creates a fresh database and returns its connection string.
    pub async fn create_database(&self) -> String {
        let name = format!("t{}", self.next_db.fetch_add(1, Ordering::SeqCst));
        let (client, conn) =
            tokio_postgres::connect(&self.conninfo("postgres"), tokio_postgres::NoTls)
                .await
                .expect("connecting to the test cluster");
        let driver = tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("CREATE DATABASE");
        drop(client);
        let _ = driver.await;
        self.conninfo(&name)
    }

    /// The cluster's directory.
    pub fn base(&self) -> &Path {
        &self.base
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.dedicated {
            return;
        }
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // The watchdog removes the directory once its pipe closes; wait for
        // it so a dropped cluster is gone.
        self.watchdog.lock().unwrap().take();
        if let Some(mut child) = self.watchdog_process.lock().unwrap().take() {
            let _ = child.wait();
        }
    }
}

fn make_dir(path: &Path, owner: Option<(u32, u32)>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|b| dir.join(b).is_file())
}

/// Where `initdb`, `pg_ctl` and `postgres` are (see the module docs).
pub fn find_bindir() -> PathBuf {
    if let Some(d) = std::env::var_os("DISTSOC_PG_BINDIR") {
        let d = PathBuf::from(d);
        assert!(
            has_server_binaries(&d),
            "DISTSOC_PG_BINDIR={} lacks initdb/pg_ctl/postgres",
            d.display()
        );
        return d;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if !initdb.is_file() {
                continue;
            }
            if let Some(real_dir) = std::fs::canonicalize(&initdb)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
            {
                if has_server_binaries(&real_dir) {
                    return real_dir;
                }
            }
            if has_server_binaries(&dir) {
                return dir;
            }
        }
    }
    let mut versioned: Vec<(u32, PathBuf)> = Vec::new();
    for (root, prefix) in [("/usr/lib/postgresql", ""), ("/usr", "pgsql-")] {
        let Ok(rd) = std::fs::read_dir(root) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(ver) = name.strip_prefix(prefix) else {
                continue;
            };
            let major = ver.split('.').next().and_then(|v| v.parse::<u32>().ok());
            let bin = e.path().join("bin");
            if let Some(major) = major {
                if has_server_binaries(&bin) {
                    versioned.push((major, bin));
                }
            }
        }
    }
    if let Some((_, bin)) = versioned.into_iter().max_by_key(|(v, _)| *v) {
        return bin;
    }
    let local = PathBuf::from("/usr/local/pgsql/bin");
    if has_server_binaries(&local) {
        return local;
    }
    panic!(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found. Install them \
         (Debian/Ubuntu: `apt-get install postgresql`; they land in \
         /usr/lib/postgresql/<ver>/bin) or set DISTSOC_PG_BINDIR; \
         DISTSOC_SKIP_PG_TESTS=1 skips the PostgreSQL tests."
    );
}

fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata("/proc/self") {
        return m.uid();
    }
    let out = Command::new("id")
        .arg("-u")
        .output()
        .expect("running id -u");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("parsing id -u")
}

/// `(uid, gid)` of a user from `/etc/passwd`.
fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4 && f[0] == name {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    })
}

/// The user PostgreSQL runs as when we are root (see the module docs);
/// `None` when we are not root.
fn unprivileged_user() -> Option<(u32, u32)> {
    if effective_uid() != 0 {
        return None;
    }
    let wanted = std::env::var("DISTSOC_PG_USER").ok();
    let candidates: Vec<String> = match wanted {
        Some(u) => vec![u],
        None => vec!["postgres".into(), "nobody".into()],
    };
    for name in &candidates {
        if let Some((uid, gid)) = lookup_user(name) {
            if uid != 0 {
                return Some((uid, gid));
            }
        }
    }
    panic!(
        "running as root and none of the users {candidates:?} exists to run PostgreSQL as; \
         create one (e.g. `useradd --system postgres`) or set DISTSOC_PG_USER"
    );
}
