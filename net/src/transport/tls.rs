//! TLS 1.3 identity pinning: the node's network key *is* its certificate key.
//!
//! Each endpoint presents a self-signed X.509 certificate whose subject public
//! key is its Ed25519 network key; the 32 raw key bytes are its [`NodeId`]. The
//! verifiers here replace the Web PKI entirely:
//!
//! * **client side** ([`client_config`]): the server's certificate is accepted
//!   iff its Ed25519 key equals the NodeId we dialled (no CA, no host name, no
//!   validity period: identity = key);
//! * **server side** ([`server_config`]): a client certificate is mandatory and
//!   any well-formed Ed25519 key is accepted; the connection's peer NodeId is
//!   read after the handshake with [`peer_node_id`].
//!
//! In both directions the TLS 1.3 `CertificateVerify` signature is checked with
//! the *ring* provider's `verify_tls13_signature`, Ed25519 being the only
//! signature scheme offered, so a peer proves possession of the key it claims.
//! Only TLS 1.3 is enabled, ALPN is `distsoc/2` only (rustls refuses a QUIC
//! client offering anything else), and every config is built from
//! [`rustls::crypto::ring::default_provider`] explicitly, never from a process
//! default provider.
//!
//! The public key is extracted by [`node_id_from_certificate`], a minimal DER
//! walk down to the SubjectPublicKeyInfo (no substring search). The same
//! certificate is then parsed by webpki when the handshake signature is
//! checked, so a certificate our walk reads differently from a strict DER
//! parser cannot complete a handshake.

use std::fmt;
use std::sync::{Arc, OnceLock};

use distsoc_protocol::ids::NodeId;
use distsoc_protocol::limits::ALPN;
use distsoc_protocol::sign::{check_public_key, SigningKey};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use zeroize::Zeroizing;

/// Server name every client sends (SNI). It is not checked: the server is
/// identified by its key.
pub const SERVER_NAME: &str = "distsoc";

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410 §7): the 32-byte seed
/// follows.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// DER content of the object identifier 1.3.101.112 (id-Ed25519, RFC 8410).
const ED25519_OID: [u8; 3] = [0x2b, 0x65, 0x70];

/// Common name of our certificates (informational only).
const CERT_COMMON_NAME: &str = "distsoc node";

/// Why TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen refused the key or could not sign the certificate.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused the configuration (key, protocol versions).
    #[error("TLS configuration failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Why a certificate's key could not be taken as a NodeId.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CertKeyError {
    /// The certificate is not the DER structure expected (the reason names
    /// the element).
    #[error("certificate is not valid DER: {0}")]
    BadEncoding(&'static str),
    /// The subject public key is not an Ed25519 key.
    #[error("certificate key is not Ed25519")]
    NotEd25519,
    /// The Ed25519 key is not a canonical, prime-order-subgroup-usable point
    /// (malformed, small order or non-canonical encoding).
    #[error("certificate key is not an acceptable Ed25519 public key")]
    WeakKey,
}

/// A node's TLS identity: its self-signed certificate and the PKCS#8 form of
/// its network key.
pub struct Identity {
    node_id: NodeId,
    cert: CertificateDer<'static>,
    /// PKCS#8 v1 DER of the seed; zeroized on drop.
    key: PrivatePkcs8KeyDer<'static>,
}

impl Drop for Identity {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Builds the identity of `key`: PKCS#8 of its seed and a self-signed
    /// Ed25519 certificate (validity 1975..4096, never checked).
    pub fn new(key: &SigningKey) -> Result<Self, TlsError> {
        let pkcs8 = ed25519_pkcs8(&key.seed());
        let der = PrivatePkcs8KeyDer::from(pkcs8.to_vec());
        let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519)?;
        let mut params = rcgen::CertificateParams::default();
        let mut name = rcgen::DistinguishedName::new();
        name.push(rcgen::DnType::CommonName, CERT_COMMON_NAME);
        params.distinguished_name = name;
        let cert = params.self_signed(&key_pair)?;
        Ok(Self {
            node_id: NodeId(key.public()),
            cert: cert.der().clone(),
            key: der,
        })
    }

    /// The NodeId (public key) this identity proves.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The self-signed certificate presented in handshakes.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    fn key_cert(&self) -> (&CertificateDer<'static>, PrivateKeyDer<'static>) {
        (&self.cert, PrivateKeyDer::Pkcs8(self.key.clone_key()))
    }
}

/// PKCS#8 v1 DER of an Ed25519 seed (RFC 8410): the fixed 16-byte prefix
/// followed by the seed.
pub fn ed25519_pkcs8(seed: &[u8; 32]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(ED25519_PKCS8_V1_PREFIX.len() + 32));
    out.extend_from_slice(&ED25519_PKCS8_V1_PREFIX);
    out.extend_from_slice(seed);
    out
}

/// The ring provider, always passed explicitly.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The key the server presented in a client handshake, recorded by the
/// client verifier so that a pin mismatch can be reported with both keys.
#[derive(Debug, Clone, Default)]
pub struct PresentedKey(Arc<OnceLock<NodeId>>);

impl PresentedKey {
    /// The server's key, if its certificate was well formed (set whether or
    /// not it matched the pin).
    pub fn get(&self) -> Option<NodeId> {
        self.0.get().copied()
    }
}

/// A client TLS config that accepts only a server whose key is `expected`,
/// authenticates with `identity`, offers ALPN `distsoc/2` and TLS 1.3 only.
/// Build one per connection attempt; the returned [`PresentedKey`] tells,
/// after a failed handshake, which key the server showed.
pub fn client_config(
    identity: &Identity,
    expected: NodeId,
) -> Result<(rustls::ClientConfig, PresentedKey), TlsError> {
    let presented = PresentedKey::default();
    let verifier = PinnedServerVerifier {
        expected,
        presented: presented.clone(),
        provider: provider(),
    };
    let (cert, key) = identity.key_cert();
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(vec![cert.clone()], key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok((config, presented))
}

/// The server TLS config: presents `identity`, requires a client certificate
/// with any valid Ed25519 key, ALPN `distsoc/2` only, TLS 1.3 only.
pub fn server_config(identity: &Identity) -> Result<rustls::ServerConfig, TlsError> {
    let verifier = AnyEd25519ClientVerifier {
        provider: provider(),
    };
    let (cert, key) = identity.key_cert();
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(vec![cert.clone()], key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    // Anti-replay of 0-RTT is not worth it: requests are not idempotent.
    config.max_early_data_size = 0;
    // Clients build a fresh config per dial and never resume: tickets would
    // only cost memory per connection (docs/BENCHMARKS.md, "User node").
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// The NodeId of a connection's peer, read from the certificate chain the peer
/// presented (`None` if it presented none or it is not usable — which the
/// verifiers make impossible for a connection that completed its handshake).
pub fn peer_node_id(conn: &quinn::Connection) -> Option<NodeId> {
    let identity = conn.peer_identity()?;
    let chain = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    let cert = chain.first()?;
    node_id_from_certificate(cert.as_ref()).ok()
}

/// Extracts the Ed25519 public key of an X.509 certificate by walking its DER
/// down to the SubjectPublicKeyInfo:
///
/// ```text
/// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
/// TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature,
///                               issuer, validity, subject,
///                               subjectPublicKeyInfo, ... }
/// SubjectPublicKeyInfo ::= SEQUENCE { SEQUENCE { OID 1.3.101.112 },
///                                     BIT STRING (0 unused bits, 32 bytes) }
/// ```
///
/// Lengths must be definite and minimally encoded, the certificate must be
/// the whole input, the algorithm must have no parameters (RFC 8410), and the
/// key must pass [`check_public_key`] (on the curve, not small order,
/// canonical).
pub fn node_id_from_certificate(der: &[u8]) -> Result<NodeId, CertKeyError> {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const OID: u8 = 0x06;
    const BIT_STRING: u8 = 0x03;
    const VERSION: u8 = 0xa0;

    let (cert, rest) = tlv(der, SEQUENCE, "certificate")?;
    if !rest.is_empty() {
        return Err(CertKeyError::BadEncoding("bytes after the certificate"));
    }
    let (tbs, _) = tlv(cert, SEQUENCE, "tbsCertificate")?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = tlv(rest, VERSION, "version")?.1;
    }
    rest = tlv(rest, INTEGER, "serialNumber")?.1;
    rest = tlv(rest, SEQUENCE, "signature")?.1;
    rest = tlv(rest, SEQUENCE, "issuer")?.1;
    rest = tlv(rest, SEQUENCE, "validity")?.1;
    rest = tlv(rest, SEQUENCE, "subject")?.1;
    let (spki, _) = tlv(rest, SEQUENCE, "subjectPublicKeyInfo")?;
    let (algorithm, spki_rest) = tlv(spki, SEQUENCE, "algorithm")?;
    let (oid, params) = tlv(algorithm, OID, "algorithm oid")?;
    if oid != ED25519_OID {
        return Err(CertKeyError::NotEd25519);
    }
    if !params.is_empty() {
        return Err(CertKeyError::BadEncoding(
            "Ed25519 algorithm has parameters",
        ));
    }
    let (bits, after) = tlv(spki_rest, BIT_STRING, "subjectPublicKey")?;
    if !after.is_empty() {
        return Err(CertKeyError::BadEncoding("bytes after subjectPublicKey"));
    }
    let key: [u8; 32] = match bits.split_first() {
        Some((0, key)) => <[u8; 32]>::try_from(key)
            .map_err(|_| CertKeyError::BadEncoding("Ed25519 key is not 32 bytes"))?,
        _ => return Err(CertKeyError::BadEncoding("subjectPublicKey unused bits")),
    };
    check_public_key(&key).map_err(|_| CertKeyError::WeakKey)?;
    Ok(NodeId(key))
}

/// Reads one DER element with tag `tag` at the start of `input`: returns its
/// contents and what follows it. Definite, minimally encoded lengths only.
fn tlv<'a>(
    input: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), CertKeyError> {
    let bad = CertKeyError::BadEncoding(what);
    let (&got, rest) = input.split_first().ok_or(bad)?;
    if got != tag {
        return Err(bad);
    }
    let (&first, rest) = rest.split_first().ok_or(bad)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        // 0x80 is the indefinite form (not DER); more than 4 length bytes
        // cannot describe anything a handshake carries.
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad);
        }
        let (len_bytes, rest) = rest.split_at(n);
        if len_bytes[0] == 0 {
            return Err(bad);
        }
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len < 0x80 {
            return Err(bad);
        }
        (len, rest)
    };
    if rest.len() < len {
        return Err(bad);
    }
    Ok(rest.split_at(len))
}

fn cert_error(e: CertKeyError) -> rustls::Error {
    // Every way a certificate fails our key extraction is "not a distsoc
    // certificate"; the detail goes to the logs.
    tracing::debug!(error = %e, "peer certificate refused");
    rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
}

/// Checks a TLS 1.3 handshake signature: Ed25519 only, by the certificate's
/// key, with the ring provider's algorithms.
fn verify_ed25519_tls13(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(rustls::Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ));
    }
    verify_tls13_signature(
        message,
        cert,
        dss,
        &provider.signature_verification_algorithms,
    )
}

/// Client-side verifier: the server's key must be the pinned NodeId.
#[derive(Debug)]
struct PinnedServerVerifier {
    expected: NodeId,
    presented: PresentedKey,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = node_id_from_certificate(end_entity.as_ref()).map_err(cert_error)?;
        // First (and only) handshake of this config: ignore a second set.
        let _ = self.presented.0.set(got);
        if got == self.expected {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Only TLS 1.3 is enabled; never called.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_ed25519_tls13(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Server-side verifier: any client presenting a valid Ed25519 certificate key
/// (and proving it) is accepted; the key is its NodeId.
#[derive(Debug)]
struct AnyEd25519ClientVerifier {
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyEd25519ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        node_id_from_certificate(end_entity.as_ref()).map_err(cert_error)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_ed25519_tls13(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_seed(&[n; 32])
    }

    #[test]
    fn certificate_key_is_the_node_id() {
        let k = key(7);
        let id = Identity::new(&k).unwrap();
        assert_eq!(id.node_id(), NodeId(k.public()));
        assert_eq!(
            node_id_from_certificate(id.certificate().as_ref()).unwrap(),
            NodeId(k.public())
        );
    }

    #[test]
    fn pkcs8_prefix_is_rfc8410() {
        let der = ed25519_pkcs8(&[1; 32]);
        assert_eq!(der.len(), 48);
        assert_eq!(hex::encode(&der[..16]), "302e020100300506032b657004220420");
    }

    #[test]
    fn walk_rejects_damaged_certificates() {
        let id = Identity::new(&key(3)).unwrap();
        let der = id.certificate().as_ref().to_vec();
        // Every strict prefix is refused, never a panic.
        for cut in 0..der.len() {
            assert!(node_id_from_certificate(&der[..cut]).is_err(), "cut {cut}");
        }
        // Trailing bytes are refused.
        let mut long = der.clone();
        long.push(0);
        assert!(node_id_from_certificate(&long).is_err());
        // Another algorithm OID in the SPKI is not Ed25519. The OID occurs
        // three times: tbs signature algorithm, SPKI algorithm, outer
        // signature algorithm.
        let at: Vec<usize> = der
            .windows(5)
            .enumerate()
            .filter(|(_, w)| *w == [0x06, 0x03, 0x2b, 0x65, 0x70])
            .map(|(i, _)| i)
            .collect();
        assert_eq!(at.len(), 3);
        let spki = at[1];
        let mut other = der.clone();
        other[spki + 4] = 0x71; // 1.3.101.113 = Ed448
        assert_eq!(
            node_id_from_certificate(&other),
            Err(CertKeyError::NotEd25519)
        );
    }

    #[test]
    fn small_order_key_is_refused() {
        let id = Identity::new(&key(3)).unwrap();
        let mut der = id.certificate().as_ref().to_vec();
        let public = key(3).public();
        let at = der.windows(32).position(|w| w == public).unwrap();
        // The identity point (small order).
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        der[at..at + 32].copy_from_slice(&identity_point);
        assert_eq!(node_id_from_certificate(&der), Err(CertKeyError::WeakKey));
    }

    #[test]
    fn long_form_lengths_must_be_minimal() {
        assert!(tlv(&[0x30, 0x81, 0x01, 0x00], 0x30, "x").is_err());
        assert!(tlv(&[0x30, 0x80, 0x00, 0x00], 0x30, "x").is_err());
        assert!(tlv(&[0x30, 0x82, 0x00, 0x80], 0x30, "x").is_err());
        let mut ok = vec![0x30, 0x81, 0x80];
        ok.extend_from_slice(&[0; 0x80]);
        let (content, rest) = tlv(&ok, 0x30, "x").unwrap();
        assert_eq!(content.len(), 0x80);
        assert!(rest.is_empty());
    }

    #[test]
    fn configs_build_with_the_ring_provider() {
        let id = Identity::new(&key(9)).unwrap();
        let (client, _) = client_config(&id, NodeId(key(8).public())).unwrap();
        assert_eq!(client.alpn_protocols, vec![ALPN.to_vec()]);
        let server = server_config(&id).unwrap();
        assert_eq!(server.alpn_protocols, vec![ALPN.to_vec()]);
        quinn::crypto::rustls::QuicClientConfig::try_from(client).unwrap();
        quinn::crypto::rustls::QuicServerConfig::try_from(server).unwrap();
    }
}
