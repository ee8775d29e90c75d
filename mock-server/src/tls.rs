//! HTTPS, because the real API is HTTPS only: a certificate and key from PEM files, or a CA made
//! on the spot and a certificate it signs for the names clients connect to, so that a
//! collector's own TLS settings (`ca_file`, host name checks) meet a real handshake. Handshakes
//! run beside the accept loop, so a client that connects and says nothing delays nobody else.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest as _, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {why}", path.display())]
    File { path: PathBuf, why: String },
    #[error("TLS setup failed: {0}")]
    Setup(String),
}

/// What the mock needs to serve HTTPS.
#[derive(Clone, Debug)]
pub struct Tls {
    config: Arc<rustls::ServerConfig>,
    ca_pem: Option<String>,
}

impl Tls {
    /// A certificate chain (leaf first) and its private key, both PEM.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let file_error = |path: &Path, why: String| TlsError::File {
            path: path.to_owned(),
            why,
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| file_error(cert, format!("cannot read certificates: {e}")))?;
        if chain.is_empty() {
            return Err(file_error(cert, "no PEM certificate in the file".into()));
        }
        let key_der = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| file_error(key, format!("cannot read a private key: {e}")))?;
        Ok(Tls {
            config: server_config(chain, key_der)?,
            ca_pem: None,
        })
    }

    /// A new CA, and a certificate it signs for `names` (host names or IP addresses).
    ///
    /// Each CA is named after its key, and the certificate names its CA's key: clients that
    /// pick an issuer by name (OpenSSL) must not take another mock's CA from the same CA file.
    pub fn self_signed(names: &[&str]) -> Result<Tls, TlsError> {
        let setup = |e: rcgen::Error| TlsError::Setup(e.to_string());
        let ca_key = rcgen::KeyPair::generate().map_err(setup)?;
        let key_id: String = Sha256::digest(ca_key.public_key_raw())[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(setup)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("op-events-mock CA {key_id}"),
        );
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(setup)?;
        let key = rcgen::KeyPair::generate().map_err(setup)?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).map_err(setup)?;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &ca).map_err(setup)?;
        let key_der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
        Ok(Tls {
            config: server_config(vec![cert.der().clone()], key_der)?,
            ca_pem: Some(ca.pem()),
        })
    }

    /// The CA of a [`self_signed`](Tls::self_signed) certificate, PEM: what a client trusts
    /// (`ca_file`). `None` for certificates from files, whose CA the caller knows.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    // The server speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TCP connections and hands on those whose handshake completed.
pub(crate) struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, tls: &Tls) -> io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(tls.config.clone());
        let (tx, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(connection) => connection,
                    Err(e) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => _ = tx.send((stream, peer)).await,
                        Ok(Err(e)) => tracing::info!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            local,
            ready,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task ended (the runtime is shutting down): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
