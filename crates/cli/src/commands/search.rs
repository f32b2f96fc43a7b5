//! `berth search TERM`: `GET /images/search?term=&limit=&filters=` with `X-Registry-Auth`
//! for the term's registry, printed with docker's search formatter (`NAME DESCRIPTION STARS
//! OFFICIAL`; descriptions on one line, cut to 45 characters unless `--no-trunc`; `[OK]` for
//! official images, `true`/`false` in JSON; results in the registry's order).

use api_types::models::ImageSearchResponseItem;
use clap::Args;

use super::{FORMAT_HELP, parse_filters};
use crate::client::{CliError, Client};
use crate::format::{Format, Value, ellipsis};
use crate::raw::query_escape;

const DEFAULT_SEARCH_TABLE: &str =
    "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}";
const JSON_FORMAT: &str = "{{json .}}";
/// Docker's description width in the table.
const DESCRIPTION_WIDTH: usize = 45;

#[derive(Debug, Args)]
pub(crate) struct SearchArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub(crate) filter: Vec<String>,
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    pub(crate) format: Option<String>,
    /// Max number of search results
    #[arg(long, value_name = "int", default_value_t = 0)]
    pub(crate) limit: i64,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    #[arg(value_name = "TERM")]
    pub(crate) term: String,
}

/// The registry a search term names (moby's `splitReposSearchTerm`): its host when the first
/// component has a `.` or `:` or is `localhost`, else Docker Hub.
fn index_of(term: &str) -> &str {
    match term.split_once('/') {
        Some((host, _)) if host.contains(['.', ':']) || host == "localhost" => host,
        _ => "docker.io",
    }
}

/// The request path: `term`, `limit` when positive (as docker's client sends it), `filters`.
fn request_path(args: &SearchArgs) -> Result<String, CliError> {
    let mut path = format!("/images/search?term={}", query_escape(&args.term));
    if args.limit > 0 {
        path.push_str(&format!("&limit={}", args.limit));
    }
    let filters = parse_filters(&args.filter)?;
    if !filters.is_empty() {
        // docker's map form: {"key":{"value":true}}.
        let map: serde_json::Map<String, serde_json::Value> = filters
            .into_iter()
            .map(|(k, vs)| {
                let inner = vs
                    .into_iter()
                    .map(|v| (v, serde_json::Value::Bool(true)))
                    .collect();
                (k, serde_json::Value::Object(inner))
            })
            .collect();
        path.push_str(&format!(
            "&filters={}",
            query_escape(&serde_json::Value::Object(map).to_string())
        ));
    }
    Ok(path)
}

/// `berth search`.
pub(crate) async fn search(client: &Client, args: &SearchArgs) -> Result<(), CliError> {
    let path = request_path(args)?;
    let headers: Vec<String> = super::login::registry_auth_header(index_of(&args.term))
        .map(|h| format!("X-Registry-Auth: {h}"))
        .into_iter()
        .collect();
    let results: Vec<ImageSearchResponseItem> =
        crate::raw::get_json_with(client, &path, &headers).await?;
    print!("{}", render(&results, args)?);
    Ok(())
}

/// The output for these results (no daemon needed; used by tests).
fn render(results: &[ImageSearchResponseItem], args: &SearchArgs) -> Result<String, CliError> {
    let fmt = match args.format.as_deref().unwrap_or("") {
        "" | "table" => DEFAULT_SEARCH_TABLE,
        "json" => JSON_FORMAT,
        f => f,
    };
    // docker's searchContext words booleans as `true`/`false` when marshalled as JSON.
    let json = fmt.replace(' ', "").contains("{{json.}}");
    let fmt = Format::new(fmt, DEFAULT_SEARCH_TABLE)?;
    let rows: Vec<Value> = results
        .iter()
        .map(|r| row(r, !args.no_trunc, json))
        .collect();
    Ok(fmt.render_rows(&header(), &rows)?)
}

fn header() -> Value {
    Value::str_obj([
        ("Description", "DESCRIPTION".into()),
        ("IsOfficial", "OFFICIAL".into()),
        ("Name", "NAME".into()),
        ("StarCount", "STARS".into()),
    ])
}

/// One result as docker's search formatter shows it (fields in `--format json` order; the
/// deprecated `IsAutomated` is gone from docker's formatter).
fn row(r: &ImageSearchResponseItem, trunc: bool, json: bool) -> Value {
    let official = match (r.is_official == Some(true), json) {
        (true, true) => "true",
        (true, false) => "[OK]",
        (false, true) => "false",
        (false, false) => "",
    };
    let desc = r
        .description
        .as_deref()
        .unwrap_or_default()
        .replace(['\n', '\r'], " ");
    let desc = if trunc {
        ellipsis(&desc, DESCRIPTION_WIDTH)
    } else {
        desc
    };
    Value::str_obj([
        ("Description", desc),
        ("IsOfficial", official.to_string()),
        ("Name", r.name.clone().unwrap_or_default()),
        ("StarCount", r.star_count.unwrap_or_default().to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> SearchArgs {
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            a: SearchArgs,
        }
        let mut argv = vec!["search"];
        argv.extend_from_slice(extra);
        <P as clap::Parser>::parse_from(argv).a
    }

    fn item(name: &str, desc: &str, stars: i64, official: bool) -> ImageSearchResponseItem {
        ImageSearchResponseItem {
            name: Some(name.into()),
            description: Some(desc.into()),
            star_count: Some(stars),
            is_official: Some(official),
            is_automated: Some(false),
        }
    }

    #[test]
    fn paths_carry_limit_and_filters() {
        assert_eq!(
            request_path(&args(&["busybox"])).unwrap(),
            "/images/search?term=busybox"
        );
        assert_eq!(
            request_path(&args(&["--limit", "3", "localhost:5000/a b"])).unwrap(),
            "/images/search?term=localhost%3A5000%2Fa+b&limit=3"
        );
        let p = request_path(&args(&["-f", "is-official=true", "x"])).unwrap();
        assert_eq!(
            p,
            "/images/search?term=x&filters=%7B%22is-official%22%3A%7B%22true%22%3Atrue%7D%7D"
        );
        assert!(request_path(&args(&["-f", "stars", "x"])).is_err());
    }

    #[test]
    fn index_of_terms() {
        assert_eq!(index_of("busybox"), "docker.io");
        assert_eq!(index_of("someone/tool"), "docker.io");
        assert_eq!(index_of("localhost:5000/test"), "localhost:5000");
        assert_eq!(index_of("ghcr.io/x/y"), "ghcr.io");
    }

    #[test]
    fn table_like_docker() {
        let long = "A very long description that goes on\nand on past forty-five characters";
        let rs = [
            item("busybox", long, 3000, true),
            item("me/bb", "", 0, false),
        ];
        let out = render(&rs, &args(&["x"])).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("NAME"), "{out}");
        assert!(lines[0].contains("DESCRIPTION") && lines[0].ends_with("STARS     OFFICIAL"));
        assert!(lines[1].contains("A very long description that goes on and on …"));
        assert!(lines[1].ends_with("3000      [OK]"), "{out}");
        assert!(lines[2].starts_with("me/bb") && lines[2].trim_end().ends_with('0'));

        let out = render(&rs, &args(&["--no-trunc", "x"])).unwrap();
        assert!(out.contains("on and on past forty-five characters"));

        let out = render(&rs[1..], &args(&["--format", "json", "x"])).unwrap();
        assert_eq!(
            out,
            "{\"Description\":\"\",\"IsOfficial\":\"false\",\"Name\":\"me/bb\",\"StarCount\":\"0\"}\n"
        );
        let out = render(&rs, &args(&["--format", "{{.Name}}: {{.StarCount}}", "x"])).unwrap();
        assert_eq!(out, "busybox: 3000\nme/bb: 0\n");
    }
}
