//! The suite's own small QUIC client (quinn + rustls with *ring*).
//!
//! Unlike the node's transport it never refuses to go on: it chooses its
//! ALPN list, presents the client certificate it is told to (its own
//! Ed25519 key, a non-Ed25519 certificate, garbage, or none), records the
//! key the server presented instead of enforcing a pin (the caller compares
//! it with the expected NodeId), and exposes raw streams: write any bytes,
//! finish, read the whole reply bounded in size and time, observe resets
//! and the connection's close code.
//!
//! TLS pieces shared with the node: [`distsoc_net::transport::tls`]'s
//! certificate builder ([`Identity`]), PKCS#8 layout and certificate key
//! extraction.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use distsoc_net::transport::tls::{ed25519_pkcs8, node_id_from_certificate, Identity};
use distsoc_protocol::sign::SigningKey;

use super::model::Direction;
use super::trace::{self, Trace};
use quinn::crypto::rustls::{HandshakeData, QuicClientConfig};
use quinn::VarInt;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::{verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The one ALPN of distsoc.
pub const ALPN: &[u8] = b"distsoc/2";

/// Why the client could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Local setup failed (socket, TLS configuration, certificate).
    #[error("client setup failed: {0}")]
    Setup(String),
    /// The QUIC/TLS handshake failed.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The handshake did not complete in time.
    #[error("handshake timed out after {0:?}")]
    Timeout(Duration),
    /// The connection was lost while opening a stream.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
}

/// Which client certificate to present.
#[derive(Clone)]
pub enum ClientAuth {
    /// A self-signed certificate of this Ed25519 seed (the normal case).
    Key([u8; 32]),
    /// No client certificate at all.
    None,
    /// This certificate DER, with the handshake signed by the Ed25519 key of
    /// this seed (a certificate that does not match, is not Ed25519, or is
    /// not DER at all).
    Forged {
        /// Certificate chain's only element.
        cert: Vec<u8>,
        /// Seed of the key that signs CertificateVerify.
        seed: [u8; 32],
    },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::Key(_) => f.write_str("Key(..)"),
            ClientAuth::None => f.write_str("None"),
            ClientAuth::Forged { cert, .. } => write!(f, "Forged({} bytes)", cert.len()),
        }
    }
}

/// How to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// ALPN protocols offered, in order.
    pub alpn: Vec<Vec<u8>>,
    /// Client certificate.
    pub auth: ClientAuth,
    /// Bound of the handshake.
    pub timeout: Duration,
}

/// A completed QUIC connection.
#[derive(Debug)]
pub struct Conn {
    conn: quinn::Connection,
    endpoint: quinn::Endpoint,
    /// The Ed25519 key the server presented.
    pub presented: Option<[u8; 32]>,
    /// The ALPN protocol negotiated.
    pub alpn: Option<Vec<u8>>,
    /// The case's frame log and this connection's number in it.
    trace: Option<(Trace, u32)>,
}

/// How a reply stream ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The peer sent these bytes and finished its side cleanly.
    Finished(Vec<u8>),
    /// The peer reset its send side (RESET_STREAM) with this code.
    Reset(u64),
    /// The stream did not finish within the bound.
    Timeout,
    /// The reply exceeded the size bound.
    TooLong,
    /// The connection was closed (the reason, as text).
    ConnectionLost(String),
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Finished(b) if b.is_empty() => f.write_str("an empty reply"),
            Reply::Finished(b) => match crate::suite::frame::RawFrame::parse(b) {
                Ok(frame) if frame.code == crate::suite::wire::code::ERROR => match frame.error() {
                    Ok(e) => write!(f, "{e}"),
                    Err(e) => write!(f, "an undecodable Error frame ({e})"),
                },
                Ok(frame) => write!(f, "a frame with code 0x{:02x}", frame.code),
                Err(e) => write!(f, "{} bytes that are not one frame ({e})", b.len()),
            },
            Reply::Reset(code) => write!(f, "a stream reset (code {code})"),
            Reply::Timeout => f.write_str("no reply in time"),
            Reply::TooLong => f.write_str("a reply over the size bound"),
            Reply::ConnectionLost(why) => write!(f, "the connection closed ({why})"),
        }
    }
}

/// How the connection closed, as observed by the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Closed {
    /// The peer closed with an application error code.
    Application(u64, String),
    /// The peer closed with a QUIC transport error.
    Transport(String),
    /// Anything else (idle timeout, reset, local).
    Other(String),
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Closed::Application(code, why) => write!(f, "application close 0x{code:x} ({why})"),
            Closed::Transport(e) => write!(f, "transport close ({e})"),
            Closed::Other(e) => f.write_str(e),
        }
    }
}

fn closed_of(e: &quinn::ConnectionError) -> Closed {
    match e {
        quinn::ConnectionError::ApplicationClosed(c) => Closed::Application(
            c.error_code.into_inner(),
            String::from_utf8_lossy(&c.reason).into_owned(),
        ),
        quinn::ConnectionError::ConnectionClosed(c) => Closed::Transport(c.to_string()),
        other => Closed::Other(other.to_string()),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Records the server's key; accepts any well-formed Ed25519 certificate
/// and checks the handshake signature (so the server proves the key).
#[derive(Debug)]
struct RecordingVerifier {
    presented: Arc<Mutex<Option<[u8; 32]>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let key = node_id_from_certificate(end_entity.as_ref()).map_err(|e| {
            rustls::Error::General(format!(
                "server certificate is not a distsoc certificate: {e}"
            ))
        })?;
        if let Ok(mut slot) = self.presented.lock() {
            *slot = Some(key.0);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not allowed".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(rustls::Error::General(format!(
                "server signed with {:?}, not Ed25519",
                dss.scheme
            )));
        }
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Always presents one certificate, whatever the server asks for.
#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl ResolvesClientCert for FixedCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn certified(
    cert: Vec<u8>,
    seed: &[u8; 32],
    p: &CryptoProvider,
) -> Result<CertifiedKey, ClientError> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ed25519_pkcs8(seed).to_vec()));
    let key = p
        .key_provider
        .load_private_key(der)
        .map_err(|e| ClientError::Setup(e.to_string()))?;
    Ok(CertifiedKey::new(vec![CertificateDer::from(cert)], key))
}

/// The self-signed certificate of an Ed25519 seed, as the node builds it.
pub fn ed25519_certificate(seed: &[u8; 32]) -> Result<Vec<u8>, ClientError> {
    let identity = Identity::new(&SigningKey::from_seed(seed))
        .map_err(|e| ClientError::Setup(e.to_string()))?;
    Ok(identity.certificate().as_ref().to_vec())
}

/// A self-signed ECDSA P-256 certificate (not a distsoc certificate).
pub fn ecdsa_certificate() -> Result<Vec<u8>, ClientError> {
    let setup = |e: rcgen::Error| ClientError::Setup(e.to_string());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(setup)?;
    let params = rcgen::CertificateParams::new(vec!["distsoc".to_string()]).map_err(setup)?;
    Ok(params.self_signed(&key).map_err(setup)?.der().to_vec())
}

fn tls_config(
    opts: &ConnectOptions,
    presented: Arc<Mutex<Option<[u8; 32]>>>,
) -> Result<rustls::ClientConfig, ClientError> {
    let p = provider();
    let verifier = Arc::new(RecordingVerifier {
        presented,
        provider: p.clone(),
    });
    let builder = rustls::ClientConfig::builder_with_provider(p.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ClientError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match &opts.auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Key(seed) => {
            let cert = ed25519_certificate(seed)?;
            builder.with_client_cert_resolver(Arc::new(FixedCert(Arc::new(certified(
                cert, seed, &p,
            )?))))
        }
        ClientAuth::Forged { cert, seed } => builder.with_client_cert_resolver(Arc::new(
            FixedCert(Arc::new(certified(cert.clone(), seed, &p)?)),
        )),
    };
    config.alpn_protocols = opts.alpn.clone();
    config.enable_early_data = false;
    Ok(config)
}

/// Connects to `addr`.
pub async fn connect(addr: SocketAddr, opts: &ConnectOptions) -> Result<Conn, ClientError> {
    connect_from(addr, opts, None).await
}

/// Connects to `addr` from local address `source` (port 0 = any), or from
/// the default local address (`None`): a second source IP on loopback
/// (`127.0.0.2`) lets a case act as another IP address.
pub async fn connect_from(
    addr: SocketAddr,
    opts: &ConnectOptions,
    source: Option<std::net::IpAddr>,
) -> Result<Conn, ClientError> {
    let presented = Arc::new(Mutex::new(None));
    let tls = tls_config(opts, presented.clone())?;
    let quic = QuicClientConfig::try_from(tls).map_err(|e| ClientError::Setup(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(Duration::from_secs(30))
                .map_err(|e| ClientError::Setup(e.to_string()))?,
        ))
        // The dialer keeps its connections alive (schema/README.md §1).
        .keep_alive_interval(Some(Duration::from_secs(10)))
        .max_concurrent_bidi_streams(VarInt::from_u32(16))
        .max_concurrent_uni_streams(VarInt::from_u32(16));
    config.transport_config(Arc::new(transport));
    let bind: SocketAddr = if addr.is_ipv4() {
        SocketAddr::from(([127, 0, 0, 1], 0))
    } else {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    };
    let bind = if addr.ip().is_loopback() {
        bind
    } else if addr.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        bind
    };
    let bind = source.map_or(bind, |ip| SocketAddr::new(ip, 0));
    let endpoint =
        quinn::Endpoint::client(bind).map_err(|e| ClientError::Setup(format!("bind: {e}")))?;
    let connecting = endpoint
        .connect_with(config, addr, "distsoc")
        .map_err(|e| ClientError::Setup(e.to_string()))?;
    let conn = match tokio::time::timeout(opts.timeout, connecting).await {
        Err(_) => return Err(ClientError::Timeout(opts.timeout)),
        Ok(Err(e)) => return Err(ClientError::Handshake(e.to_string())),
        Ok(Ok(conn)) => conn,
    };
    let alpn = conn
        .handshake_data()
        .and_then(|d| d.downcast::<HandshakeData>().ok())
        .and_then(|d| d.protocol);
    let presented = presented.lock().ok().and_then(|k| *k);
    let trace = Trace::current().map(|t| {
        let n = t.next_conn();
        (t, n)
    });
    Ok(Conn {
        conn,
        endpoint,
        presented,
        alpn,
        trace,
    })
}

/// Reads a whole stream direction, bounded in size and time, and records
/// it in the current case's frame log ([`trace`]).
pub async fn read_reply(recv: &mut quinn::RecvStream, max: usize, timeout: Duration) -> Reply {
    read_reply_on(recv, max, timeout, None).await
}

/// [`read_reply`], recorded as on the case's connection number `conn`
/// ([`Conn::number`]).
pub async fn read_reply_on(
    recv: &mut quinn::RecvStream,
    max: usize,
    timeout: Duration,
    conn: Option<u32>,
) -> Reply {
    let reply = read_reply_raw(recv, max, timeout).await;
    record_reply(conn, Some(recv.id().into()), &reply);
    reply
}

fn record_reply(conn: Option<u32>, stream: Option<u64>, reply: &Reply) {
    match reply {
        Reply::Finished(bytes) => trace::record(Direction::Received, conn, stream, bytes, None),
        other => trace::record(
            Direction::Received,
            conn,
            stream,
            &[],
            Some(other.to_string()),
        ),
    }
}

async fn read_reply_raw(recv: &mut quinn::RecvStream, max: usize, timeout: Duration) -> Reply {
    match tokio::time::timeout(timeout, recv.read_to_end(max)).await {
        Err(_) => Reply::Timeout,
        Ok(Ok(bytes)) => Reply::Finished(bytes),
        Ok(Err(quinn::ReadToEndError::TooLong)) => Reply::TooLong,
        Ok(Err(quinn::ReadToEndError::Read(e))) => match e {
            quinn::ReadError::Reset(code) => Reply::Reset(code.into_inner()),
            quinn::ReadError::ConnectionLost(e) => Reply::ConnectionLost(closed_of(&e).to_string()),
            other => Reply::ConnectionLost(other.to_string()),
        },
    }
}

/// Writes `bytes` (ignoring a STOP_SENDING from the peer, which may refuse a
/// frame before reading all of it) and optionally finishes the stream; the
/// bytes are recorded in the current case's frame log ([`trace`]).
pub async fn write_all(
    send: &mut quinn::SendStream,
    bytes: &[u8],
    finish: bool,
) -> Result<(), String> {
    write_all_on(send, bytes, finish, None).await
}

/// [`write_all`], recorded as on the case's connection number `conn`
/// ([`Conn::number`]).
pub async fn write_all_on(
    send: &mut quinn::SendStream,
    bytes: &[u8],
    finish: bool,
    conn: Option<u32>,
) -> Result<(), String> {
    trace::record(Direction::Sent, conn, Some(send.id().into()), bytes, None);
    write_all_raw(send, bytes, finish).await
}

async fn write_all_raw(
    send: &mut quinn::SendStream,
    bytes: &[u8],
    finish: bool,
) -> Result<(), String> {
    match send.write_all(bytes).await {
        Ok(()) => {}
        Err(quinn::WriteError::Stopped(_)) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    }
    if finish {
        let _ = send.finish();
    }
    Ok(())
}

impl Conn {
    /// The client's local address (as the target should observe it on
    /// loopback).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.endpoint.local_addr().ok()
    }

    /// The underlying quinn connection.
    #[must_use]
    pub fn quinn(&self) -> &quinn::Connection {
        &self.conn
    }

    /// Opens a bidirectional stream.
    pub async fn open_bi(&self) -> Result<(quinn::SendStream, quinn::RecvStream), ClientError> {
        self.conn
            .open_bi()
            .await
            .map_err(|e| ClientError::ConnectionLost(closed_of(&e).to_string()))
    }

    /// One exchange: new bidirectional stream, write `bytes`, finish, read the
    /// whole reply (at most `max` bytes, within `timeout`). Writing and
    /// reading run together, so an early refusal is seen even if the peer
    /// stops reading.
    pub async fn exchange(&self, bytes: &[u8], max: usize, timeout: Duration) -> Reply {
        let (mut send, mut recv) = match self.open_bi().await {
            Ok(s) => s,
            Err(e) => {
                self.record(Direction::Sent, None, bytes, Some(e.to_string()));
                return Reply::ConnectionLost(e.to_string());
            }
        };
        let stream = Some(send.id().into());
        self.record(Direction::Sent, stream, bytes, None);
        let write = async {
            let _ = tokio::time::timeout(timeout, write_all_raw(&mut send, bytes, true)).await;
        };
        let (_, reply) = tokio::join!(write, read_reply_raw(&mut recv, max, timeout));
        if let Some((_, n)) = &self.trace {
            record_reply(Some(*n), stream, &reply);
        }
        reply
    }

    fn record(&self, dir: Direction, stream: Option<u64>, bytes: &[u8], note: Option<String>) {
        if let Some((t, n)) = &self.trace {
            t.record(dir, Some(*n), stream, bytes, note);
        }
    }

    /// This connection's number among the case's connections (1 = first),
    /// when the case's frames are recorded.
    #[must_use]
    pub fn number(&self) -> Option<u32> {
        self.trace.as_ref().map(|(_, n)| *n)
    }

    /// Sends `bytes` on a new unidirectional stream and finishes it.
    pub async fn send_uni(&self, bytes: &[u8]) -> Result<(), ClientError> {
        let mut send = self
            .conn
            .open_uni()
            .await
            .map_err(|e| ClientError::ConnectionLost(closed_of(&e).to_string()))?;
        self.record(Direction::Sent, Some(send.id().into()), bytes, None);
        write_all_raw(&mut send, bytes, true)
            .await
            .map_err(ClientError::ConnectionLost)
    }

    /// How the connection closed, if it has.
    #[must_use]
    pub fn close_reason(&self) -> Option<Closed> {
        self.conn.close_reason().map(|e| closed_of(&e))
    }

    /// Waits at most `within` for the connection to close.
    pub async fn closed_within(&self, within: Duration) -> Option<Closed> {
        tokio::time::timeout(within, self.conn.closed())
            .await
            .ok()
            .map(|e| closed_of(&e))
    }

    /// Whether the peer accepts the data of a new unidirectional stream
    /// (opening never needs a round trip, so this mostly tells whether the
    /// connection is still open).
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.conn.close_reason().is_none()
    }

    /// Closes the connection (code 0) and the endpoint.
    pub fn close(&self) {
        self.conn.close(VarInt::from_u32(0), b"done");
        self.endpoint.close(VarInt::from_u32(0), b"done");
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.close();
    }
}
