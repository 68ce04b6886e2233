//! Certificates for the TLS tests, made with the `openssl` command: a CA, a server certificate
//! for `localhost` and 127.0.0.1 signed by it, a client certificate, and a second CA that signed
//! nothing.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory of its own under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let random = tower_session_jwt::session::SessionId::generate().unwrap();
        let dir = std::env::temp_dir().join(format!(
            "tsjtest-{label}-{}",
            &random.as_str()["session-".len()..]
        ));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `openssl` with `args` in `dir`; `Err` with its output when it fails or is missing.
pub fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The certificates of one test: a CA, a server certificate for 127.0.0.1 and localhost and a
/// client certificate signed by it, and a second CA that signed nothing the server has.
pub struct Pki {
    pub dir: TempDir,
}

impl Pki {
    pub fn generate(label: &str) -> Result<Self, String> {
        let dir = TempDir::new(label);
        let d = dir.0.as_path();
        // ECDSA P-256 keys: quick to generate, and what rustls and Redis both accept.
        let key = |name: &str| {
            openssl(
                d,
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    name,
                ],
            )
        };
        let ca = |name: &str, cn: &str| {
            key(&format!("{name}.key"))?;
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-new",
                    "-key",
                    &format!("{name}.key"),
                    "-sha256",
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN={cn}"),
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                    "-out",
                    &format!("{name}.crt"),
                ],
            )
        };
        ca("ca", "tower-session-jwt test CA")?;
        ca("other-ca", "another CA")?;
        let leaf = |name: &str, cn: &str, ext: &str| {
            key(&format!("{name}.key"))?;
            openssl(
                d,
                &[
                    "req",
                    "-new",
                    "-key",
                    &format!("{name}.key"),
                    "-subj",
                    &format!("/CN={cn}"),
                    "-out",
                    &format!("{name}.csr"),
                ],
            )?;
            std::fs::write(d.join(format!("{name}.ext")), ext).map_err(|e| e.to_string())?;
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-sha256",
                    "-extfile",
                    &format!("{name}.ext"),
                    "-out",
                    &format!("{name}.crt"),
                ],
            )
        };
        leaf(
            "server",
            "localhost",
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )?;
        leaf(
            "client",
            "tsj-client",
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
        )?;
        Ok(Self { dir })
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.0.join(name).to_string_lossy().into_owned()
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.0.join(name)).expect("generated PEM")
    }
}
