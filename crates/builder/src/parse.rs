//! The Dockerfile parser: parser directives, comments, line continuations, instruction words,
//! flags, JSON (exec) and shell forms, and the typed instructions with moby's checks and error
//! texts (buildkit's `frontend/dockerfile/parser` and `instructions` packages, as vendored by the
//! legacy builder). Heredocs (`RUN <<EOF`) are not supported: the legacy builder never had them.
//!
//! Owns: text → [`Dockerfile`]. Must not know: variable values (substitution is `expand`, done
//! at dispatch time), stages and build args (`plan`), or anything about images and the engine.

use std::time::Duration;

use crate::error::{BuildError, Result};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character (`\` unless `# escape=` says `` ` ``).
    pub escape: char,
    /// The `# syntax=` directive, recorded and ignored (the legacy builder has no frontends).
    pub syntax: Option<String>,
    /// The instructions in order.
    pub instructions: Vec<Instruction>,
}

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// First line (1-based).
    pub line: usize,
    /// Last line (continuations included).
    pub end_line: usize,
    /// The instruction as written, continuations joined, trimmed: what `Step N/M :` prints.
    pub original: String,
    /// What it is.
    pub kind: Kind,
}

/// A command line in exec (JSON) or shell form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandLine {
    /// Exec form: the argv. Shell form: one element, the whole text (empty for no text).
    pub args: Vec<String>,
    /// True for the JSON form; false means "prepend the SHELL".
    pub json: bool,
}

/// COPY/ADD arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopySpec {
    /// Source paths (unexpanded).
    pub sources: Vec<String>,
    /// Destination (unexpanded).
    pub dest: String,
    /// `--from` (COPY only): a stage name, index or image.
    pub from: Option<String>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link` (accepted; a plain copy for this builder).
    pub link: bool,
}

/// HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: the test is `["NONE"]`.
    None,
    /// `HEALTHCHECK [flags] CMD ...`.
    Cmd {
        /// `["CMD", argv...]` or `["CMD-SHELL", "text"]`, as Docker stores it.
        test: Vec<String>,
        /// `--interval` (zero: unset).
        interval: Duration,
        /// `--timeout`.
        timeout: Duration,
        /// `--start-period`.
        start_period: Duration,
        /// `--start-interval`.
        start_interval: Duration,
        /// `--retries` (0: unset).
        retries: i64,
    },
}

/// The instructions the legacy builder knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `FROM [--platform=p] image [AS name]`; the name is lowercased.
    From {
        /// The base (a reference, `scratch`, or an earlier stage's name), unexpanded.
        image: String,
        /// The stage name.
        name: Option<String>,
        /// `--platform`, unexpanded.
        platform: Option<String>,
    },
    /// `RUN [--network=...] cmd`; `--network` is recorded and otherwise ignored.
    Run {
        /// The command.
        cmd: CommandLine,
        /// `--network`, accepted and ignored.
        network: Option<String>,
    },
    /// `CMD`.
    Cmd(CommandLine),
    /// `ENTRYPOINT` (an empty exec form clears it).
    Entrypoint(CommandLine),
    /// `ENV` pairs, values unexpanded (quotes still in them).
    Env(Vec<(String, String)>),
    /// `ARG` names with optional defaults (unexpanded).
    Arg(Vec<(String, Option<String>)>),
    /// `LABEL` pairs, unexpanded.
    Label(Vec<(String, String)>),
    /// `COPY`.
    Copy(CopySpec),
    /// `ADD`.
    Add(CopySpec),
    /// `WORKDIR` (the rest of the line, unexpanded).
    Workdir(String),
    /// `USER` (the rest of the line).
    User(String),
    /// `EXPOSE` words (sorted, as moby sorts them), unexpanded.
    Expose(Vec<String>),
    /// `VOLUME` paths, unexpanded.
    Volume(Vec<String>),
    /// `STOPSIGNAL`.
    StopSignal(String),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `SHELL` (always JSON).
    Shell(Vec<String>),
    /// `ONBUILD` with the trigger text (the line without `ONBUILD`), stored in the image.
    Onbuild(String),
    /// `MAINTAINER` (deprecated, sets the image's author).
    Maintainer(String),
}

impl Kind {
    /// The instruction's keyword in upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Kind::From { .. } => "FROM",
            Kind::Run { .. } => "RUN",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Env(_) => "ENV",
            Kind::Arg(_) => "ARG",
            Kind::Label(_) => "LABEL",
            Kind::Copy(_) => "COPY",
            Kind::Add(_) => "ADD",
            Kind::Workdir(_) => "WORKDIR",
            Kind::User(_) => "USER",
            Kind::Expose(_) => "EXPOSE",
            Kind::Volume(_) => "VOLUME",
            Kind::StopSignal(_) => "STOPSIGNAL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
            Kind::Shell(_) => "SHELL",
            Kind::Onbuild(_) => "ONBUILD",
            Kind::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// Parses a Dockerfile's bytes; `name` is the file's name for the empty-file error.
pub fn parse(name: &str, text: &str) -> Result<Dockerfile> {
    if text.is_empty() {
        return Err(BuildError::EmptyDockerfile(name.to_string()));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    let lines: Vec<&str> = lines
        .into_iter()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();

    let mut directives = Directives::default();
    let mut instructions = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        i += 1;
        if directives.line(raw)? {
            continue;
        }
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let start = i;
        let (first, mut done) = trim_continuation(line, directives.escape);
        let mut text = first.to_string();
        while !done && i < lines.len() {
            let raw = lines[i];
            i += 1;
            let lead = raw.trim_start();
            if lead.starts_with('#') || lead.is_empty() {
                continue;
            }
            let (part, end) = trim_continuation(raw, directives.escape);
            text.push_str(part);
            done = end;
        }
        instructions.push(node_from_line(&text, directives.escape, start, i)?);
    }
    if instructions.is_empty() {
        return Err(BuildError::NoInstructions);
    }
    Ok(Dockerfile {
        escape: directives.escape,
        syntax: directives.syntax,
        instructions,
    })
}

/// Parses one instruction line (used for ONBUILD triggers run in a child build).
pub fn parse_line(line: &str, escape: char, lineno: usize) -> Result<Instruction> {
    node_from_line(line, escape, lineno, lineno)
}

/// The parser-directive state: directives are read only until the first line that is not one.
struct Directives {
    done: bool,
    escape: char,
    seen: Vec<String>,
    syntax: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Self {
            done: false,
            escape: '\\',
            seen: Vec::new(),
            syntax: None,
        }
    }
}

impl Directives {
    /// Returns true when `raw` was a directive (so it is consumed).
    fn line(&mut self, raw: &str) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let Some((key, value)) = directive(raw) else {
            self.done = true;
            return Ok(false);
        };
        if !matches!(key.as_str(), "escape" | "syntax" | "check") {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&key) {
            return Err(BuildError::Directive(format!(
                "only one {key} parser directive can be used"
            )));
        }
        match key.as_str() {
            "escape" => {
                self.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(BuildError::Directive(format!(
                            "invalid escape token '{other}' does not match ` or \\"
                        )));
                    }
                }
            }
            "syntax" => self.syntax = Some(value),
            _ => {}
        }
        self.seen.push(key);
        Ok(true)
    }
}

/// `#\s*name\s*=\s*value\s*` with name `[a-zA-Z][a-zA-Z0-9]*`: (lowercased name, value).
fn directive(raw: &str) -> Option<(String, String)> {
    let rest = raw.strip_prefix('#')?.trim_start();
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let value = rest.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.to_string()))
}

/// Strips a trailing escape character (plus trailing blanks): (text, end of instruction?).
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(rest) => (rest, false),
        None => (line, true),
    }
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{b}' | '\u{c}' | '\r')
}

/// Splits the keyword from the rest at the first run of whitespace.
fn split_command(line: &str) -> (&str, &str) {
    let line = line.trim();
    match line.find(is_ws) {
        Some(i) => (&line[..i], line[i..].trim_start_matches(is_ws)),
        None => (line, ""),
    }
}

/// Takes the leading `--flag[=value]` words off `rest` (quotes in them removed): (flags, rest).
fn extract_flags(rest: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut rest = rest.trim_start();
    while rest.starts_with("--") {
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => word.push(c),
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c.is_whitespace() => {
                    end = i;
                    break;
                }
                None => word.push(c),
            }
        }
        rest = rest[end..].trim_start();
        if word == "--" {
            break;
        }
        flags.push(word);
    }
    (flags, rest.trim())
}

/// moby's BFlags: the flags an instruction declares, checked as buildkit checks them.
struct Flags {
    given: Vec<String>,
    values: Vec<(&'static str, bool, Option<String>)>,
}

impl Flags {
    fn new(given: Vec<String>) -> Self {
        Self {
            given,
            values: Vec::new(),
        }
    }

    fn string(mut self, name: &'static str) -> Self {
        self.values.push((name, false, None));
        self
    }

    fn boolean(mut self, name: &'static str) -> Self {
        self.values.push((name, true, None));
        self
    }

    fn parse(mut self) -> std::result::Result<Self, String> {
        for arg in std::mem::take(&mut self.given) {
            let Some(arg) = arg.strip_prefix("--") else {
                return Err(format!("Arg {arg:?} must start with \"--\""));
            };
            let (name, value) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (arg, None),
            };
            let Some(slot) = self.values.iter_mut().find(|(n, _, _)| *n == name) else {
                return Err(format!("Unknown flag: {name}"));
            };
            if slot.2.is_some() {
                return Err(format!("Duplicate flag specified: {name}"));
            }
            let value = if slot.1 {
                match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    None | Some("true") => "true".to_string(),
                    Some("false") => "false".to_string(),
                    Some(_) => {
                        return Err(format!(
                            "expecting boolean value for flag {name}, not: {}",
                            value.unwrap_or_default()
                        ));
                    }
                }
            } else {
                value.ok_or_else(|| format!("Missing a value on flag: {name}"))?
            };
            slot.2 = Some(value);
        }
        Ok(self)
    }

    fn get(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(n, _, _)| *n == name)
            .and_then(|(_, _, v)| v.clone())
    }

    fn is_true(&self, name: &str) -> bool {
        self.get(name).as_deref() == Some("true")
    }
}

/// The JSON form: `Ok(Some(argv))`, `Ok(None)` when it is not JSON (shell form), or the
/// not-strings error.
fn parse_json(rest: &str) -> std::result::Result<Option<Vec<String>>, String> {
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(rest)
    else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(
                "when using JSON array syntax, arrays must be comprised of strings only"
                    .to_string(),
            ),
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map(Some)
}

/// `parseMaybeJSON`: the JSON form or the whole text as one shell-form argument.
fn maybe_json(rest: &str) -> std::result::Result<CommandLine, String> {
    if rest.is_empty() {
        return Ok(CommandLine::default());
    }
    Ok(match parse_json(rest)? {
        Some(args) => CommandLine { args, json: true },
        None => CommandLine {
            args: vec![rest.to_string()],
            json: false,
        },
    })
}

/// `parseMaybeJSONToList`: the JSON form or whitespace-separated words.
fn maybe_json_list(rest: &str) -> std::result::Result<Vec<String>, String> {
    Ok(match parse_json(rest)? {
        Some(args) => args,
        None => whitespace_words(rest),
    })
}

fn whitespace_words(rest: &str) -> Vec<String> {
    rest.split(is_ws)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// `parseWords`: words split on unquoted whitespace; quotes and escapes are kept (they are
/// removed later by substitution), an escape at the very end is dropped.
pub(crate) fn quoted_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            if c == escape && q != '\'' {
                match chars.next() {
                    None => {
                        quote = None;
                        continue;
                    }
                    Some(n) => {
                        word.push(c);
                        word.push(n);
                        continue;
                    }
                }
            }
            word.push(c);
            continue;
        }
        if !in_word {
            if c.is_whitespace() {
                continue;
            }
            in_word = true;
        }
        if c.is_whitespace() {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            in_word = false;
            blank_ok = false;
            continue;
        }
        if c == '\'' || c == '"' {
            quote = Some(c);
            blank_ok = true;
        }
        if c == escape {
            match chars.next() {
                None => continue,
                Some(n) => {
                    word.push(c);
                    word.push(n);
                    continue;
                }
            }
        }
        word.push(c);
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// `parseNameVal` for ENV and LABEL: the old `KEY value` form or `k=v` words.
fn name_vals(
    rest: &str,
    keyword: &str,
    escape: char,
) -> std::result::Result<Vec<(String, String)>, String> {
    let words = quoted_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let (k, v) = split_command(rest);
        if v.is_empty() {
            return Err(format!("{keyword} must have two arguments"));
        }
        return Ok(vec![(k.to_string(), v.to_string())]);
    }
    words
        .iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value")
                })
        })
        .collect()
}

/// Go's `time.ParseDuration` (the subset Dockerfiles use: decimal numbers with units).
pub(crate) fn parse_go_duration(s: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("time: invalid duration {s:?}");
    let body = s.strip_prefix('+').unwrap_or(s);
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() || body.starts_with('-') {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = body;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration {s:?}"))?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => return Err(format!("time: unknown unit {other:?} in duration {s:?}")),
        };
        total += value * nanos;
        rest = &rest[u..];
    }
    Ok(Duration::from_nanos(total as u64))
}

fn interval(v: Option<String>, name: &str) -> std::result::Result<Duration, String> {
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return Ok(Duration::ZERO);
    };
    let d = parse_go_duration(&v)?;
    if !d.is_zero() && d < Duration::from_millis(1) {
        return Err(format!("Interval {name:?} cannot be less than 1ms"));
    }
    Ok(d)
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

fn node_from_line(line: &str, escape: char, start: usize, end: usize) -> Result<Instruction> {
    let original = line.trim().to_string();
    let (cmd, rest) = split_command(line);
    let (flags, rest) = extract_flags(rest);
    let kind = typed(cmd, flags, rest, &original, escape)
        .map_err(|message| BuildError::syntax(start, message))?;
    Ok(Instruction {
        line: start,
        end_line: end,
        original,
        kind,
    })
}

fn exactly_one(keyword: &str, rest: &str) -> std::result::Result<String, String> {
    if rest.is_empty() {
        return Err(format!("{keyword} requires exactly one argument"));
    }
    Ok(rest.to_string())
}

fn at_least_one(keyword: &str) -> String {
    format!("{keyword} requires at least one argument")
}

fn copy_spec(
    keyword: &str,
    flags: Vec<String>,
    rest: &str,
    with_from: bool,
) -> std::result::Result<CopySpec, String> {
    let mut args = maybe_json_list(rest)?;
    if args.len() < 2 {
        return Err(format!(
            "{keyword} requires at least two arguments, but only one was provided. Destination \
             could not be determined"
        ));
    }
    let mut f = Flags::new(flags)
        .string("chown")
        .string("chmod")
        .boolean("link");
    f = if with_from {
        f.string("from")
    } else {
        f.boolean("keep-git-dir").string("checksum")
    };
    let f = f.parse()?;
    let dest = args.pop().unwrap_or_default();
    Ok(CopySpec {
        sources: args,
        dest,
        from: f.get("from"),
        chown: f.get("chown"),
        chmod: f.get("chmod"),
        link: f.is_true("link"),
    })
}

fn typed(
    cmd: &str,
    flags: Vec<String>,
    rest: &str,
    original: &str,
    escape: char,
) -> std::result::Result<Kind, String> {
    let plain = |flags: Vec<String>| Flags::new(flags).parse().map(|_| ());
    Ok(match cmd.to_ascii_lowercase().as_str() {
        "from" => {
            let words = whitespace_words(rest);
            let name = match words.len() {
                3 if words[1].eq_ignore_ascii_case("as") => {
                    let name = words[2].to_ascii_lowercase();
                    if !valid_stage_name(&name) {
                        return Err(format!(
                            "invalid name for build stage: {:?}, name can't start with a number \
                             or contain symbols",
                            words[2]
                        ));
                    }
                    Some(name)
                }
                1 => None,
                _ => return Err("FROM requires either one or three arguments".to_string()),
            };
            let f = Flags::new(flags).string("platform").parse()?;
            Kind::From {
                image: words[0].clone(),
                name,
                platform: f.get("platform"),
            }
        }
        "run" => {
            let f = Flags::new(flags)
                .string("network")
                .string("mount")
                .string("security")
                .parse()?;
            // The legacy builder has no mounts or security modes (moby's text); `--network`
            // is accepted and ignored.
            for name in ["mount", "security"] {
                if f.get(name).is_some() {
                    return Err(format!(
                        "the --{name} option requires BuildKit. Refer to \
                         https://docs.docker.com/go/buildkit/ to learn how to build images with \
                         BuildKit enabled"
                    ));
                }
            }
            Kind::Run {
                cmd: maybe_json(rest)?,
                network: f.get("network"),
            }
        }
        "cmd" => {
            plain(flags)?;
            Kind::Cmd(maybe_json(rest)?)
        }
        "entrypoint" => {
            plain(flags)?;
            Kind::Entrypoint(maybe_json(rest)?)
        }
        "shell" => {
            plain(flags)?;
            let line = maybe_json(rest)?;
            if line.args.is_empty() {
                return Err(at_least_one("SHELL"));
            }
            if !line.json {
                return Err("SHELL requires the arguments to be in JSON form".to_string());
            }
            Kind::Shell(line.args)
        }
        "env" | "label" => {
            let keyword = cmd.to_ascii_uppercase();
            let pairs = name_vals(rest, &keyword, escape)?;
            if pairs.is_empty() {
                return Err(at_least_one(&keyword));
            }
            if pairs.iter().any(|(k, _)| k.is_empty()) {
                return Err(format!("{keyword} names can not be blank"));
            }
            plain(flags)?;
            if keyword == "ENV" {
                Kind::Env(pairs)
            } else {
                Kind::Label(pairs)
            }
        }
        "arg" => {
            let words = quoted_words(rest, escape);
            if words.is_empty() {
                return Err(at_least_one("ARG"));
            }
            let mut args = Vec::new();
            for w in words {
                match w.split_once('=') {
                    Some(("", _)) => return Err("ARG names can not be blank".to_string()),
                    Some((k, v)) => args.push((k.to_string(), Some(v.to_string()))),
                    None => args.push((w, None)),
                }
            }
            plain(flags)?;
            Kind::Arg(args)
        }
        "copy" => Kind::Copy(copy_spec("COPY", flags, rest, true)?),
        "add" => Kind::Add(copy_spec("ADD", flags, rest, false)?),
        "workdir" => {
            let path = exactly_one("WORKDIR", rest)?;
            plain(flags)?;
            Kind::Workdir(path)
        }
        "user" => {
            let user = exactly_one("USER", rest)?;
            plain(flags)?;
            Kind::User(user)
        }
        "maintainer" => {
            let who = exactly_one("MAINTAINER", rest)?;
            plain(flags)?;
            Kind::Maintainer(who)
        }
        "stopsignal" => Kind::StopSignal(exactly_one("STOPSIGNAL", rest)?),
        "expose" => {
            let mut ports = whitespace_words(rest);
            if ports.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            plain(flags)?;
            ports.sort();
            Kind::Expose(ports)
        }
        "volume" => {
            let vols = maybe_json_list(rest)?;
            if vols.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            plain(flags)?;
            let mut out = Vec::new();
            for v in vols {
                let v = v.trim();
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".to_string());
                }
                out.push(v.to_string());
            }
            Kind::Volume(out)
        }
        "healthcheck" => Kind::Healthcheck(healthcheck(flags, rest)?),
        "onbuild" => {
            if rest.is_empty() {
                return Err(at_least_one("ONBUILD"));
            }
            plain(flags)?;
            let (trigger, _) = split_command(rest);
            let trigger = trigger.to_ascii_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string());
                }
                "MAINTAINER" | "FROM" => {
                    return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"));
                }
                _ => {}
            }
            let expr = original
                .get(7..)
                .map(|s| s.trim_start().to_string())
                .unwrap_or_default();
            Kind::Onbuild(expr)
        }
        _ => return Err(format!("unknown instruction: {}", cmd.to_ascii_uppercase())),
    })
}

fn healthcheck(flags: Vec<String>, rest: &str) -> std::result::Result<Healthcheck, String> {
    if rest.is_empty() {
        return Err(at_least_one("HEALTHCHECK"));
    }
    let (typ, args) = split_command(rest);
    let typ = typ.to_ascii_uppercase();
    if typ == "NONE" {
        if !args.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".to_string());
        }
        return Ok(Healthcheck::None);
    }
    let f = Flags::new(flags)
        .string("interval")
        .string("timeout")
        .string("start-period")
        .string("start-interval")
        .string("retries")
        .parse()?;
    if typ != "CMD" {
        return Err(format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)"));
    }
    let line = maybe_json(args)?;
    if line.args.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".to_string());
    }
    let mut test = vec![if line.json { "CMD" } else { "CMD-SHELL" }.to_string()];
    test.extend(line.args);
    let retries = match f.get("retries").filter(|r| !r.is_empty()) {
        None => 0,
        Some(r) => {
            let n: i64 = r
                .parse()
                .map_err(|_| format!("strconv.ParseInt: parsing {r:?}: invalid syntax"))?;
            if n < 1 {
                return Err(format!("--retries must be at least 1 (not {n})"));
            }
            n
        }
    };
    Ok(Healthcheck::Cmd {
        test,
        interval: interval(f.get("interval"), "interval")?,
        timeout: interval(f.get("timeout"), "timeout")?,
        start_period: interval(f.get("start-period"), "start-period")?,
        start_interval: interval(f.get("start-interval"), "start-interval")?,
        retries,
    })
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
