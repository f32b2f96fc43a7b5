//! `images`, `tag`, `rmi`, `history`, `inspect` and `image prune`.

use std::io::{BufRead, Write};

use api_types::models::{ImageHistoryResponseItem, ImageSummary};
use bollard::query_parameters::{
    ListImagesOptions, PruneImagesOptions, RemoveImageOptions, TagImageOptions,
};

use super::{HistoryArgs, ImagesArgs, InspectArgs, PruneArgs, RmiArgs, TagArgs, parse_filters};
use crate::client::{CliError, Client, is_not_found};
use crate::format::{self, Format, Value, units};

const DEFAULT_IMAGE_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const DEFAULT_IMAGE_TABLE_DIGEST: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const QUIET_FORMAT: &str = "{{.ID}}";
const JSON_FORMAT: &str = "{{json .}}";

/// The `images` format, as docker's `NewImageFormat` chooses it.
fn image_format(source: &str, quiet: bool, digests: bool) -> String {
    match source {
        "" | "table" if quiet => QUIET_FORMAT.to_string(),
        "" | "table" if digests => DEFAULT_IMAGE_TABLE_DIGEST.to_string(),
        "" | "table" => DEFAULT_IMAGE_TABLE.to_string(),
        "json" => JSON_FORMAT.to_string(),
        f if f.starts_with("table") && digests && !f.contains("{{.Digest}}") => {
            format!("{f}\t{{{{.Digest}}}}")
        }
        f => f.to_string(),
    }
}

pub(crate) fn image_header() -> Value {
    Value::str_obj([
        ("Containers", "CONTAINERS".into()),
        ("CreatedAt", "CREATED AT".into()),
        ("CreatedSince", "CREATED".into()),
        ("Digest", "DIGEST".into()),
        ("ID", "IMAGE ID".into()),
        ("Repository", "REPOSITORY".into()),
        ("SharedSize", "SHARED SIZE".into()),
        ("Size", "SIZE".into()),
        ("Tag", "TAG".into()),
        ("UniqueSize", "UNIQUE SIZE".into()),
        ("VirtualSize", "VIRTUAL SIZE".into()),
    ])
}

/// Splits `name[:tag][@digest]` into (name, tag, digest).
pub(crate) fn split_reference(r: &str) -> (String, Option<String>, Option<String>) {
    let (name, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (r, None),
    };
    let slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    match name[slash..].rfind(':') {
        Some(i) => {
            let i = slash + i;
            (
                name[..i].to_string(),
                Some(name[i + 1..].to_string()),
                digest,
            )
        }
        None => (name.to_string(), None, digest),
    }
}

/// docker's `FamiliarName`: strip `docker.io/` and `library/`.
pub(crate) fn familiar_name(name: &str) -> String {
    let n = name
        .strip_prefix("docker.io/")
        .or_else(|| name.strip_prefix("index.docker.io/"))
        .unwrap_or(name);
    match n.strip_prefix("library/") {
        Some(rest) if !rest.contains('/') => rest.to_string(),
        _ => n.to_string(),
    }
}

/// docker's `ParseNormalizedNamed(...).Name()`: the fully qualified repository.
pub(crate) fn normalize_name(name: &str) -> String {
    let (first, rest) = match name.split_once('/') {
        Some((f, r)) => (f, Some(r)),
        None => (name, None),
    };
    let is_domain = first.contains('.') || first.contains(':') || first == "localhost";
    match (is_domain, rest) {
        (true, Some(_)) => name.to_string(),
        (false, Some(_)) => format!("docker.io/{name}"),
        (_, None) => format!("docker.io/library/{name}"),
    }
}

pub(crate) fn is_dangling(i: &ImageSummary) -> bool {
    let tags_none =
        i.repo_tags.is_empty() || (i.repo_tags.len() == 1 && i.repo_tags[0] == "<none>:<none>");
    let digests_none = i.repo_digests.is_empty()
        || (i.repo_digests.len() == 1 && i.repo_digests[0] == "<none>@<none>");
    tags_none && digests_none
}

/// One output row per (repository, tag[, digest]), as docker's `imageFormatTaggedAndDigest`.
fn image_rows(i: &ImageSummary, show_digests: bool) -> Vec<(String, String, String)> {
    if is_dangling(i) {
        return vec![("<none>".into(), "<none>".into(), "<none>".into())];
    }
    let mut repo_tags: Vec<(String, Vec<String>)> = Vec::new();
    for r in &i.repo_tags {
        let (name, tag, _) = split_reference(r);
        let Some(tag) = tag else { continue };
        let name = familiar_name(&name);
        match repo_tags.iter_mut().find(|(n, _)| *n == name) {
            Some((_, tags)) => tags.push(tag),
            None => repo_tags.push((name, vec![tag])),
        }
    }
    let mut repo_digests: Vec<(String, Vec<String>)> = Vec::new();
    for r in &i.repo_digests {
        let (name, _, digest) = split_reference(r);
        let Some(digest) = digest else { continue };
        let name = familiar_name(&name);
        match repo_digests.iter_mut().find(|(n, _)| *n == name) {
            Some((_, d)) => d.push(digest),
            None => repo_digests.push((name, vec![digest])),
        }
    }
    let mut rows = Vec::new();
    for (repo, tags) in &repo_tags {
        let pos = repo_digests.iter().position(|(n, _)| n == repo);
        let digests = pos.map(|p| repo_digests.remove(p).1).unwrap_or_default();
        let digests = if show_digests { digests } else { Vec::new() };
        for tag in tags {
            if digests.is_empty() {
                rows.push((repo.clone(), tag.clone(), "<none>".to_string()));
            }
            for d in &digests {
                rows.push((repo.clone(), tag.clone(), d.clone()));
            }
        }
    }
    for (repo, digests) in repo_digests {
        if show_digests {
            for d in digests {
                rows.push((repo.clone(), "<none>".into(), d));
            }
        } else {
            rows.push((repo, "<none>".into(), String::new()));
        }
    }
    rows
}

/// The row object docker's image formatter exposes to templates.
pub(crate) fn image_row(
    i: &ImageSummary,
    repo: &str,
    tag: &str,
    digest: &str,
    trunc: bool,
) -> Value {
    let id = if trunc {
        format::truncate_id(&i.id)
    } else {
        i.id.clone()
    };
    let size = units::human_size_with_precision(i.size as f64, 3);
    let (shared, unique) = if i.shared_size == -1 {
        ("N/A".to_string(), "N/A".to_string())
    } else {
        // docker formats these with HumanSize (4 digits), unlike Size.
        (
            units::human_size(i.shared_size as f64),
            units::human_size((i.size - i.shared_size) as f64),
        )
    };
    let containers = if i.containers == -1 {
        "N/A".to_string()
    } else {
        i.containers.to_string()
    };
    Value::str_obj([
        ("Containers", containers),
        ("CreatedAt", units::go_time_string(i.created)),
        ("CreatedSince", units::since_unix(i.created)),
        ("Digest", digest.to_string()),
        ("ID", id),
        ("Repository", repo.to_string()),
        ("SharedSize", shared),
        ("Size", size),
        ("Tag", tag.to_string()),
        ("UniqueSize", unique),
        // docker formats VirtualSize with HumanSize (4 digits), unlike Size.
        ("VirtualSize", units::human_size(i.size as f64)),
    ])
}

/// Renders the image list (no daemon needed; used by tests).
pub(crate) fn render_images(
    images: &[ImageSummary],
    args: &ImagesArgs,
) -> Result<String, CliError> {
    let fmt = image_format(
        args.format.as_deref().unwrap_or(""),
        args.quiet,
        args.digests,
    );
    let fmt = Format::new(&fmt, DEFAULT_IMAGE_TABLE)?;
    let mut rows = Vec::new();
    for i in images {
        for (repo, tag, digest) in image_rows(i, args.digests) {
            rows.push(image_row(i, &repo, &tag, &digest, !args.no_trunc));
        }
    }
    Ok(fmt.render_rows(&image_header(), &rows)?)
}

/// `berth images`.
pub(crate) async fn list(client: &Client, args: &ImagesArgs) -> Result<(), CliError> {
    let mut filters = parse_filters(&args.filter)?;
    if let Some(r) = &args.reference {
        filters
            .entry("reference".into())
            .or_default()
            .push(r.clone());
    }
    let opts = ListImagesOptions {
        all: args.all,
        filters: if filters.is_empty() {
            None
        } else {
            Some(filters)
        },
        ..Default::default()
    };
    let images = client
        .docker
        .list_images(Some(opts))
        .await
        .map_err(|e| client.error(e))?;
    print!("{}", render_images(&images, args)?);
    Ok(())
}

/// `berth tag`.
pub(crate) async fn tag(client: &Client, args: &TagArgs) -> Result<(), CliError> {
    let (name, tag, digest) = split_reference(&args.target);
    if digest.is_some() {
        return Err(CliError::Message(
            "refusing to create a tag with a digest reference".into(),
        ));
    }
    if name.is_empty() || name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(CliError::Message(format!(
            "invalid reference format: repository name ({name}) must be lowercase"
        )));
    }
    let opts = TagImageOptions {
        repo: Some(normalize_name(&name)),
        tag: Some(tag.unwrap_or_else(|| "latest".into())),
    };
    client
        .docker
        .tag_image(&args.source, Some(opts))
        .await
        .map_err(|e| client.error(e))
}

/// `berth rmi`.
pub(crate) async fn rmi(client: &Client, args: &RmiArgs) -> Result<(), CliError> {
    let opts = RemoveImageOptions {
        force: args.force,
        noprune: args.no_prune,
        platforms: None,
    };
    let mut errs = Vec::new();
    let mut fatal = false;
    let mut out = std::io::stdout().lock();
    for img in &args.images {
        match client
            .docker
            .remove_image(img, Some(opts.clone()), None)
            .await
        {
            Ok(items) => {
                for d in items {
                    match (d.deleted, d.untagged) {
                        (Some(del), _) if !del.is_empty() => writeln!(out, "Deleted: {del}")?,
                        (_, Some(u)) => writeln!(out, "Untagged: {u}")?,
                        _ => {}
                    }
                }
            }
            Err(e) => {
                if !is_not_found(&e) {
                    fatal = true;
                }
                errs.push(client.error(e).to_string());
            }
        }
    }
    out.flush()?;
    if errs.is_empty() {
        return Ok(());
    }
    let msg = errs.join("\n");
    if !args.force || fatal {
        return Err(CliError::Message(msg));
    }
    eprintln!("{msg}");
    Ok(())
}

const DEFAULT_HISTORY_TABLE: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
const NON_HUMAN_HISTORY_TABLE: &str =
    "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

fn history_header() -> Value {
    Value::str_obj([
        ("Comment", "COMMENT".into()),
        ("CreatedAt", "CREATED AT".into()),
        ("CreatedBy", "CREATED BY".into()),
        ("CreatedSince", "CREATED".into()),
        ("ID", "IMAGE".into()),
        ("Size", "SIZE".into()),
    ])
}

fn history_row(h: &ImageHistoryResponseItem, human: bool, trunc: bool) -> Value {
    let id = if trunc {
        format::truncate_id(&h.id)
    } else {
        h.id.clone()
    };
    let created_at = units::rfc3339_local(h.created);
    let since = if human {
        units::since_unix(h.created)
    } else {
        created_at.clone()
    };
    let by = h.created_by.replace('\t', " ");
    let by = if trunc { format::ellipsis(&by, 45) } else { by };
    let size = if human {
        units::human_size_with_precision(h.size as f64, 3)
    } else {
        h.size.to_string()
    };
    Value::str_obj([
        ("Comment", h.comment.clone()),
        ("CreatedAt", created_at),
        ("CreatedBy", by),
        ("CreatedSince", since),
        ("ID", id),
        ("Size", size),
    ])
}

/// Renders `history` output.
pub(crate) fn render_history(
    items: &[ImageHistoryResponseItem],
    args: &HistoryArgs,
) -> Result<String, CliError> {
    let source = args.format.as_deref().unwrap_or("");
    let fmt = match source {
        "" | "table" if args.quiet => QUIET_FORMAT,
        "" | "table" if !args.human => NON_HUMAN_HISTORY_TABLE,
        "" | "table" => DEFAULT_HISTORY_TABLE,
        "json" => JSON_FORMAT,
        f => f,
    };
    let fmt = Format::new(fmt, DEFAULT_HISTORY_TABLE)?;
    let rows: Vec<Value> = items
        .iter()
        .map(|h| history_row(h, args.human, !args.no_trunc))
        .collect();
    Ok(fmt.render_rows(&history_header(), &rows)?)
}

/// `berth history`.
pub(crate) async fn history(client: &Client, args: &HistoryArgs) -> Result<(), CliError> {
    let items = client
        .docker
        .image_history(&args.image)
        .await
        .map_err(|e| client.error(e))?;
    print!("{}", render_history(&items, args)?);
    Ok(())
}

/// `berth inspect` and `berth image inspect`.
pub(crate) async fn inspect(client: &Client, args: &InspectArgs) -> Result<(), CliError> {
    let kind = args.kind.as_deref().unwrap_or("");
    if !matches!(kind, "" | "image" | "container") {
        return Err(CliError::Message(format!(
            "\"{kind}\" is not a valid value for --type"
        )));
    }
    let mut found = Vec::new();
    let mut errs = Vec::new();
    for name in &args.names {
        if kind != "image" {
            let opts = bollard::query_parameters::InspectContainerOptions { size: args.size };
            match client.docker.inspect_container(name, Some(opts)).await {
                Ok(c) => {
                    found.push(Value::from_serialize(&c)?);
                    continue;
                }
                Err(e) if kind == "container" => {
                    errs.push(client.error(e).to_string());
                    continue;
                }
                Err(e) if is_not_found(&e) || is_unsupported(&e) => {}
                Err(e) => {
                    errs.push(client.error(e).to_string());
                    continue;
                }
            }
        }
        match client.docker.inspect_image(name).await {
            Ok(i) => found.push(Value::from_serialize(&i)?),
            Err(e) if kind.is_empty() && is_not_found(&e) => {
                errs.push(format!("Error: No such object: {name}"));
            }
            Err(e) => errs.push(client.error(e).to_string()),
        }
    }
    super::print_inspected(args.format.as_deref(), &found, errs)
}

fn is_unsupported(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 405 | 501,
            ..
        }
    )
}

const DANGLING_WARNING: &str =
    "WARNING! This will remove all dangling images.\nAre you sure you want to continue?";
const ALL_WARNING: &str = "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?";

/// Asks docker's `[y/N]` question on stdin; true for `y`/`Y`.
pub(crate) fn confirm(message: &str) -> Result<bool, CliError> {
    let mut out = std::io::stdout().lock();
    write!(out, "{message} [y/N] ")?;
    out.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let answer = line.trim();
    Ok(answer == "y" || answer == "Y")
}

/// The `image prune` prompt, asked before connecting (as docker does). False: cancelled.
pub(crate) fn prune_confirmed(args: &PruneArgs) -> Result<bool, CliError> {
    if args.force {
        return Ok(true);
    }
    confirm(if args.all {
        ALL_WARNING
    } else {
        DANGLING_WARNING
    })
}

/// `berth image prune` (after confirmation).
pub(crate) async fn prune(client: &Client, args: &PruneArgs) -> Result<(), CliError> {
    let mut filters = parse_filters(&args.filter)?;
    filters.insert("dangling".into(), vec![(!args.all).to_string()]);
    let opts = PruneImagesOptions {
        filters: Some(filters),
    };
    let report = client
        .docker
        .prune_images(Some(opts))
        .await
        .map_err(|e| client.error(e))?;
    let mut out = String::new();
    let deleted = report.images_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        out.push_str("Deleted Images:\n");
        for d in deleted {
            match (d.untagged, d.deleted) {
                (Some(u), _) if !u.is_empty() => out.push_str(&format!("untagged: {u}\n")),
                (_, Some(del)) => out.push_str(&format!("deleted: {del}\n")),
                _ => {}
            }
        }
        out.push('\n');
    }
    let space = report.space_reclaimed.unwrap_or(0);
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        units::human_size(space as f64)
    ));
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn summary(id: &str, tags: &[&str], digests: &[&str], size: i64, created: i64) -> ImageSummary {
        ImageSummary {
            id: id.to_string(),
            parent_id: String::new(),
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: digests.iter().map(|s| s.to_string()).collect(),
            created,
            size,
            shared_size: -1,
            labels: HashMap::new(),
            containers: -1,
            manifests: None,
            descriptor: None,
        }
    }

    fn args() -> ImagesArgs {
        ImagesArgs {
            all: false,
            digests: false,
            filter: vec![],
            format: None,
            no_trunc: false,
            quiet: false,
            reference: None,
        }
    }

    const ID: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn images_table() {
        let now = chrono::Utc::now().timestamp();
        let imgs = vec![
            summary(
                ID,
                &["busybox:latest", "bb:v1"],
                &[],
                4_270_000,
                now - 3 * 60,
            ),
            summary(
                "sha256:fedcba9876543210",
                &[],
                &[],
                512,
                now - 15 * 24 * 3600,
            ),
        ];
        let out = render_images(&imgs, &args()).unwrap();
        assert_eq!(
            out,
            "REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\n\
             busybox      latest    0123456789ab   3 minutes ago   4.27MB\n\
             bb           v1        0123456789ab   3 minutes ago   4.27MB\n\
             <none>       <none>    fedcba987654   2 weeks ago     512B\n"
        );
        let mut a = args();
        a.quiet = true;
        assert_eq!(
            render_images(&imgs, &a).unwrap(),
            "0123456789ab\n0123456789ab\nfedcba987654\n"
        );
        let mut a = args();
        a.format = Some("table {{.Repository}}\\t{{.Tag}}".into());
        assert_eq!(
            render_images(&imgs[..1], &a).unwrap(),
            "REPOSITORY   TAG\nbusybox      latest\nbb           v1\n"
        );
    }

    #[test]
    fn images_json_and_digests() {
        let now = chrono::Utc::now().timestamp();
        let imgs = vec![summary(
            ID,
            &["docker.io/library/busybox:latest"],
            &["busybox@sha256:aaaa"],
            1200,
            now,
        )];
        let mut a = args();
        a.format = Some("json".into());
        let out = render_images(&imgs, &a).unwrap();
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["Repository"], "busybox");
        assert_eq!(v["Size"], "1.2kB");
        assert_eq!(v["Digest"], "<none>");
        assert_eq!(v["Containers"], "N/A");
        assert_eq!(v["CreatedSince"], "Less than a second ago");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 11);
        let mut a = args();
        a.digests = true;
        a.no_trunc = true;
        let out = render_images(&imgs, &a).unwrap();
        assert!(
            out.starts_with("REPOSITORY   TAG       DIGEST        IMAGE ID"),
            "{out}"
        );
        assert!(
            out.contains("busybox      latest    sha256:aaaa   sha256:0123"),
            "{out}"
        );
    }

    #[test]
    fn history_table() {
        let now = chrono::Utc::now().timestamp();
        let items = vec![
            ImageHistoryResponseItem {
                id: ID.into(),
                created: now - 3600,
                created_by: "/bin/sh -c #(nop)  CMD [\"sh\"]".into(),
                tags: vec!["busybox:latest".into()],
                size: 0,
                comment: String::new(),
            },
            ImageHistoryResponseItem {
                id: "<missing>".into(),
                created: now - 3600,
                created_by: "/bin/sh -c #(nop) ADD file:7e9002edaafd4e4579b65c8f0aaabde1aeb7fd3f8d95579f7fd3443cef785fd1 in / ".into(),
                tags: vec![],
                size: 4_261_550,
                comment: String::new(),
            },
        ];
        let a = HistoryArgs {
            format: None,
            human: true,
            no_trunc: false,
            platform: None,
            quiet: false,
            image: "busybox".into(),
        };
        let out = render_history(&items, &a).unwrap();
        let want = "IMAGE          CREATED             CREATED BY                                      SIZE      COMMENT\n\
                    0123456789ab   About an hour ago   /bin/sh -c #(nop)  CMD [\"sh\"]                   0B        \n\
                    <missing>      About an hour ago   /bin/sh -c #(nop) ADD file:7e9002edaafd4e457…   4.26MB    \n";
        assert_eq!(out, want);
        let mut a = a;
        a.quiet = true;
        assert_eq!(
            render_history(&items, &a).unwrap(),
            "0123456789ab\n<missing>\n"
        );
    }

    #[test]
    fn references() {
        assert_eq!(split_reference("busybox"), ("busybox".into(), None, None));
        assert_eq!(
            split_reference("localhost:5000/bb:v1"),
            ("localhost:5000/bb".into(), Some("v1".into()), None)
        );
        assert_eq!(
            split_reference("bb@sha256:ab"),
            ("bb".into(), None, Some("sha256:ab".into()))
        );
        assert_eq!(normalize_name("bb"), "docker.io/library/bb");
        assert_eq!(normalize_name("me/bb"), "docker.io/me/bb");
        assert_eq!(normalize_name("localhost:5000/bb"), "localhost:5000/bb");
        assert_eq!(familiar_name("docker.io/library/busybox"), "busybox");
        assert_eq!(familiar_name("docker.io/me/bb"), "me/bb");
    }
}
