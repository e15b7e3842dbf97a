//! `herald certs init` and `herald certs issue`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use herald::tls::{DevCa, KeyAlgorithm, TrustDomain};

use crate::cli::{CertsCommand, CertsInitArgs, CertsIssueArgs};

/// The file `init` leaves so that `issue` uses the same trust domain.
const TRUST_DOMAIN_FILE: &str = "trust-domain";

pub(crate) fn run(command: CertsCommand) -> anyhow::Result<()> {
    match command {
        CertsCommand::Init(args) => init(&args),
        CertsCommand::Issue(args) => issue(&args),
    }
}

fn algorithm(rsa: bool) -> KeyAlgorithm {
    if rsa {
        KeyAlgorithm::Rsa2048
    } else {
        KeyAlgorithm::EcdsaP256
    }
}

fn init(args: &CertsInitArgs) -> anyhow::Result<()> {
    let ca = init_ca(
        &args.dir,
        &args.trust_domain,
        algorithm(args.rsa),
        args.force,
    )?;
    println!(
        "created a development CA for trust domain {} in {} (ca.pem, ca.key)",
        ca.trust_domain(),
        args.dir.display()
    );
    Ok(())
}

/// Creates the CA files in `dir`.
pub(crate) fn init_ca(
    dir: &Path,
    trust_domain: &str,
    algorithm: KeyAlgorithm,
    force: bool,
) -> anyhow::Result<DevCa> {
    let trust_domain = TrustDomain::new(trust_domain)?;
    if dir.join("ca.key").exists() && !force {
        bail!(
            "{} already holds a CA (ca.key); pass --force to replace it",
            dir.display()
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ca = DevCa::generate(trust_domain.clone(), algorithm)?;
    write_file(&dir.join("ca.pem"), ca.cert_pem(), false)?;
    write_file(&dir.join("ca.key"), ca.key_pem(), true)?;
    write_file(
        &dir.join(TRUST_DOMAIN_FILE),
        &format!("{trust_domain}\n"),
        false,
    )?;
    Ok(ca)
}

fn issue(args: &CertsIssueArgs) -> anyhow::Result<()> {
    let identity = match (&args.service, &args.user, &args.host) {
        (Some(name), None, None) => name.clone(),
        (None, Some(name), None) => format!("user.{name}"),
        (None, None, Some(name)) => format!("host.{name}"),
        _ => bail!("give exactly one of --service, --user, --host"),
    };
    let ca = load_ca(&args.dir)?;
    let (cert, key) = issue_files(&ca, &args.dir, &identity, algorithm(args.rsa))?;
    println!(
        "issued {} for identity {identity} ({}): {} and {}",
        ca.trust_domain().spiffe_id(&identity),
        if args.rsa { "RSA-2048" } else { "ECDSA P-256" },
        cert.display(),
        key.display()
    );
    Ok(())
}

/// The CA in `dir`.
pub(crate) fn load_ca(dir: &Path) -> anyhow::Result<DevCa> {
    let read = |name: &str| {
        fs::read_to_string(dir.join(name)).with_context(|| {
            format!(
                "no CA in {} (missing {name}): run `herald certs init --dir {}` first",
                dir.display(),
                dir.display()
            )
        })
    };
    let trust_domain = TrustDomain::new(read(TRUST_DOMAIN_FILE)?.trim())?;
    Ok(DevCa::load(
        &read("ca.pem")?,
        &read("ca.key")?,
        trust_domain,
    )?)
}

/// Issues `identity` into `dir/{identity}.pem` and `.key`; returns their paths.
pub(crate) fn issue_files(
    ca: &DevCa,
    dir: &Path,
    identity: &str,
    algorithm: KeyAlgorithm,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let issued = ca.issue(identity, algorithm)?;
    let cert = dir.join(format!("{identity}.pem"));
    let key = dir.join(format!("{identity}.key"));
    write_file(&cert, &issued.cert_pem, false)?;
    write_file(&key, &issued.key_pem, true)?;
    Ok((cert, key))
}

/// Writes a file whole; a private key is readable by its owner only.
fn write_file(path: &Path, contents: &str, private: bool) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    if private {
        // The mode above applies only to a new file; an old one keeps its own.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    file.write_all(contents.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
