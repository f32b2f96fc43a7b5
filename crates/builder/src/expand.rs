//! Variable substitution with Docker's shell lexer (moby/buildkit `frontend/dockerfile/shell`):
//! `$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`, `${VAR:?msg}`,
//! `${VAR?msg}`, and the pattern forms of the lexer moby's legacy builder uses since it moved to
//! BuildKit's (`${VAR#p}`, `${VAR##p}`, `${VAR%p}`, `${VAR%%p}`, `${VAR/p/r}`, `${VAR//p/r}`;
//! Docker 20.10's own lexer had none); single quotes literal, double quotes expand, the escape
//! character escapes outside quotes (inside double quotes only `"`, `$` and itself); word
//! splitting for the multi-word instructions.
//!
//! Which instructions expand (moby's `SupportsSingleWordExpansion` list): ADD, ARG, COPY, ENV,
//! EXPOSE, FROM (with the global ARGs only), LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR; RUN, CMD,
//! ENTRYPOINT, SHELL, HEALTHCHECK and ONBUILD are left to the shell / the child build.
//!
//! Owns: the lexer. Must not know: where the variables come from (`plan`/`execute` hand them in).

use std::collections::{BTreeMap, HashMap};

use crate::error::{BuildError, Result};

/// Where variable values come from.
pub trait Vars {
    /// The value of `name`, `None` when unset.
    fn var(&self, name: &str) -> Option<String>;
}

impl Vars for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Vars for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// `KEY=value` lists (a config's Env): the first entry for a name wins, as moby's lexer reads.
impl Vars for [String] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter().find_map(|kv| match kv.split_once('=') {
            Some((k, v)) if k == name => Some(v.to_string()),
            None if kv == name => Some(String::new()),
            _ => None,
        })
    }
}

impl Vars for Vec<String> {
    fn var(&self, name: &str) -> Option<String> {
        self.as_slice().var(name)
    }
}

/// The lexer for one Dockerfile's escape character.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    escape: char,
}

impl Default for Lexer {
    fn default() -> Self {
        Self { escape: '\\' }
    }
}

impl Lexer {
    /// A lexer using `escape` (`\` or `` ` ``).
    pub fn new(escape: char) -> Self {
        Self { escape }
    }

    /// Expands `word` into one string (quotes removed, whitespace kept): `ProcessWord`.
    pub fn word(&self, word: &str, vars: &(impl Vars + ?Sized)) -> Result<String> {
        self.run(word, vars).map(|(s, _)| s)
    }

    /// Expands `word` into words split on unquoted whitespace (also inside unquoted variable
    /// values): `ProcessWords`.
    pub fn words(&self, word: &str, vars: &(impl Vars + ?Sized)) -> Result<Vec<String>> {
        self.run(word, vars).map(|(_, w)| w)
    }

    fn run(&self, word: &str, vars: &(impl Vars + ?Sized)) -> Result<(String, Vec<String>)> {
        let mut scan = Scan {
            chars: word.chars().collect(),
            pos: 0,
            escape: self.escape,
            raw_escapes: false,
            vars: &|n: &str| vars.var(n),
        };
        let (s, words) = scan
            .until(None)
            .map_err(|e| BuildError::Expand(format!("failed to process {word:?}: {e}")))?;
        Ok((s, words.finish()))
    }
}

/// Word splitting state (empty words are dropped, as moby's `wordsStruct` drops them).
#[derive(Default)]
struct Words {
    words: Vec<String>,
    cur: String,
}

impl Words {
    fn char(&mut self, c: char) {
        if c.is_whitespace() {
            if !self.cur.is_empty() {
                self.words.push(std::mem::take(&mut self.cur));
            }
        } else {
            self.cur.push(c);
        }
    }

    fn raw(&mut self, c: char) {
        self.cur.push(c);
    }

    fn string(&mut self, s: &str) {
        s.chars().for_each(|c| self.char(c));
    }

    fn raw_string(&mut self, s: &str) {
        self.cur.push_str(s);
    }

    fn finish(mut self) -> Vec<String> {
        if !self.cur.is_empty() {
            self.words.push(self.cur);
        }
        self.words
    }
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

struct Scan<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    /// Keep escape characters in the text (pattern words of `${v#p}`, `${v/p/r}`).
    raw_escapes: bool,
    vars: Lookup<'a>,
}

type Step<T> = std::result::Result<T, String>;

impl Scan<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn until(&mut self, stop: Option<char>) -> Step<(String, Words)> {
        let saved = self.raw_escapes;
        let r = self.until_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn until_raw(&mut self, stop: char) -> Step<String> {
        let saved = self.raw_escapes;
        self.raw_escapes = true;
        let r = self.until_inner(Some(stop)).map(|(s, _)| s);
        self.raw_escapes = saved;
        r
    }

    /// Processes up to `stop` (consumed) or the end.
    fn until_inner(&mut self, stop: Option<char>) -> Step<(String, Words)> {
        let mut out = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next();
                return Ok((out, words));
            }
            match c {
                '\'' => {
                    let s = self.single_quote()?;
                    words.raw_string(&s);
                    out.push_str(&s);
                }
                '"' => {
                    let s = self.double_quote()?;
                    words.raw_string(&s);
                    out.push_str(&s);
                }
                '$' => {
                    let s = self.dollar()?;
                    words.string(&s);
                    out.push_str(&s);
                }
                _ => {
                    self.next();
                    if c == self.escape {
                        if self.raw_escapes {
                            words.raw(c);
                            out.push(c);
                        }
                        let Some(n) = self.next() else { break };
                        words.raw(n);
                        out.push(n);
                    } else {
                        words.char(c);
                        out.push(c);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((out, words))
    }

    fn single_quote(&mut self) -> Step<String> {
        self.next();
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .to_string(),
                    );
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Step<String> {
        self.next();
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .to_string(),
                    );
                }
                Some('"') => {
                    self.next();
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) => {
                    self.next();
                    if c == self.escape {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.next();
                                out.push(n);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        if let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if "@*#?-$!0".contains(c) {
                self.next();
                return c.to_string();
            }
        }
        while let Some(c) = self.peek() {
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            self.next();
            name.push(c);
        }
        name
    }

    /// A `${...}` word up to `stop`, with moby's "missing" texts at the end of input.
    fn sub_word(&mut self, stop: char, raw: bool, missing: &str) -> Step<String> {
        let r = if raw {
            self.until_raw(stop)
        } else {
            self.until(Some(stop)).map(|(s, _)| s)
        };
        r.map_err(|e| {
            if self.peek().is_none() {
                missing.to_string()
            } else {
                e
            }
        })
    }

    fn dollar(&mut self) -> Step<String> {
        const MISSING_BRACE: &str = "syntax error: missing '}'";
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok((self.vars)(&name).unwrap_or_default());
        }
        self.next();
        match self.peek() {
            None => return Err(MISSING_BRACE.to_string()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_string()),
            Some(_) => {}
        }
        let name = self.name();
        let mut modifier = match self.next() {
            Some('}') => return Ok((self.vars)(&name).unwrap_or_default()),
            Some(c) => c.to_string(),
            None => String::new(),
        };
        let colon = modifier == ":";
        let op = if colon {
            let c = self.next();
            modifier.extend(c);
            c
        } else {
            modifier.chars().next()
        };
        match op {
            Some(op @ ('-' | '+' | '?' | '#' | '%')) => {
                let word = self.sub_word('}', op == '#' || op == '%', MISSING_BRACE)?;
                let value = (self.vars)(&name);
                let unset = value.is_none() || (colon && value.as_deref() == Some(""));
                let value = value.unwrap_or_default();
                match op {
                    '-' => Ok(if unset { word } else { value }),
                    '+' => Ok(if unset { String::new() } else { word }),
                    '?' => {
                        if !unset {
                            return Ok(value);
                        }
                        let message = if !word.is_empty() {
                            word
                        } else if (self.vars)(&name).is_none() {
                            "is not allowed to be unset".to_string()
                        } else {
                            "is not allowed to be empty".to_string()
                        };
                        Err(format!("{name}: {message}"))
                    }
                    _ => {
                        let (greedy, pattern) = match word.strip_prefix(op) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        if op == '#' {
                            trim_prefix(&pattern, &value, greedy)
                        } else {
                            trim_suffix(&pattern, &value, greedy)
                        }
                    }
                }
            }
            Some('/') if !colon => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let pattern = self.sub_word('/', true, "syntax error: missing '/' in ${}")?;
                let replacement = self.sub_word('}', true, MISSING_BRACE)?;
                let value = (self.vars)(&name).unwrap_or_default();
                let re = shell_pattern(&pattern, true, false)?;
                Ok(if all {
                    re.replace_all(&value, regex::NoExpand(&replacement))
                        .into_owned()
                } else {
                    re.replace(&value, regex::NoExpand(&replacement))
                        .into_owned()
                })
            }
            _ => Err(format!("unsupported modifier ({modifier}) in substitution")),
        }
    }
}

/// A shell wildcard pattern (`*`, `?`, `\` escapes; no brackets) as a regex
/// (`convertShellPatternToRegex`).
fn shell_pattern(pattern: &str, greedy: bool, anchored: bool) -> Step<regex::Regex> {
    let mut out = String::new();
    if anchored {
        out.push('^');
    }
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(if greedy { ".*" } else { ".*?" }),
            '?' => out.push('.'),
            '\\' => {
                if matches!(chars.peek(), Some('}' | '/')) {
                    continue;
                }
                match chars.next() {
                    Some(n @ ('*' | '?' | '\\')) => {
                        out.push('\\');
                        out.push(n);
                    }
                    n => {
                        let n = n.map(String::from).unwrap_or_default();
                        return Err(format!(
                            "invalid pattern ({pattern}) in substitution: invalid escape '\\{n}'"
                        ));
                    }
                }
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    regex::Regex::new(&out).map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Step<String> {
    let re = shell_pattern(pattern, greedy, true)?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// Suffix trimming by reversing pattern (escapes kept in order) and value.
fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Step<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut units: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() {
            units.push(format!("\\{}", chars[i + 1]));
            i += 2;
        } else {
            units.push(chars[i].to_string());
            i += 1;
        }
    }
    units.reverse();
    let reversed_value: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&units.concat(), &reversed_value, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<String> {
        [
            "PWD=/home",
            "SHELL=bash",
            "EMPTY=",
            "SP=a b  c",
            "XX=x",
            "F=/usr/local/bin/app.tar.gz",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn single_word_table() {
        // (input, expected) from moby's shell/envVarTest cases and the Dockerfile reference.
        let cases: &[(&str, &str)] = &[
            ("hello", "hello"),
            ("he'll'o", "hello"),
            ("he'llo", "ERR"),
            ("he\\'llo", "he'llo"),
            ("he\\\\'llo", "ERR"),
            ("abc\\\\", "abc\\"),
            ("\"hello\"", "hello"),
            ("'hello'", "hello"),
            ("\"'hello'\"", "'hello'"),
            ("'\"hello\"'", "\"hello\""),
            ("\"hel\\\"lo\"", "hel\"lo"),
            ("\"a\\b\"", "a\\b"),
            ("a\\b", "ab"),
            ("\\$PWD", "$PWD"),
            ("\"\\$PWD\"", "$PWD"),
            ("'$PWD'", "$PWD"),
            ("$PWD", "/home"),
            ("${PWD}", "/home"),
            ("${PWD}x", "/homex"),
            ("$PWDx", ""),
            ("a$PWD/b", "a/home/b"),
            ("\"$PWD\"", "/home"),
            ("$", "$"),
            ("a$ b", "a$ b"),
            ("$.x", "$.x"),
            ("${NOPE}", ""),
            ("${NOPE:-dflt}", "dflt"),
            ("${EMPTY:-dflt}", "dflt"),
            ("${EMPTY-dflt}", ""),
            ("${NOPE-dflt}", "dflt"),
            ("${PWD:-dflt}", "/home"),
            ("${PWD:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${NOPE+alt}", ""),
            ("${NOPE:-$PWD/x}", "/home/x"),
            ("${NOPE:-'q d'}", "q d"),
            ("${NOPE:-a\\}b}", "a}b"),
            ("${PWD:?oops}", "/home"),
            ("${NOPE:?oops}", "ERR"),
            ("${EMPTY?oops}", ""),
            ("${NOPE", "ERR"),
            ("${NOPE:-x", "ERR"),
            ("${a:=b}", "ERR"),
            ("${}", "ERR"),
            ("${:-x}", "ERR"),
            ("${a b}", "ERR"),
            ("${F#*/}", "usr/local/bin/app.tar.gz"),
            ("${F##*/}", "app.tar.gz"),
            ("${F%.*}", "/usr/local/bin/app.tar"),
            ("${F%%.*}", "/usr/local/bin/app"),
            ("${F#nomatch}", "/usr/local/bin/app.tar.gz"),
            ("${F%???.gz}", "/usr/local/bin/app."),
            ("${F/local/LOCAL}", "/usr/LOCAL/bin/app.tar.gz"),
            ("${F//l/L}", "/usr/LocaL/bin/app.tar.gz"),
            ("${F//\\//:}", ":usr:local:bin:app.tar.gz"),
            ("${F/a*./X}", "/usr/locXgz"),
            ("${NOPE#x}", ""),
            ("${F/x", "ERR"),
            ("$SP", "a b  c"),
            ("\"", "ERR"),
            ("é$XX", "éx"),
        ];
        let lex = Lexer::default();
        for (input, want) in cases {
            let got = lex.word(input, &vars());
            match (*want, got) {
                ("ERR", Err(_)) => {}
                ("ERR", Ok(v)) => panic!("{input}: expected an error, got {v:?}"),
                (w, Ok(v)) => assert_eq!(v, w, "input {input}"),
                (w, Err(e)) => panic!("{input}: expected {w:?}, got error {e}"),
            }
        }
    }

    #[test]
    fn word_splitting() {
        let lex = Lexer::default();
        let cases: &[(&str, &[&str])] = &[
            ("a b c", &["a", "b", "c"]),
            ("  a   b ", &["a", "b"]),
            ("'a b' c", &["a b", "c"]),
            ("\"a  b\"c d", &["a  bc", "d"]),
            ("$SP", &["a", "b", "c"]),
            ("\"$SP\"", &["a b  c"]),
            ("a\\ b", &["a b"]),
            ("x${XX}y z", &["xxy", "z"]),
            ("8080 ${NOPE:-80/udp}", &["8080", "80/udp"]),
        ];
        for (input, want) in cases {
            let got = lex.words(input, &vars()).expect(input);
            assert_eq!(&got, want, "input {input}");
        }
    }

    #[test]
    fn backtick_escape() {
        let lex = Lexer::new('`');
        assert_eq!(lex.word("a`$PWD", &vars()).unwrap(), "a$PWD");
        assert_eq!(lex.word("C:\\dir", &vars()).unwrap(), "C:\\dir");
        assert_eq!(lex.word("\"x`\"y\"", &vars()).unwrap(), "x\"y");
    }

    #[test]
    fn error_texts() {
        let lex = Lexer::default();
        let err = lex.word("${NOPE:?}", &vars()).unwrap_err().to_string();
        assert_eq!(
            err,
            "failed to process \"${NOPE:?}\": NOPE: is not allowed to be unset"
        );
        let err = lex.word("${EMPTY:?}", &vars()).unwrap_err().to_string();
        assert!(err.ends_with("EMPTY: is not allowed to be empty"), "{err}");
        let err = lex.word("\"x", &vars()).unwrap_err().to_string();
        assert_eq!(
            err,
            "failed to process \"\\\"x\": unexpected end of statement while looking for \
             matching double-quote"
        );
        let err = lex.word("${a:=b}", &vars()).unwrap_err().to_string();
        assert!(
            err.ends_with("unsupported modifier (:=) in substitution"),
            "{err}"
        );
        let err = lex.word("${}", &vars()).unwrap_err().to_string();
        assert!(err.ends_with("syntax error: bad substitution"), "{err}");
        let err = lex.word("${A:-x", &vars()).unwrap_err().to_string();
        assert!(err.ends_with("syntax error: missing '}'"), "{err}");
    }

    #[test]
    fn maps_work_as_vars() {
        let mut m = BTreeMap::new();
        m.insert("A".to_string(), "1".to_string());
        assert_eq!(Lexer::default().word("${A}${B:-2}", &m).unwrap(), "12");
    }
}
