//! What a case gets to work with: [`Ctx`] (the target, its declared
//! capabilities, the case's seeded RNG, timeouts, connection helpers) and
//! [`Session`] (a connection past the Hello exchange), plus request builders
//! over the normative schema and typed reply checks.
//!
//! A case returns an [`Outcome`] (pass or fail, with what the spec allows and
//! what the target did) or a [`CaseError`] when the suite itself could not
//! run it (verdict ERROR).

use std::net::SocketAddr;
use std::time::Duration;

use distsoc_schema::{
    common_capnp, discovery_capnp, files_capnp, mailbox_capnp, social_capnp, wire_capnp,
};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

use super::client::{self, ClientAuth, ClientError, Conn, ConnectOptions, Reply};
use super::frame::RawFrame;
use super::model::{Role, TargetInfo};
use super::wire::{self, code, ErrorReply, PROTOCOL_VERSION};

/// Largest reply the suite reads (the largest code cap plus a header).
pub const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024 + 4096;

/// Where the target is.
#[derive(Clone, Debug)]
pub struct Target {
    /// The NodeId the target must present.
    pub node_id: [u8; 32],
    /// Its UDP address.
    pub addr: SocketAddr,
}

/// Time bounds of a run.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// QUIC/TLS handshake.
    pub connect: Duration,
    /// A reply that is expected to come.
    pub reply: Duration,
    /// How long to wait when silence is the expected behaviour (a push on a
    /// unidirectional stream, a connection that must stay open).
    pub silence: Duration,
    /// How long to wait for a connection close the spec requires.
    pub close: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            reply: Duration::from_secs(5),
            silence: Duration::from_millis(400),
            close: Duration::from_secs(4),
        }
    }
}

/// The suite could not run the case (not a verdict on the target).
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// Connection or Hello setup failed where the case needed it.
    #[error("setup: {0}")]
    Setup(String),
    /// The target did not declare (or does not serve) an optional feature
    /// the case needs (verdict UNSUPPORTED).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The case needs state the suite cannot create on this target (verdict
    /// SKIPPED, with the reason).
    #[error("skipped: {0}")]
    Skipped(String),
}

impl From<ClientError> for CaseError {
    fn from(e: ClientError) -> Self {
        CaseError::Setup(e.to_string())
    }
}

/// What a case observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the target behaved as the spec requires.
    pub passed: bool,
    /// What the spec allows, in words.
    pub expected: String,
    /// What the target did, in words.
    pub actual: String,
}

impl Outcome {
    /// A pass.
    pub fn pass(expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Self {
            passed: true,
            expected: expected.into(),
            actual: actual.into(),
        }
    }

    /// A failure.
    pub fn fail(expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Self {
            passed: false,
            expected: expected.into(),
            actual: actual.into(),
        }
    }

    /// Pass iff `ok`.
    pub fn check(ok: bool, expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Self {
            passed: ok,
            expected: expected.into(),
            actual: actual.into(),
        }
    }

    /// Adds the connection-still-usable requirement: fails the outcome if
    /// `usable` is an error.
    #[must_use]
    pub fn and_usable(mut self, usable: Result<(), String>) -> Self {
        self.expected.push_str("; the connection stays usable");
        match usable {
            Ok(()) => self.actual.push_str("; connection still usable"),
            Err(why) => {
                self.passed = false;
                self.actual
                    .push_str(&format!("; connection NOT usable: {why}"));
            }
        }
        self
    }
}

/// What the target said in its HelloResponse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelloInfo {
    /// Selected version.
    pub version: u16,
    /// Responder's lowest version.
    pub min_version: u16,
    /// Responder's highest version.
    pub max_version: u16,
    /// Role ordinals.
    pub roles: Vec<u16>,
    /// Capability tokens.
    pub capabilities: Vec<String>,
    /// Agent string.
    pub agent: String,
    /// Agent length in bytes.
    pub agent_len: usize,
    /// `observedAddress`, if set and well formed.
    pub observed: Option<SocketAddr>,
    /// `limits`, with 0 (or absent) resolved to the protocol default.
    pub limits: Limits,
}

/// The `Limits` a HelloResponse announced (wire.capnp `Limits`), each field
/// resolved: 0 or an absent struct means the default written in its comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `maxFrameBytes` (default 16 MiB).
    pub max_frame_bytes: u32,
    /// `maxMailboxPayloadBytes` (default 5 MiB).
    pub max_mailbox_payload_bytes: u32,
    /// `rateLimitPerSecond` (default 50).
    pub rate_limit_per_second: u16,
    /// `maxFetchWaitMs` (default 60000).
    pub max_fetch_wait_ms: u32,
    /// `mailboxTtlMs` (default 7 days).
    pub mailbox_ttl_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 16 * 1024 * 1024,
            max_mailbox_payload_bytes: 5 * 1024 * 1024,
            rate_limit_per_second: 50,
            max_fetch_wait_ms: 60_000,
            mailbox_ttl_ms: 604_800_000,
        }
    }
}

impl Limits {
    fn read(r: wire_capnp::limits::Reader<'_>) -> Self {
        let d = Self::default();
        let or = |v: u32, default: u32| if v == 0 { default } else { v };
        Self {
            max_frame_bytes: or(r.get_max_frame_bytes(), d.max_frame_bytes),
            max_mailbox_payload_bytes: or(
                r.get_max_mailbox_payload_bytes(),
                d.max_mailbox_payload_bytes,
            ),
            rate_limit_per_second: match r.get_rate_limit_per_second() {
                0 => d.rate_limit_per_second,
                n => n,
            },
            max_fetch_wait_ms: or(r.get_max_fetch_wait_ms(), d.max_fetch_wait_ms),
            mailbox_ttl_ms: match r.get_mailbox_ttl_ms() {
                0 => d.mailbox_ttl_ms,
                n => n,
            },
        }
    }
}

impl HelloInfo {
    /// Reads a HelloResponse frame with the schema reader.
    pub fn read(frame: &RawFrame) -> Result<HelloInfo, String> {
        if frame.code != code::HELLO_RESPONSE {
            return Err(format!("code 0x{:02x} is not HelloResponse", frame.code));
        }
        frame.validate()?;
        let reader = frame.reader();
        let r: wire_capnp::hello_response::Reader<'_> =
            reader.get_root().map_err(|e| e.to_string())?;
        let mut roles = Vec::new();
        for role in r.get_roles().map_err(|e| e.to_string())?.iter() {
            roles.push(match role {
                Ok(role) => role as u16,
                Err(capnp::NotInSchema(n)) => n,
            });
        }
        let mut capabilities = Vec::new();
        for c in r.get_capabilities().map_err(|e| e.to_string())?.iter() {
            let c = c.map_err(|e| e.to_string())?;
            capabilities.push(String::from_utf8_lossy(c.as_bytes()).into_owned());
        }
        let agent = r.get_agent().map_err(|e| e.to_string())?;
        let observed = if r.has_observed_address() {
            let a = r.get_observed_address().map_err(|e| e.to_string())?;
            let ip = a.get_ip().map_err(|e| e.to_string())?;
            let ip: Option<std::net::IpAddr> = match ip.len() {
                4 => Some(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).into()),
                16 => <[u8; 16]>::try_from(ip)
                    .ok()
                    .map(|b| std::net::Ipv6Addr::from(b).into()),
                _ => None,
            };
            ip.map(|ip| SocketAddr::new(ip, a.get_port()))
        } else {
            None
        };
        Ok(HelloInfo {
            version: r.get_version(),
            min_version: r.get_min_version(),
            max_version: r.get_max_version(),
            roles,
            capabilities,
            agent: String::from_utf8_lossy(agent.as_bytes()).into_owned(),
            agent_len: agent.as_bytes().len(),
            observed,
            limits: if r.has_limits() {
                Limits::read(r.get_limits().map_err(|e| e.to_string())?)
            } else {
                Limits::default()
            },
        })
    }
}

/// A Hello to send.
#[derive(Clone, Debug)]
pub struct HelloSpec {
    /// `version`.
    pub version: u16,
    /// `minVersion`.
    pub min_version: u16,
    /// `maxVersion`.
    pub max_version: u16,
    /// Roles (ordinals; unknown ones allowed).
    pub roles: Vec<u16>,
    /// Capability tokens.
    pub capabilities: Vec<String>,
}

impl Default for HelloSpec {
    fn default() -> Self {
        Self {
            version: PROTOCOL_VERSION,
            min_version: PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            roles: vec![0],
            capabilities: Vec::new(),
        }
    }
}

impl HelloSpec {
    /// The Hello frame, built with the schema builder.
    #[must_use]
    pub fn frame(&self) -> Vec<u8> {
        let known = self.roles.iter().all(|&r| r <= 1);
        let roles = self.roles.clone();
        let mut frame = wire::build::<wire_capnp::hello::Owned, _>(code::HELLO, |mut b| {
            b.set_version(self.version);
            b.set_min_version(self.min_version);
            b.set_max_version(self.max_version);
            {
                let mut l = b.reborrow().init_roles(roles.len() as u32);
                for (i, &r) in roles.iter().enumerate() {
                    l.set(
                        i as u32,
                        if r == 1 {
                            common_capnp::Role::Anchor
                        } else {
                            common_capnp::Role::Node
                        },
                    );
                }
            }
            {
                let mut l = b
                    .reborrow()
                    .init_capabilities(self.capabilities.len() as u32);
                for (i, c) in self.capabilities.iter().enumerate() {
                    l.set(i as u32, c.as_str());
                }
            }
            b.set_agent(concat!("distsoc-conformance/", env!("CARGO_PKG_VERSION")));
            b.set_time_ms(now_ms());
        });
        if !known {
            // Patch the enum list in place with the raw ordinals.
            if let Some(words) = wire::single_segment_words(&frame) {
                if let Some(patched) = patch_u16_list(&words, 0, &roles) {
                    frame = wire::single(code::HELLO, &patched);
                }
            }
        }
        frame
    }
}

/// Overwrites the elements of the 16-bit list that pointer `ptr` of the
/// root struct points to.
fn patch_u16_list(words: &[u64], ptr: usize, values: &[u16]) -> Option<Vec<u64>> {
    let (data, _, _) = wire::split_root(words)?;
    let at = 1 + data.len() + ptr;
    let p = *words.get(at)?;
    let offset = ((p as u32) as i32) >> 2;
    let start = usize::try_from(at as i64 + 1 + i64::from(offset)).ok()?;
    let mut out = words.to_vec();
    for (i, v) in values.iter().enumerate() {
        let w = out.get_mut(start + i / 4)?;
        let shift = 16 * (i % 4);
        *w = (*w & !(0xffff_u64 << shift)) | (u64::from(*v) << shift);
    }
    Some(out)
}

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

// ---- request builders (schema builders) -------------------------------------

/// Request frames built with the normative schema's builders.
pub mod req {
    use super::*;

    /// ListChannels { version }.
    #[must_use]
    pub fn list_channels(version: u16) -> Vec<u8> {
        wire::build::<mailbox_capnp::list_channels::Owned, _>(code::LIST_CHANNELS, |mut b| {
            b.set_version(version)
        })
    }

    /// CreateChannel { version, peer }.
    #[must_use]
    pub fn create_channel(version: u16, peer: &[u8]) -> Vec<u8> {
        wire::build::<mailbox_capnp::create_channel::Owned, _>(code::CREATE_CHANNEL, |mut b| {
            b.set_version(version);
            b.set_peer(peer);
        })
    }

    /// Enqueue { version, channelId, recipient, payload }.
    #[must_use]
    pub fn enqueue(
        version: u16,
        channel: Option<&[u8]>,
        recipient: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        wire::build::<mailbox_capnp::enqueue::Owned, _>(code::ENQUEUE, |mut b| {
            b.set_version(version);
            if let Some(c) = channel {
                b.set_channel_id(c);
            }
            b.set_recipient(recipient);
            b.set_payload(payload);
        })
    }

    /// Fetch { version, channelId, ackThrough }.
    #[must_use]
    pub fn fetch(version: u16, channel: Option<&[u8]>, ack_through: u64) -> Vec<u8> {
        wire::build::<mailbox_capnp::fetch::Owned, _>(code::FETCH, |mut b| {
            b.set_version(version);
            if let Some(c) = channel {
                b.set_channel_id(c);
            }
            b.set_ack_through(ack_through);
        })
    }

    /// FetchWait { version, timeoutMs }.
    #[must_use]
    pub fn fetch_wait(version: u16, channel: Option<&[u8]>, timeout_ms: u32) -> Vec<u8> {
        wire::build::<mailbox_capnp::fetch_wait::Owned, _>(code::FETCH_WAIT, |mut b| {
            b.set_version(version);
            if let Some(c) = channel {
                b.set_channel_id(c);
            }
            b.set_timeout_ms(timeout_ms);
        })
    }

    /// PullSyncRequest { version, ids, limit }.
    #[must_use]
    pub fn pull_sync(version: u16, ids: &[[u8; 32]], limit: u16) -> Vec<u8> {
        wire::build::<social_capnp::pull_sync_request::Owned, _>(
            code::PULL_SYNC_REQUEST,
            |mut b| {
                b.set_version(version);
                b.set_limit(limit);
                let mut l = b.init_ids(ids.len() as u32);
                for (i, id) in ids.iter().enumerate() {
                    l.set(i as u32, id);
                }
            },
        )
    }

    /// BootstrapRequest { version, want }.
    #[must_use]
    pub fn bootstrap(version: u16, want: u16) -> Vec<u8> {
        wire::build::<discovery_capnp::bootstrap_request::Owned, _>(
            code::BOOTSTRAP_REQUEST,
            |mut b| {
                b.set_version(version);
                b.set_want(want);
            },
        )
    }

    /// AddressRequest { version, targets }.
    #[must_use]
    pub fn address(version: u16, targets: &[[u8; 32]]) -> Vec<u8> {
        wire::build::<discovery_capnp::address_request::Owned, _>(code::ADDRESS_REQUEST, |mut b| {
            b.set_version(version);
            let mut l = b.init_targets(targets.len() as u32);
            for (i, id) in targets.iter().enumerate() {
                l.set(i as u32, id);
            }
        })
    }

    /// FileRequest { version, post }.
    #[must_use]
    pub fn file_post(version: u16, post: &[u8]) -> Vec<u8> {
        wire::build::<files_capnp::file_request::Owned, _>(code::FILE_REQUEST, |mut b| {
            b.set_version(version);
            b.set_post(post);
        })
    }

    /// AuthorUpdateRequest { version, author, haveSeq }.
    #[must_use]
    pub fn author_update(version: u16, author: &[u8], have_seq: u64) -> Vec<u8> {
        wire::build::<files_capnp::author_update_request::Owned, _>(
            code::AUTHOR_UPDATE_REQUEST,
            |mut b| {
                b.set_version(version);
                b.set_author(author);
                b.set_have_seq(have_seq);
            },
        )
    }

    /// PostNotification { version, author, postId, hint = public } (a push).
    #[must_use]
    pub fn post_notification(version: u16, author: &[u8], post_id: &[u8]) -> Vec<u8> {
        wire::build::<files_capnp::post_notification::Owned, _>(code::POST_NOTIFICATION, |mut b| {
            b.set_version(version);
            b.set_author(author);
            b.set_post_id(post_id);
            b.set_hint(common_capnp::VisibilityHint::Public);
        })
    }
}

/// A request the target always serves in its role, and its response code.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The request frame.
    pub frame: Vec<u8>,
    /// Its code.
    pub code: u8,
    /// The code of a successful reply.
    pub response: u8,
    /// What it is, for reports.
    pub name: &'static str,
}

// ---- reply checks -----------------------------------------------------------

/// The reply as one well-formed frame (the suite's own reader + a full walk).
pub fn reply_frame(reply: &Reply) -> Result<RawFrame, String> {
    match reply {
        Reply::Finished(bytes) => {
            let f = RawFrame::parse(bytes).map_err(|e| format!("reply is not one frame: {e}"))?;
            f.validate()
                .map_err(|e| format!("reply frame 0x{:02x} does not walk: {e}", f.code))?;
            Ok(f)
        }
        other => Err(other.to_string()),
    }
}

/// The reply must be an `Error` whose code is one of `allowed`.
pub fn expect_error(reply: &Reply, allowed: &[&str]) -> Result<ErrorReply, String> {
    let frame = reply_frame(reply)?;
    if frame.code != code::ERROR {
        return Err(format!(
            "a frame with code 0x{:02x} instead of Error",
            frame.code
        ));
    }
    let e = frame.error()?;
    if allowed.iter().any(|a| e.is(a)) {
        Ok(e)
    } else {
        Err(format!("{e}"))
    }
}

/// The reply must be a frame with code `want` whose root reads as `T`.
pub fn expect_code(reply: &Reply, want: u8) -> Result<RawFrame, String> {
    let frame = reply_frame(reply)?;
    if frame.code == want {
        frame.version()?;
        Ok(frame)
    } else if frame.code == code::ERROR {
        Err(frame.error().map_or_else(|e| e, |e| e.to_string()))
    } else {
        Err(format!(
            "a frame with code 0x{:02x} instead of 0x{want:02x}",
            frame.code
        ))
    }
}

/// "Error(a|b)" for reports.
#[must_use]
pub fn error_words(allowed: &[&str]) -> String {
    format!("Error({})", allowed.join(" or "))
}

// ---- Ctx and Session ------------------------------------------------------------

/// Everything a case runs with.
#[derive(Debug)]
pub struct Ctx {
    /// The target.
    pub target: Target,
    /// Role under test.
    pub role: Role,
    /// What the target declared in the discovery Hello exchange.
    pub info: TargetInfo,
    /// Time bounds.
    pub timeouts: Timeouts,
    rng: ChaCha20Rng,
}

/// A connection past a successful Hello exchange.
#[derive(Debug)]
pub struct Session {
    /// The connection.
    pub conn: Conn,
    /// The HelloResponse.
    pub hello: HelloInfo,
    /// The client key's public half (the NodeId the target sees).
    pub client_id: [u8; 32],
    timeouts: Timeouts,
}

impl Ctx {
    /// A context for one case.
    #[must_use]
    pub fn new(
        target: Target,
        role: Role,
        info: TargetInfo,
        timeouts: Timeouts,
        rng: ChaCha20Rng,
    ) -> Self {
        Self {
            target,
            role,
            info,
            timeouts,
            rng,
        }
    }

    /// The case's RNG (seeded from the run seed and the case id).
    pub fn rng(&mut self) -> &mut ChaCha20Rng {
        &mut self.rng
    }

    /// 32 random bytes from the case's RNG.
    pub fn random32(&mut self) -> [u8; 32] {
        let mut b = [0; 32];
        self.rng.fill_bytes(&mut b);
        b
    }

    /// A random valid NodeId: the Ed25519 public key of a random seed (a
    /// canonical point of large order, as a `CreateChannel` peer must be).
    pub fn random_node_id(&mut self) -> [u8; 32] {
        distsoc_protocol::sign::SigningKey::from_seed(&self.random32()).public()
    }

    /// Whether the target declared `capability` in its HelloResponse.
    #[must_use]
    pub fn has_capability(&self, capability: &str) -> bool {
        self.info.capabilities.iter().any(|c| c == capability)
    }

    /// Default options: ALPN `distsoc/2`, a fresh Ed25519 client key.
    pub fn options(&mut self) -> ConnectOptions {
        ConnectOptions {
            alpn: vec![client::ALPN.to_vec()],
            auth: ClientAuth::Key(self.random32()),
            timeout: self.timeouts.connect,
        }
    }

    /// A QUIC connection with `opts`, no Hello sent.
    pub async fn connect_raw(&mut self, opts: &ConnectOptions) -> Result<Conn, ClientError> {
        client::connect(self.target.addr, opts).await
    }

    /// A connection with a fresh client key whose server key was checked
    /// against the NodeId; no Hello sent.
    pub async fn connect_pinned(&mut self) -> Result<(Conn, [u8; 32]), CaseError> {
        let seed = self.random32();
        self.connect_pinned_as(seed).await
    }

    /// Like [`Ctx::connect_pinned`], with the client key of Ed25519 seed
    /// `seed` (a fixed identity across connections: channel members, a
    /// returning recipient).
    pub async fn connect_pinned_as(
        &mut self,
        seed: [u8; 32],
    ) -> Result<(Conn, [u8; 32]), CaseError> {
        let opts = ConnectOptions {
            auth: ClientAuth::Key(seed),
            ..self.options()
        };
        let conn = self.connect_raw(&opts).await?;
        if conn.presented != Some(self.target.node_id) {
            return Err(CaseError::Setup(format!(
                "the server presented key {} instead of the NodeId {}",
                conn.presented.map_or_else(|| "none".into(), hex::encode),
                hex::encode(self.target.node_id)
            )));
        }
        let public = distsoc_protocol::sign::SigningKey::from_seed(&seed).public();
        Ok((conn, public))
    }

    /// A connection and a Hello exchange with the default Hello.
    pub async fn connect(&mut self) -> Result<Session, CaseError> {
        self.connect_with(&HelloSpec::default().frame()).await
    }

    /// A connection and a Hello exchange with the default Hello, as the
    /// identity of Ed25519 seed `seed` (the NodeId is
    /// [`Session::client_id`]). Our transport keeps one connection per
    /// identity: a second connection with the same key may close the first.
    pub async fn connect_as(&mut self, seed: [u8; 32]) -> Result<Session, CaseError> {
        let (conn, client_id) = self.connect_pinned_as(seed).await?;
        self.hello_on(conn, client_id, &HelloSpec::default().frame())
            .await
    }

    /// A connection and a Hello exchange with the default Hello and a fresh
    /// client key, from local IP `source` (e.g. `127.0.0.2` on loopback: a
    /// caller at another IP address).
    pub async fn connect_from(&mut self, source: std::net::IpAddr) -> Result<Session, CaseError> {
        let seed = self.random32();
        let opts = ConnectOptions {
            auth: ClientAuth::Key(seed),
            ..self.options()
        };
        let conn = client::connect_from(self.target.addr, &opts, Some(source)).await?;
        if conn.presented != Some(self.target.node_id) {
            return Err(CaseError::Setup(
                "the server did not present its NodeId".into(),
            ));
        }
        let public = distsoc_protocol::sign::SigningKey::from_seed(&seed).public();
        self.hello_on(conn, public, &HelloSpec::default().frame())
            .await
    }

    /// A connection and a Hello exchange with this Hello frame; the reply
    /// must be a HelloResponse.
    pub async fn connect_with(&mut self, hello: &[u8]) -> Result<Session, CaseError> {
        let (conn, client_id) = self.connect_pinned().await?;
        self.hello_on(conn, client_id, hello).await
    }

    /// A connection and a Hello exchange with `hello`, as the identity of
    /// Ed25519 seed `seed` (e.g. one that also listens with that key).
    pub async fn connect_as_with(
        &mut self,
        seed: [u8; 32],
        hello: &[u8],
    ) -> Result<Session, CaseError> {
        let (conn, client_id) = self.connect_pinned_as(seed).await?;
        self.hello_on(conn, client_id, hello).await
    }

    async fn hello_on(
        &mut self,
        conn: Conn,
        client_id: [u8; 32],
        hello: &[u8],
    ) -> Result<Session, CaseError> {
        let reply = conn
            .exchange(hello, MAX_REPLY_BYTES, self.timeouts.reply)
            .await;
        let frame = expect_code(&reply, code::HELLO_RESPONSE)
            .map_err(|e| CaseError::Setup(format!("Hello refused: {e}")))?;
        let hello = HelloInfo::read(&frame)
            .map_err(|e| CaseError::Setup(format!("bad HelloResponse: {e}")))?;
        Ok(Session {
            conn,
            hello,
            client_id,
            timeouts: self.timeouts,
        })
    }

    /// The probe request for this target: ListChannels (anchor with
    /// `mailbox/1`), else PullSyncRequest (`pull-sync/1`), else a
    /// PostNotification push on a bidirectional stream (answered `Ack`).
    pub fn probe(&mut self) -> Probe {
        if self.role == Role::Anchor && self.has_capability("mailbox/1") {
            Probe {
                frame: req::list_channels(PROTOCOL_VERSION),
                code: code::LIST_CHANNELS,
                response: code::LIST_CHANNELS_RESPONSE,
                name: "ListChannels",
            }
        } else if self.has_capability("pull-sync/1") {
            Probe {
                frame: req::pull_sync(PROTOCOL_VERSION, &[], 1),
                code: code::PULL_SYNC_REQUEST,
                response: code::PULL_SYNC_RESPONSE,
                name: "PullSyncRequest",
            }
        } else {
            let (a, p) = (self.random32(), self.random32());
            Probe {
                frame: req::post_notification(PROTOCOL_VERSION, &a, &p),
                code: code::POST_NOTIFICATION,
                response: code::ACK,
                name: "PostNotification on a bidirectional stream",
            }
        }
    }

    /// The connection still serves: a fresh stream with the probe request
    /// gets its normal reply.
    pub async fn still_usable(&mut self, s: &Session) -> Result<(), String> {
        let probe = self.probe();
        let reply = s.request(&probe.frame).await;
        expect_code(&reply, probe.response)
            .map(|_| ())
            .map_err(|e| format!("{} got {e}", probe.name))
    }
}

impl Session {
    /// One raw exchange on a new bidirectional stream (no retry).
    pub async fn exchange(&self, bytes: &[u8]) -> Reply {
        self.conn
            .exchange(bytes, MAX_REPLY_BYTES, self.timeouts.reply)
            .await
    }

    /// A request on a new bidirectional stream; an `Error(rateLimited)` is
    /// retried after its `retryAfterMs` (at most 1 s each, 10 times), so a
    /// rate limit never decides a case that is not about rate limits.
    pub async fn request(&self, bytes: &[u8]) -> Reply {
        let mut reply = self.exchange(bytes).await;
        for _ in 0..10 {
            match expect_error(&reply, &["rateLimited"]) {
                Ok(e) => {
                    let wait = u64::from(e.retry_after_ms).clamp(20, 1000);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    reply = self.exchange(bytes).await;
                }
                Err(_) => break,
            }
        }
        reply
    }

    /// Time bounds.
    #[must_use]
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }
}
