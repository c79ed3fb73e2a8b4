//! `certs init`: a private CA, a collector certificate and one agent certificate, so a
//! fleet can use mutual TLS without any other tool.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Certificates last this long; renew them with the same command before then.
const VALIDITY_DAYS: i64 = 825;

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} already exists; remove it or choose another --dir")]
    Exists { path: PathBuf },
}

/// Files written by [`init`].
pub const FILES: [&str; 5] = [
    "ca.pem",
    "collector.pem",
    "collector.key",
    "agent.pem",
    "agent.key",
];

/// Writes a CA, a collector certificate valid for `names` and an agent certificate
/// into `directory`. Keys are mode 0600. Refuses to overwrite existing files.
pub fn init(directory: &Path, names: &[String], agent_name: &str) -> Result<(), CertsError> {
    fs::create_dir_all(directory).map_err(|source| CertsError::Write {
        path: directory.to_path_buf(),
        source,
    })?;
    for file in FILES {
        let path = directory.join(file);
        if path.exists() {
            return Err(CertsError::Exists { path });
        }
    }
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Garonne CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut ca_params);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let (collector_cert, collector_key) = leaf(
        names,
        names.first().map_or("collector", String::as_str),
        ExtendedKeyUsagePurpose::ServerAuth,
        &issuer,
    )?;
    let (agent_cert, agent_key) = leaf(
        &[agent_name.to_string()],
        agent_name,
        ExtendedKeyUsagePurpose::ClientAuth,
        &issuer,
    )?;

    write(directory, "ca.pem", &ca_cert.pem(), 0o644)?;
    write(directory, "collector.pem", &collector_cert, 0o644)?;
    write(directory, "collector.key", &collector_key, 0o600)?;
    write(directory, "agent.pem", &agent_cert, 0o644)?;
    write(directory, "agent.key", &agent_key, 0o600)?;
    Ok(())
}

fn leaf(
    names: &[String],
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(String, String), CertsError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    set_validity(&mut params);
    let certificate = params.signed_by(&key, issuer)?;
    Ok((certificate.pem(), key.serialize_pem()))
}

/// Valid from a day ago (tolerating clocks a little behind) for [`VALIDITY_DAYS`].
fn set_validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(VALIDITY_DAYS);
}

fn write(directory: &Path, name: &str, content: &str, mode: u32) -> Result<(), CertsError> {
    let path = directory.join(name);
    let fail = |source| CertsError::Write {
        path: path.clone(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&path)
        .map_err(fail)?;
    file.write_all(content.as_bytes()).map_err(fail)
}
