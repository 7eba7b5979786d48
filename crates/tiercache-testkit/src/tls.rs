//! Certificates made at test time for a TLS Redis: a CA of its own and a server certificate it signs.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::TestkitError;

/// The CA a test client must trust to talk to a [`crate::RedisServer::start_tls`] server or to the
/// nodes of a [`crate::RedisCluster::start_tls`] cluster.
#[derive(Debug, Clone)]
pub struct TestCa {
    /// The CA certificate, PEM.
    pub pem: String,
    /// The same certificate as a file (`ca.pem`), for clients that take a path.
    pub path: PathBuf,
    /// A client certificate the CA signed (`client.pem`), for a server that authenticates its
    /// clients ([`crate::RedisServer::start_tls_authenticating_clients`]).
    pub client_cert_path: PathBuf,
    /// Its private key (`client.key`).
    pub client_key_path: PathBuf,
}

fn cert_error(e: &rcgen::Error) -> TestkitError {
    TestkitError::Cluster(format!("test certificate: {e}"))
}

impl TestCa {
    /// Makes a CA, a server certificate for `127.0.0.1` and `localhost` and a client certificate,
    /// and writes `ca.pem`, `server.pem`, `server.key`, `client.pem` and `client.key` into `dir`.
    pub(crate) fn write_to(dir: &Path) -> Result<TestCa, TestkitError> {
        let ca_key = KeyPair::generate().map_err(|e| cert_error(&e))?;
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| cert_error(&e))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "tiercache testkit CA");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(|e| cert_error(&e))?;
        let server_key = KeyPair::generate().map_err(|e| cert_error(&e))?;
        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(|e| cert_error(&e))?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server = server_params
            .signed_by(&server_key, &ca)
            .map_err(|e| cert_error(&e))?;
        let write = |name: &str, contents: &str| {
            std::fs::write(dir.join(name), contents).map_err(|source| TestkitError::Spawn {
                what: format!("{name} in {}", dir.display()),
                source,
            })
        };
        let client_key = KeyPair::generate().map_err(|e| cert_error(&e))?;
        let mut client_params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| cert_error(&e))?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, "tiercache testkit client");
        let client = client_params
            .signed_by(&client_key, &ca)
            .map_err(|e| cert_error(&e))?;
        write("ca.pem", &ca.pem())?;
        write("server.pem", &server.pem())?;
        write("server.key", &server_key.serialize_pem())?;
        write("client.pem", &client.pem())?;
        write("client.key", &client_key.serialize_pem())?;
        Ok(TestCa {
            pem: ca.pem(),
            path: dir.join("ca.pem"),
            client_cert_path: dir.join("client.pem"),
            client_key_path: dir.join("client.key"),
        })
    }
}
