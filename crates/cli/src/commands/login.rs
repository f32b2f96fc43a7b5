//! `berth login` / `berth logout` and the credentials store they share with `pull`/`push`:
//! the docker CLI's config.json (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`),
//! `auths.<server>.auth` = base64 `user:password`, other keys kept as they are. Credential
//! helpers (`credsStore`) are not used.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use base64::Engine as _;
use clap::Args;
use serde_json::{Map, Value};

use crate::client::{CliError, Client};

/// Docker Hub's key in `auths` (and `serveraddress` for it).
const HUB: &str = "https://index.docker.io/v1/";

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// Username
    #[arg(short = 'u', long)]
    pub(crate) username: Option<String>,
    /// Password or Personal Access Token (PAT)
    #[arg(short = 'p', long)]
    pub(crate) password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long)]
    pub(crate) password_stdin: bool,
    #[arg(value_name = "SERVER")]
    pub(crate) server: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LogoutArgs {
    #[arg(value_name = "SERVER")]
    pub(crate) server: Option<String>,
}

fn config_path() -> PathBuf {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".docker")
        });
    dir.join("config.json")
}

/// The `auths` key for a server address as given to `login` (scheme and path dropped; Hub's
/// names become its v1 URL, as the docker CLI stores it).
fn server_key(server: Option<&str>) -> String {
    let s = server.unwrap_or("").trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    match s.split('/').next().unwrap_or("") {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => HUB.to_string(),
        h => h.to_string(),
    }
}

fn read_config() -> Result<Map<String, Value>, CliError> {
    match std::fs::read(config_path()) {
        Ok(b) if !b.iter().all(u8::is_ascii_whitespace) => match serde_json::from_slice(&b)? {
            Value::Object(m) => Ok(m),
            _ => Err(CliError::Message(format!(
                "{}: not a JSON object",
                config_path().display()
            ))),
        },
        Ok(_) => Ok(Map::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(e.into()),
    }
}

/// Writes the config atomically (temporary file, 0600, rename).
fn write_config(cfg: &Map<String, Value>) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = config_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(cfg)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// The stored (username, password, server key) for a registry domain (`docker.io`,
/// `127.0.0.1:5000`).
pub(crate) fn stored_credentials(domain: &str) -> Option<(String, String, String)> {
    let key = server_key(Some(domain));
    let cfg = read_config().ok()?;
    let auth = cfg.get("auths")?.get(&key)?.get("auth")?.as_str()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let (u, p) = String::from_utf8(raw)
        .ok()?
        .split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string()))?;
    Some((u, p, key))
}

/// The registry domain of a normalised image name (`docker.io/library/busybox`).
pub(crate) fn domain_of(normalized: &str) -> &str {
    normalized.split('/').next().unwrap_or("docker.io")
}

/// `X-Registry-Auth` for `domain`: base64url JSON of the stored credentials, if any.
pub(crate) fn registry_auth_header(domain: &str) -> Option<String> {
    let (username, password, serveraddress) = stored_credentials(domain)?;
    let json = serde_json::json!({
        "username": username,
        "password": password,
        "serveraddress": serveraddress,
    });
    Some(base64::engine::general_purpose::URL_SAFE.encode(json.to_string()))
}

/// `X-Registry-Config` for a build: base64url JSON of every stored credential by its `auths`
/// key (`e30=`, i.e. `{}`, when none), as the docker CLI sends it for `FROM` pulls.
pub(crate) fn registry_config_header() -> String {
    let mut out = Map::new();
    if let Ok(cfg) = read_config()
        && let Some(Value::Object(auths)) = cfg.get("auths")
    {
        for (key, entry) in auths {
            let Some(raw) = entry
                .get("auth")
                .and_then(Value::as_str)
                .and_then(|a| {
                    base64::engine::general_purpose::STANDARD
                        .decode(a.trim())
                        .ok()
                })
                .and_then(|b| String::from_utf8(b).ok())
            else {
                continue;
            };
            let Some((u, p)) = raw.split_once(':') else {
                continue;
            };
            out.insert(
                key.clone(),
                serde_json::json!({"username": u, "password": p, "serveraddress": key}),
            );
        }
    }
    base64::engine::general_purpose::URL_SAFE.encode(Value::Object(out).to_string())
}

fn read_line(prompt: Option<&str>) -> Result<String, CliError> {
    if let Some(p) = prompt {
        print!("{p}");
        std::io::stdout().flush()?;
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `berth login`.
pub(crate) async fn login(client: &Client, args: &LoginArgs) -> Result<(), CliError> {
    if args.password.is_some() && args.password_stdin {
        return Err(CliError::Message(
            "--password and --password-stdin are mutually exclusive".into(),
        ));
    }
    if args.password_stdin && args.username.is_none() {
        return Err(CliError::Message(
            "Must provide --username with --password-stdin".into(),
        ));
    }
    if args.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let key = server_key(args.server.as_deref());
    let username = match &args.username {
        Some(u) => u.clone(),
        None => read_line(Some("Username: "))?,
    };
    let password = match &args.password {
        Some(p) => p.clone(),
        None if args.password_stdin => read_line(None)?,
        None => read_line(Some("Password: "))?,
    };
    if username.is_empty() {
        return Err(CliError::Message(
            "Error: Non-null Username Required".into(),
        ));
    }
    if password.is_empty() {
        return Err(CliError::Message("Error: Password Required".into()));
    }
    let body = serde_json::json!({
        "username": username,
        "password": password,
        "serveraddress": key,
    })
    .to_string();
    let (_, answer) = crate::raw::post_raw(client, "/auth", &[], Some(&body)).await?;
    let status = serde_json::from_slice::<Value>(&answer)
        .ok()
        .and_then(|v| v.get("Status").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "Login Succeeded".into());
    let mut cfg = read_config()?;
    let auths = cfg
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    if let Some(m) = auths.as_object_mut() {
        m.insert(key, serde_json::json!({ "auth": encoded }));
    }
    write_config(&cfg)?;
    eprintln!(
        "WARNING! Your credentials are stored unencrypted in '{}'.",
        config_path().display()
    );
    println!("{status}");
    Ok(())
}

/// `berth logout`.
pub(crate) fn logout(args: &LogoutArgs) -> Result<(), CliError> {
    let key = server_key(args.server.as_deref());
    let mut cfg = read_config()?;
    let removed = cfg
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove(&key))
        .is_some();
    if !removed {
        println!("Not logged in to {key}");
        return Ok(());
    }
    println!("Removing login credentials for {key}");
    write_config(&cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_as_docker_stores_them() {
        assert_eq!(server_key(None), HUB);
        assert_eq!(server_key(Some("docker.io")), HUB);
        assert_eq!(server_key(Some("127.0.0.1:5000")), "127.0.0.1:5000");
        assert_eq!(
            server_key(Some("https://localhost:5999/v2/")),
            "localhost:5999"
        );
        assert_eq!(domain_of("127.0.0.1:5000/test/bb"), "127.0.0.1:5000");
        assert_eq!(domain_of("docker.io/library/busybox"), "docker.io");
    }
}
