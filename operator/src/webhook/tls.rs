//! The webhook's TLS: rustls with the aws-lc-rs provider chosen explicitly (never a process
//! default), and a serving certificate that can be swapped while connections are accepted, so
//! rotation (self-managed or cert-manager's) needs no restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tracing::{info, warn};

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate PEM holds no certificate: {0}")]
    Certificate(#[source] rustls::pki_types::pem::Error),
    #[error("key PEM holds no private key: {0}")]
    Key(#[source] rustls::pki_types::pem::Error),
    #[error("certificate and key do not form a usable pair: {0}")]
    Pair(#[source] rustls::Error),
    #[error("TLS configuration: {0}")]
    Config(#[source] rustls::Error),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The crypto provider of every TLS object the webhook builds.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A PEM certificate chain (leaf first) and its PEM private key.
#[derive(Clone, PartialEq, Eq)]
pub struct CertPem {
    pub chain: String,
    pub key: String,
}

impl std::fmt::Debug for CertPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertPem")
            .field("chain", &self.chain)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Parse and pair a certificate chain and key.
pub fn certified_key(pem: &CertPem) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem.chain.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsError::Certificate)?;
    if chain.is_empty() {
        return Err(TlsError::Certificate(
            rustls::pki_types::pem::Error::NoItemsFound,
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).map_err(TlsError::Key)?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(TlsError::Pair)
}

/// The serving certificate, replaceable at any time; new handshakes use the newest.
#[derive(Debug)]
pub struct ReloadableCert {
    current: RwLock<(CertPem, Arc<CertifiedKey>)>,
}

impl ReloadableCert {
    /// Start with `pem`.
    pub fn new(pem: CertPem) -> Result<Arc<Self>, TlsError> {
        let key = Arc::new(certified_key(&pem)?);
        Ok(Arc::new(ReloadableCert {
            current: RwLock::new((pem, key)),
        }))
    }

    /// Serve `pem` from the next handshake on. `Ok(false)` when it is what is already served.
    pub fn replace(&self, pem: CertPem) -> Result<bool, TlsError> {
        if self.current.read().is_ok_and(|current| current.0 == pem) {
            return Ok(false);
        }
        let key = Arc::new(certified_key(&pem)?);
        match self.current.write() {
            Ok(mut current) => *current = (pem, key),
            Err(poisoned) => *poisoned.into_inner() = (pem, key),
        }
        Ok(true)
    }

    fn key(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(current) => current.1.clone(),
            Err(poisoned) => poisoned.into_inner().1.clone(),
        }
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.key())
    }
}

/// Server configuration: TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1, the certificate from `cert`.
pub fn server_config(cert: Arc<ReloadableCert>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// File names cert-manager (and `kubernetes.io/tls` Secrets) use.
pub const CERT_FILE: &str = "tls.crt";
pub const KEY_FILE: &str = "tls.key";

/// Read `tls.crt` and `tls.key` from `dir`.
pub fn read_cert_dir(dir: &Path) -> Result<CertPem, TlsError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| TlsError::Read { path, source })
    };
    Ok(CertPem {
        chain: read(CERT_FILE)?,
        key: read(KEY_FILE)?,
    })
}

/// Re-read `dir` every `interval` and serve what it holds when it changed (cert-manager renews
/// the Secret, the kubelet updates the mounted files). A half-written pair is skipped and
/// retried at the next tick.
pub async fn watch_cert_dir(dir: PathBuf, cert: Arc<ReloadableCert>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match read_cert_dir(&dir).and_then(|pem| cert.replace(pem)) {
            Ok(true) => info!(dir = %dir.display(), "webhook certificate reloaded"),
            Ok(false) => {}
            Err(error) => warn!(dir = %dir.display(), %error, "webhook certificate not reloaded"),
        }
    }
}
