//! `berth diff` / `container diff` and `berth commit` / `container commit`.

use api_types::models::{ChangeType, ContainerConfig};
use bollard::query_parameters::CommitContainerOptions;
use clap::{ArgAction, Args};

use crate::client::{CliError, Client};

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
}

#[derive(Debug, Args)]
pub(crate) struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long, value_name = "string")]
    pub(crate) author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub(crate) change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long, value_name = "string")]
    pub(crate) message: Option<String>,
    /// Pause container during commit
    #[arg(
        short = 'p',
        long,
        default_value_t = true,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub(crate) pause: bool,
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub(crate) reference: Option<String>,
}

/// Docker's letter for a change kind.
fn letter(kind: ChangeType) -> char {
    match kind {
        ChangeType::_0 => 'C',
        ChangeType::_1 => 'A',
        ChangeType::_2 => 'D',
    }
}

/// `docker diff`: one `K /path` line per change, in the daemon's order.
pub(crate) async fn diff(client: &Client, args: &DiffArgs) -> Result<(), CliError> {
    let changes = client
        .docker
        .container_changes(&args.container)
        .await
        .map_err(|e| client.error(e))?;
    let mut out = String::new();
    for c in changes.unwrap_or_default() {
        out.push(letter(c.kind));
        out.push(' ');
        out.push_str(&c.path);
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

/// Splits `REPOSITORY[:TAG]` as the docker client does before sending it (the daemon
/// normalises and validates the repository). A digest is refused here, with docker's words.
fn split_reference(r: &str) -> Result<(String, String), CliError> {
    if r.contains('@') {
        return Err(CliError::Message(
            "refusing to create a tag with a digest reference".into(),
        ));
    }
    let name_start = r.rfind('/').map_or(0, |i| i + 1);
    Ok(match r[name_start..].rfind(':') {
        Some(i) => (
            r[..name_start + i].to_string(),
            r[name_start + i + 1..].to_string(),
        ),
        None => (r.to_string(), String::new()),
    })
}

/// `docker commit`: prints the new image's ID.
pub(crate) async fn commit(client: &Client, args: &CommitArgs) -> Result<(), CliError> {
    let (repo, tag) = match args.reference.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => split_reference(r)?,
        None => (String::new(), String::new()),
    };
    let opts = CommitContainerOptions {
        container: Some(args.container.clone()),
        repo: Some(repo),
        tag: Some(tag),
        comment: Some(args.message.clone().unwrap_or_default()),
        author: Some(args.author.clone().unwrap_or_default()),
        pause: args.pause,
        // One parameter: the daemon reads each line as an instruction, as moby does with the
        // repeated `changes` the docker CLI sends.
        changes: (!args.change.is_empty()).then(|| args.change.join("\n")),
    };
    let r = client
        .docker
        .commit_container(opts, ContainerConfig::default())
        .await
        .map_err(|e| client.error(e))?;
    println!("{}", r.id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        c: CommitArgs,
    }

    #[test]
    fn references_split_like_docker() {
        let s = |r: &str| split_reference(r).unwrap();
        assert_eq!(s("myimg:v1"), ("myimg".into(), "v1".into()));
        assert_eq!(s("myimg"), ("myimg".into(), String::new()));
        assert_eq!(
            s("localhost:5000/a/b:t"),
            ("localhost:5000/a/b".into(), "t".into())
        );
        assert_eq!(
            s("localhost:5000/a"),
            ("localhost:5000/a".into(), String::new())
        );
        assert!(split_reference(&format!("a@sha256:{}", "0".repeat(64))).is_err());
    }

    #[test]
    fn flags_parse_like_docker() {
        let t = T::try_parse_from([
            "commit", "-m", "msg", "-a", "me", "-c", "ENV X=1", "-c", "CMD sh", "c", "img:v1",
        ])
        .unwrap();
        assert_eq!(t.c.change, vec!["ENV X=1", "CMD sh"]);
        assert!(t.c.pause);
        assert_eq!(t.c.reference.as_deref(), Some("img:v1"));
        let t = T::try_parse_from(["commit", "--pause=false", "c"]).unwrap();
        assert!(!t.c.pause);
        assert!(t.c.reference.is_none());
    }

    #[test]
    fn letters() {
        assert_eq!(
            [ChangeType::_0, ChangeType::_1, ChangeType::_2].map(letter),
            ['C', 'A', 'D']
        );
    }
}
