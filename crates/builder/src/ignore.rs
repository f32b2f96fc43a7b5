//! `.dockerignore` with Docker's rules (moby `patternmatcher` and `patternmatcher/ignorefile`):
//! lines starting with `#` are comments, blanks are trimmed, `!` makes an exception, patterns
//! are `filepath.Clean`ed with a leading `/` dropped; Go's `filepath.Match` syntax (`*`, `?`,
//! `[...]`, `\` escapes) plus `**` for any number of directories; a pattern that matches a
//! parent directory matches everything below it; the last matching pattern wins.
//!
//! Also the two places the files themselves matter: the client still sends the Dockerfile and
//! `.dockerignore` (it adds exceptions for them, as the docker CLI's
//! `TrimBuildFilesFromExcludes`), and the daemon then removes them from the context when the
//! patterns exclude them (moby's `removeDockerfile`), so `COPY .` never sees them.
//!
//! Owns: pattern parsing and matching on `/`-separated relative paths. Must not know: the file
//! system (callers walk their own trees) or tar.

use regex::Regex;

use crate::error::{BuildError, Result};

/// One compiled pattern.
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exclusion: bool,
    re: Regex,
}

/// A `.dockerignore`'s patterns, compiled.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

/// Reads a `.dockerignore`'s text into cleaned patterns (`ignorefile.ReadAll`).
pub fn read_patterns(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut p = line.trim();
        if p.is_empty() {
            continue;
        }
        let invert = p.starts_with('!');
        if invert {
            p = p[1..].trim();
        }
        let mut cleaned = if p.is_empty() {
            String::new()
        } else {
            clean(p)
        };
        if cleaned.len() > 1 && cleaned.starts_with('/') {
            cleaned.remove(0);
        }
        out.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    out
}

/// Go's `path.Clean` for `/`-separated paths.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_string(),
        (false, false) => body,
    }
}

fn compile(pattern: &str) -> Result<Regex> {
    let bad = || BuildError::Invalid("syntax error in pattern".to_string());
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if in_class {
            match c {
                ']' => {
                    in_class = false;
                    re.push(']');
                }
                '\\' => {
                    let n = chars.get(i).ok_or_else(bad)?;
                    i += 1;
                    re.push_str(&regex::escape(&n.to_string()));
                }
                '^' if re.ends_with('[') => re.push('^'),
                '-' => re.push('-'),
                c => re.push_str(&regex::escape(&c.to_string())),
            }
            continue;
        }
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                in_class = true;
                re.push('[');
            }
            '\\' => match chars.get(i) {
                Some(n) => {
                    i += 1;
                    re.push_str(&regex::escape(&n.to_string()));
                }
                None => re.push_str("\\\\"),
            },
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    if in_class {
        return Err(bad());
    }
    re.push('$');
    Regex::new(&re).map_err(|_| bad())
}

impl Ignore {
    /// Compiles patterns as [`read_patterns`] gives them (`patternmatcher.New`).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self> {
        let mut out = Vec::new();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let p = clean(p);
            let (exclusion, body) = match p.strip_prefix('!') {
                Some("") => {
                    return Err(BuildError::Invalid(
                        "illegal exclusion pattern: \"!\"".to_string(),
                    ));
                }
                Some(rest) => (true, rest.to_string()),
                None => (false, p),
            };
            out.push(Pattern {
                re: compile(&body)?,
                text: body,
                exclusion,
            });
        }
        Ok(Self { patterns: out })
    }

    /// Parses and compiles a `.dockerignore` text.
    pub fn from_text(text: &str) -> Result<Self> {
        Self::new(&read_patterns(text))
    }

    /// True when there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the relative path `path` (`/`-separated) is excluded from the context
    /// (`MatchesOrParentMatches`).
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean(path);
        let parents: Vec<&str> = match path.rfind('/') {
            Some(i) => path[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.re.is_match(&path);
            if !hit {
                for n in 1..=parents.len() {
                    if p.re.is_match(&parents[..n].join("/")) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether a walk can skip the directory `dir` entirely: it is excluded and no exception
    /// pattern could re-include something below it (moby's archive walk rule: an exception
    /// whose text starts with the directory's path keeps the walk going).
    pub fn can_skip_dir(&self, dir: &str) -> bool {
        if !self.excluded(dir) {
            return false;
        }
        let prefix = format!("{}/", clean(dir));
        !self
            .patterns
            .iter()
            .any(|p| p.exclusion && format!("{}/", p.text).starts_with(&prefix))
    }
}

/// The patterns a client sends the context with: the given ones plus exceptions keeping
/// `.dockerignore` and the Dockerfile (relative path) in the upload when they are excluded.
pub fn patterns_for_upload(patterns: &[String], dockerfile: &str) -> Result<Vec<String>> {
    let ignore = Ignore::new(patterns)?;
    let mut out = patterns.to_vec();
    for keep in [".dockerignore", dockerfile] {
        if ignore.excluded(keep) {
            out.push(format!("!{keep}"));
        }
    }
    Ok(out)
}

/// The build files the daemon removes from a received context before any COPY: those of
/// `.dockerignore` and the Dockerfile that the context's `.dockerignore` text excludes.
pub fn files_to_remove(dockerignore: &str, dockerfile: &str) -> Result<Vec<String>> {
    let ignore = Ignore::from_text(dockerignore)?;
    Ok([".dockerignore", dockerfile]
        .into_iter()
        .filter(|f| ignore.excluded(f))
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(patterns: &[&str], path: &str) -> bool {
        Ignore::new(patterns).unwrap().excluded(path)
    }

    #[test]
    fn reading_cleans_and_skips_comments() {
        let text =
            "\u{feff}# comment\n  \n*.md\n/abs/x\n./rel//y/\n ! keep.md \n#!x\n  #not a comment\n";
        assert_eq!(
            read_patterns(text),
            vec!["*.md", "abs/x", "rel/y", "!keep.md", "#not a comment"]
        );
    }

    #[test]
    fn matching_table() {
        // Cases from moby's patternmatcher tests and the .dockerignore reference.
        let cases: &[(&[&str], &str, bool)] = &[
            (&["*"], "fileutils.go", true),
            (&["*.go"], "fileutils.go", true),
            (&["*.go"], "a/fileutils.go", false),
            (&["*/*.go"], "a/fileutils.go", true),
            (&["**/*.go"], "a/b/fileutils.go", true),
            (&["**/*.go"], "fileutils.go", true),
            (&["**"], "a/b/c", true),
            (&["a/**"], "a/b/c", true),
            (&["a/**"], "a", false),
            (&["a/**/c"], "a/c", true),
            (&["a/**/c"], "a/b/x/c", true),
            (&["**/foo"], "foo", true),
            (&["**/foo"], "x/y/foo", true),
            (&["temp?"], "temp1", true),
            (&["temp?"], "temp/", false),
            (&["[a-c]x"], "bx", true),
            (&["[^a-c]x"], "bx", false),
            (&["[^a-c]x"], "dx", true),
            (&["\\*x"], "*x", true),
            (&["\\*x"], "ax", false),
            (&["a.b"], "axb", false),
            (&["docs"], "docs/a/b.md", true),
            (&["docs/"], "docs/a", true),
            (&["*.md", "!README.md"], "README.md", false),
            (&["*.md", "!README.md"], "CHANGES.md", true),
            (
                &["*.md", "!README*.md", "README-secret.md"],
                "README-secret.md",
                true,
            ),
            (
                &["*.md", "README-secret.md", "!README*.md"],
                "README-secret.md",
                false,
            ),
            (&["dir", "!dir/keep"], "dir/keep", false),
            (&["dir", "!dir/keep"], "dir/other", true),
            (&["!x"], "x", false),
            (&["x"], "x/", true),
        ];
        for (patterns, path, want) in cases {
            assert_eq!(m(patterns, path), *want, "{patterns:?} on {path}");
        }
    }

    #[test]
    fn leading_slash_is_relative_to_the_context() {
        let ig = Ignore::from_text("/docs\n").unwrap();
        assert!(ig.excluded("docs/x"));
        assert!(!ig.excluded("a/docs"));
    }

    #[test]
    fn bad_patterns() {
        assert!(Ignore::new(&["!"]).is_err());
        assert_eq!(
            Ignore::new(&["[a"]).unwrap_err().to_string(),
            "syntax error in pattern"
        );
    }

    #[test]
    fn directory_skipping() {
        let ig = Ignore::new(&["node_modules", "build", "!build/keep.txt"]).unwrap();
        assert!(ig.can_skip_dir("node_modules"));
        assert!(!ig.can_skip_dir("build"));
        assert!(!ig.can_skip_dir("src"));
        assert!(ig.excluded("build/other"));
        assert!(!ig.excluded("build/keep.txt"));
    }

    #[test]
    fn build_files_are_sent_but_removed() {
        let pats = read_patterns("*\n");
        let up = patterns_for_upload(&pats, "Dockerfile").unwrap();
        assert_eq!(up, vec!["*", "!.dockerignore", "!Dockerfile"]);
        let ig = Ignore::new(&up).unwrap();
        assert!(!ig.excluded("Dockerfile"));
        assert!(ig.excluded("src/main.rs"));
        assert_eq!(
            files_to_remove("*\n", "Dockerfile").unwrap(),
            vec![".dockerignore", "Dockerfile"]
        );
        assert!(files_to_remove("*.md\n", "Dockerfile").unwrap().is_empty());
        assert_eq!(
            files_to_remove("Dockerfile\n", "Dockerfile").unwrap(),
            vec!["Dockerfile"]
        );
    }

    #[test]
    fn context_matches_the_docker_cli() {
        // What `COPY . /ctx` saw with docker CLI 28 + dockerd 20.10 for this .dockerignore.
        let dockerignore = "# comment\n*.md\n!README*.md\nREADME-secret.md\n/docs\nbuild\n\
                            !build/keep.txt\nnode_modules\n**/*.go\n!src/deep/*.go\ntemp?\n\
                            Dockerfile\n.dockerignore\n";
        let files = [
            "README.md",
            "CHANGES.md",
            "README-secret.md",
            "docs/a/b.md",
            "build/keep.txt",
            "build/other",
            "node_modules/x/y",
            "src/main.go",
            "src/deep/x.go",
            "temp1",
            "tempxx",
            "[x]",
            "Dockerfile",
            ".dockerignore",
        ];
        let upload = patterns_for_upload(&read_patterns(dockerignore), "Dockerfile").unwrap();
        let ig = Ignore::new(&upload).unwrap();
        let removed = files_to_remove(dockerignore, "Dockerfile").unwrap();
        let seen: Vec<&str> = files
            .iter()
            .copied()
            .filter(|f| !ig.excluded(f) && !removed.iter().any(|r| r == f))
            .collect();
        assert_eq!(
            seen,
            vec![
                "README.md",
                "build/keep.txt",
                "src/deep/x.go",
                "tempxx",
                "[x]"
            ]
        );
        assert!(ig.can_skip_dir("node_modules"));
        assert!(ig.can_skip_dir("docs"));
        assert!(!ig.can_skip_dir("build"));
    }

    #[test]
    fn go_clean() {
        for (i, o) in [
            ("./a//b/", "a/b"),
            ("/", "/"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            (".", "."),
            ("a/./b/../c", "a/c"),
        ] {
            assert_eq!(clean(i), o);
        }
    }
}
