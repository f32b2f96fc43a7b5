//! A throwaway PKI for TLS tests, made with the `openssl` binary: a CA (`ca.pem`, `ca-key.pem`),
//! an unrelated one (`other-ca.pem`), a server certificate for 127.0.0.1 and localhost
//! (`server-cert.pem`, `server-key.pem`) and a client certificate (`client-*.pem`) the CA
//! signed, and an `intruder` client certificate the other CA signed. Valid for one day.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::registry::tool_available;

/// The PKI's directory.
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// Makes the PKI in `dir`; `None` (the test skips) when openssl is not installed.
    pub fn make(dir: &Path) -> Option<Self> {
        if !tool_available("openssl") {
            return None;
        }
        std::fs::create_dir_all(dir).expect("create the PKI directory");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .current_dir(dir)
                .args(args)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        for (name, cn) in [("ca", "berth test CA"), ("other-ca", "another test CA")] {
            let (k, c) = (format!("{name}-key.pem"), format!("{name}.pem"));
            let subj = format!("/CN={cn}");
            let mut args = vec!["req", "-x509"];
            args.extend(key);
            args.extend(["-days", "1", "-subj", &subj, "-keyout", &k, "-out", &c]);
            run(&args);
        }
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text).expect("write an openssl extension file");
        };
        write(
            "server.ext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        );
        write(
            "client.ext",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        );
        for (name, cn, ca, ext) in [
            ("server", "127.0.0.1", "ca", "server.ext"),
            ("client", "berth client", "ca", "client.ext"),
            ("intruder", "intruder", "other-ca", "client.ext"),
        ] {
            let (k, csr) = (format!("{name}-key.pem"), format!("{name}.csr"));
            let subj = format!("/CN={cn}");
            let mut args = vec!["req"];
            args.extend(key);
            args.extend(["-subj", &subj, "-keyout", &k, "-out", &csr]);
            run(&args);
            let (ca_cert, ca_key) = (format!("{ca}.pem"), format!("{ca}-key.pem"));
            let out = format!("{name}-cert.pem");
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_cert,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                ext,
                "-out",
                &out,
            ]);
        }
        Some(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// A file of the PKI (`ca.pem`, `client-key.pem`, …).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Copies PKI files into `dest` under other names (a certs.d directory, `--cert-dir`).
    pub fn copy_into(&self, dest: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dest).expect("create the directory");
        for (from, to) in files {
            std::fs::copy(self.file(from), dest.join(to)).expect("copy a PKI file");
        }
    }
}
