//! Domain types of `schema/wire.capnp`: Hello, HelloResponse, Ack, Error.

use distsoc_schema::wire_capnp;

use super::common::{
    read_addresses, read_roles, write_addresses, write_roles, Role, SocketAddress,
};
use crate::codec::{self, len32, Struct, WireMessage};
use crate::codes::MessageCode;
use crate::error::{DecodeError, ErrorCode};
use crate::limits::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};

/// Most capability tokens in a Hello.
pub const MAX_CAPABILITIES: usize = 64;
/// Longest capability token, bytes.
pub const MAX_CAPABILITY_BYTES: usize = 64;
/// Longest agent string, bytes.
pub const MAX_AGENT_BYTES: usize = 128;
/// Longest error message, bytes.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 1024;

/// `Limits` a node advertises. Zero fields mean "protocol default".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest frame accepted for any code.
    pub max_frame_bytes: u32,
    /// Largest blob accepted.
    pub max_blob_bytes: u32,
    /// Largest mailbox payload accepted.
    pub max_mailbox_payload_bytes: u32,
    /// Most concurrent bidirectional streams allowed.
    pub max_concurrent_streams: u16,
    /// Most posts per PullSyncResponse.
    pub max_pull_batch: u16,
    /// Requests per second served per identity and per IP.
    pub rate_limit_per_second: u16,
    /// Longest FetchWait held, ms.
    pub max_fetch_wait_ms: u32,
    /// Mailbox retention, ms.
    pub mailbox_ttl_ms: u64,
}

impl Struct for Limits {
    type Schema = wire_capnp::limits::Owned;

    fn read(r: wire_capnp::limits::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            max_frame_bytes: r.get_max_frame_bytes(),
            max_blob_bytes: r.get_max_blob_bytes(),
            max_mailbox_payload_bytes: r.get_max_mailbox_payload_bytes(),
            max_concurrent_streams: r.get_max_concurrent_streams(),
            max_pull_batch: r.get_max_pull_batch(),
            rate_limit_per_second: r.get_rate_limit_per_second(),
            max_fetch_wait_ms: r.get_max_fetch_wait_ms(),
            mailbox_ttl_ms: r.get_mailbox_ttl_ms(),
        })
    }

    fn write(&self, mut b: wire_capnp::limits::Builder<'_>) {
        b.set_max_frame_bytes(self.max_frame_bytes);
        b.set_max_blob_bytes(self.max_blob_bytes);
        b.set_max_mailbox_payload_bytes(self.max_mailbox_payload_bytes);
        b.set_max_concurrent_streams(self.max_concurrent_streams);
        b.set_max_pull_batch(self.max_pull_batch);
        b.set_rate_limit_per_second(self.rate_limit_per_second);
        b.set_max_fetch_wait_ms(self.max_fetch_wait_ms);
        b.set_mailbox_ttl_ms(self.mailbox_ttl_ms);
    }
}

/// Code 0x00: the first request on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Version of this message (the sender's maximum).
    pub version: u16,
    /// Lowest version the sender speaks.
    pub min_version: u16,
    /// Highest version the sender speaks.
    pub max_version: u16,
    /// Roles played (empty = node).
    pub roles: Vec<Role>,
    /// Capability tokens, e.g. `mailbox/1`.
    pub capabilities: Vec<String>,
    /// Advertised limits.
    pub limits: Limits,
    /// Listen addresses.
    pub listen_addresses: Vec<SocketAddress>,
    /// Implementation name/version, diagnostics only.
    pub agent: String,
    /// Sender's wall clock, ms since epoch.
    pub time_ms: u64,
}

impl Hello {
    /// The version this peer and we should use, or `None` if the ranges do not
    /// overlap (answer `unsupportedVersion` and close).
    pub fn negotiate(&self) -> Option<u16> {
        negotiate(self.min_version, self.max_version)
    }
}

/// Highest version in both `[min, max]` and our own range.
pub fn negotiate(min: u16, max: u16) -> Option<u16> {
    let hi = max.min(PROTOCOL_VERSION);
    let lo = min.max(MIN_PROTOCOL_VERSION);
    (min <= max && lo <= hi).then_some(hi)
}

fn read_capabilities(
    l: capnp::Result<capnp::text_list::Reader<'_>>,
) -> Result<Vec<String>, DecodeError> {
    codec::text_list("capabilities", l, MAX_CAPABILITIES, MAX_CAPABILITY_BYTES)
}

fn write_texts(mut b: capnp::text_list::Builder<'_>, items: &[String]) {
    for (i, t) in items.iter().enumerate() {
        b.set(i as u32, t.as_str());
    }
}

fn read_limits(
    has: bool,
    r: capnp::Result<wire_capnp::limits::Reader<'_>>,
) -> Result<Limits, DecodeError> {
    if has {
        Limits::read(r?)
    } else {
        Ok(Limits::default())
    }
}

impl Struct for Hello {
    type Schema = wire_capnp::hello::Owned;

    fn read(r: wire_capnp::hello::Reader<'_>) -> Result<Self, DecodeError> {
        let min_version = r.get_min_version();
        let max_version = r.get_max_version();
        if min_version > max_version {
            return Err(DecodeError::Invalid {
                field: "minVersion",
                reason: "greater than maxVersion",
            });
        }
        Ok(Self {
            version: r.get_version(),
            min_version,
            max_version,
            roles: read_roles(r.get_roles())?,
            capabilities: read_capabilities(r.get_capabilities())?,
            limits: read_limits(r.has_limits(), r.get_limits())?,
            listen_addresses: read_addresses(r.get_listen_addresses())?,
            agent: codec::text("agent", r.get_agent(), MAX_AGENT_BYTES)?,
            time_ms: r.get_time_ms(),
        })
    }

    fn write(&self, mut b: wire_capnp::hello::Builder<'_>) {
        b.set_version(self.version);
        b.set_min_version(self.min_version);
        b.set_max_version(self.max_version);
        write_roles(b.reborrow().init_roles(len32(&self.roles)), &self.roles);
        write_texts(
            b.reborrow().init_capabilities(len32(&self.capabilities)),
            &self.capabilities,
        );
        self.limits.write(b.reborrow().init_limits());
        write_addresses(
            b.reborrow()
                .init_listen_addresses(len32(&self.listen_addresses)),
            &self.listen_addresses,
        );
        b.set_agent(self.agent.as_str());
        b.set_time_ms(self.time_ms);
    }
}

impl WireMessage for Hello {
    const CODE: MessageCode = MessageCode::Hello;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &wire_capnp::hello::Reader<'_>) -> u16 {
        // Hello is the negotiation itself: its `version` is the sender's
        // maximum and may exceed ours. The range check happens in `negotiate`.
        r.get_version()
            .clamp(MIN_PROTOCOL_VERSION, PROTOCOL_VERSION)
    }
}

/// Code 0x05 ("InitialExchange"): the answer to Hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloResponse {
    /// The selected version.
    pub version: u16,
    /// Lowest version the responder speaks.
    pub min_version: u16,
    /// Highest version the responder speaks.
    pub max_version: u16,
    /// Roles played.
    pub roles: Vec<Role>,
    /// Capability tokens.
    pub capabilities: Vec<String>,
    /// Advertised limits.
    pub limits: Limits,
    /// Listen addresses.
    pub listen_addresses: Vec<SocketAddress>,
    /// Where the responder sees the initiator's packets come from.
    pub observed_address: Option<SocketAddress>,
    /// Implementation name/version.
    pub agent: String,
    /// Responder's wall clock, ms since epoch.
    pub time_ms: u64,
}

impl Struct for HelloResponse {
    type Schema = wire_capnp::hello_response::Owned;

    fn read(r: wire_capnp::hello_response::Reader<'_>) -> Result<Self, DecodeError> {
        let min_version = r.get_min_version();
        let max_version = r.get_max_version();
        if min_version > max_version {
            return Err(DecodeError::Invalid {
                field: "minVersion",
                reason: "greater than maxVersion",
            });
        }
        Ok(Self {
            version: r.get_version(),
            min_version,
            max_version,
            roles: read_roles(r.get_roles())?,
            capabilities: read_capabilities(r.get_capabilities())?,
            limits: read_limits(r.has_limits(), r.get_limits())?,
            listen_addresses: read_addresses(r.get_listen_addresses())?,
            observed_address: if r.has_observed_address() {
                Some(SocketAddress::read(r.get_observed_address()?)?)
            } else {
                None
            },
            agent: codec::text("agent", r.get_agent(), MAX_AGENT_BYTES)?,
            time_ms: r.get_time_ms(),
        })
    }

    fn write(&self, mut b: wire_capnp::hello_response::Builder<'_>) {
        b.set_version(self.version);
        b.set_min_version(self.min_version);
        b.set_max_version(self.max_version);
        write_roles(b.reborrow().init_roles(len32(&self.roles)), &self.roles);
        write_texts(
            b.reborrow().init_capabilities(len32(&self.capabilities)),
            &self.capabilities,
        );
        self.limits.write(b.reborrow().init_limits());
        write_addresses(
            b.reborrow()
                .init_listen_addresses(len32(&self.listen_addresses)),
            &self.listen_addresses,
        );
        if let Some(a) = &self.observed_address {
            a.write(b.reborrow().init_observed_address());
        }
        b.set_agent(self.agent.as_str());
        b.set_time_ms(self.time_ms);
    }
}

impl WireMessage for HelloResponse {
    const CODE: MessageCode = MessageCode::HelloResponse;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &wire_capnp::hello_response::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Code 0x7E: a push on a bidirectional stream was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// Version of this message.
    pub version: u16,
    /// Code of the acknowledged push.
    pub request_code: u8,
}

impl Struct for Ack {
    type Schema = wire_capnp::ack::Owned;

    fn read(r: wire_capnp::ack::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            request_code: r.get_request_code(),
        })
    }

    fn write(&self, mut b: wire_capnp::ack::Builder<'_>) {
        b.set_version(self.version);
        b.set_request_code(self.request_code);
    }
}

impl WireMessage for Ack {
    const CODE: MessageCode = MessageCode::Ack;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &wire_capnp::ack::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Code 0x7F: a request or push was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Version of this message.
    pub version: u16,
    /// Why.
    pub code: ErrorCode,
    /// Detail for logs (at most 1024 bytes).
    pub message: String,
    /// Code of the refused request (0xFF if unknown).
    pub request_code: u8,
    /// When to retry, for `rateLimited` / `unavailable`.
    pub retry_after_ms: u32,
    /// For `unsupportedVersion`: our lowest version.
    pub min_version: u16,
    /// For `unsupportedVersion`: our highest version.
    pub max_version: u16,
}

impl Error {
    /// An error reply to a request with code `request_code`. The message is
    /// truncated to [`MAX_ERROR_MESSAGE_BYTES`] on a character boundary.
    pub fn new(code: ErrorCode, request_code: u8, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_ERROR_MESSAGE_BYTES {
            let mut cut = MAX_ERROR_MESSAGE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let (min_version, max_version) = if code == ErrorCode::UnsupportedVersion {
            (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION)
        } else {
            (0, 0)
        };
        Self {
            version: PROTOCOL_VERSION,
            code,
            message,
            request_code,
            retry_after_ms: 0,
            min_version,
            max_version,
        }
    }

    /// Sets `retry_after_ms`.
    pub fn with_retry_after(mut self, ms: u32) -> Self {
        self.retry_after_ms = ms;
        self
    }
}

impl Struct for Error {
    type Schema = wire_capnp::error::Owned;

    fn read(r: wire_capnp::error::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            // A newer peer may send a code we do not know: keep the reply usable.
            code: r
                .get_code()
                .map(ErrorCode::from_wire)
                .unwrap_or(ErrorCode::Unspecified),
            message: codec::text("message", r.get_message(), MAX_ERROR_MESSAGE_BYTES)?,
            request_code: r.get_request_code(),
            retry_after_ms: r.get_retry_after_ms(),
            min_version: r.get_min_version(),
            max_version: r.get_max_version(),
        })
    }

    fn write(&self, mut b: wire_capnp::error::Builder<'_>) {
        b.set_version(self.version);
        b.set_code(self.code.to_wire());
        b.set_message(self.message.as_str());
        b.set_request_code(self.request_code);
        b.set_retry_after_ms(self.retry_after_ms);
        b.set_min_version(self.min_version);
        b.set_max_version(self.max_version);
    }
}

impl WireMessage for Error {
    const CODE: MessageCode = MessageCode::Error;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &wire_capnp::error::Reader<'_>) -> u16 {
        // An Error about a version mismatch is itself readable at any version.
        r.get_version()
            .clamp(MIN_PROTOCOL_VERSION, PROTOCOL_VERSION)
    }
}
