//! The certificates of `ca_file`, added to the roots the client trusts. A file that gives none
//! says what it holds instead (a DER certificate, a private key, a damaged block) and what to
//! do: "no certificates found" leaves a person guessing.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::{self, PemObject as _, SectionKind};

/// Why `ca_file` gives no CA to trust.
#[derive(Debug, thiserror::Error)]
pub(super) enum CaFileError {
    #[error(
        "no PEM certificates found: give the CA's certificate in PEM (`-----BEGIN \
         CERTIFICATE-----`)"
    )]
    NoCertificate,
    #[error(
        "holds a DER (binary) certificate, not PEM: convert it with `openssl x509 -inform der \
         -in FILE -out FILE.pem` and give FILE.pem"
    )]
    Der,
    #[error(
        "holds a private key, not a certificate: give the CA's certificate (`-----BEGIN \
         CERTIFICATE-----`) instead"
    )]
    PrivateKey,
    #[error("a PEM block is not valid: {0}: put back an intact copy of the CA certificate")]
    BadPem(String),
    #[error(
        "certificate block {n} is not valid: it holds no X.509 certificate ({why}): put back an \
         intact copy of the CA certificate"
    )]
    BadCertificate { n: usize, why: String },
}

/// Adds the certificates in `file`, a `ca_file`'s contents, to `roots`.
pub(super) fn add_to(roots: &mut rustls::RootCertStore, file: &[u8]) -> Result<(), CaFileError> {
    let blocks = <(SectionKind, Vec<u8>)>::pem_slice_iter(file)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CaFileError::BadPem(pem_problem(e)))?;
    let certs: Vec<_> = blocks
        .iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der.as_slice()))
        .collect();
    if certs.is_empty() {
        let key = blocks.iter().any(|(kind, _)| {
            matches!(
                kind,
                SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey
            )
        });
        return Err(if key {
            CaFileError::PrivateKey
        } else if blocks.is_empty()
            && webpki::anchor_from_trusted_cert(&CertificateDer::from(file)).is_ok()
        {
            CaFileError::Der
        } else {
            CaFileError::NoCertificate
        });
    }
    for (at, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| CaFileError::BadCertificate {
            n: at + 1,
            why: match e {
                rustls::Error::InvalidCertificate(why) => format!("{why:?}"),
                other => other.to_string(),
            },
        })?;
    }
    Ok(())
}

/// What is wrong with a PEM block, in words (the parser's own give a label as a list of bytes).
fn pem_problem(e: pem::Error) -> String {
    match e {
        pem::Error::Base64Decode(why) => format!("its base64 does not decode ({why})"),
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "`-----BEGIN {}-----` has no END line (the file is cut short?)",
            end_marker.escape_ascii()
        ),
        pem::Error::IllegalSectionStart { .. } => "its BEGIN line is malformed".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";

    fn added(file: &[u8]) -> Result<usize, String> {
        let mut roots = rustls::RootCertStore::empty();
        add_to(&mut roots, file)
            .map(|()| roots.len())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn what_a_file_holds_instead_of_certificates_is_said() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["ca.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(added(cert.pem().as_bytes()), Ok(1));
        // A certificate and its key: the key is no matter.
        let both = format!("{}{}", key.serialize_pem(), cert.pem());
        assert_eq!(added(both.as_bytes()), Ok(1));

        let said = |file: &[u8]| added(file).unwrap_err();
        assert!(said(cert.der()).starts_with("holds a DER (binary) certificate, not PEM: convert"));
        assert!(
            said(key.serialize_pem().as_bytes())
                .starts_with("holds a private key, not a certificate")
        );
        for none in [&b""[..], b"hello\n", &[0x30, 0x03, 0x02, 0x01, 0x00]] {
            assert!(
                said(none).starts_with("no PEM certificates found"),
                "{none:?}"
            );
        }
        assert_eq!(
            said(BLOCK.as_bytes()),
            "certificate block 1 is not valid: it holds no X.509 certificate (BadEncoding): put \
             back an intact copy of the CA certificate"
        );
        let second = format!("{}{BLOCK}", cert.pem());
        assert!(said(second.as_bytes()).starts_with("certificate block 2 is not valid"));
        assert_eq!(
            said(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"),
            "a PEM block is not valid: its base64 does not decode (InvalidCharacter(33)): put \
             back an intact copy of the CA certificate"
        );
        assert_eq!(
            said(b"-----BEGIN CERTIFICATE-----\naGVsbG8=\n"),
            "a PEM block is not valid: `-----BEGIN CERTIFICATE-----` has no END line (the file \
             is cut short?): put back an intact copy of the CA certificate"
        );
    }
}
