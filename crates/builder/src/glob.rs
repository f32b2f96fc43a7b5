//! Go's `filepath.Match` on Unix, for COPY/ADD source patterns (moby matches each path part of
//! a source against the directory entries): `*` any run of non-`/` characters, `?` one
//! non-`/` character, `[...]` classes with ranges and `^` negation, `\` escapes.
//!
//! Owns: the matching of one pattern against one name. Must not know: the file system.

/// Whether `name` matches `pattern` (false for a malformed pattern, as Go's error would stop
/// the copy: use [`glob_valid`] to tell them apart).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches(&p, &n).unwrap_or(false)
}

/// Whether `pattern` is well formed (Go's `ErrBadPattern` otherwise).
pub fn glob_valid(pattern: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    // Matching against every prefix walks every class; a bad one reports an error.
    matches(&p, &[]).is_some() && check_all(&p)
}

/// True when `pattern` has no glob characters (a plain path).
pub fn has_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '\\'])
}

fn check_all(p: &[char]) -> bool {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return false;
                }
                i += 2;
            }
            '[' => match class(p, i + 1, 'a') {
                Some((_, next)) => i = next,
                None => return false,
            },
            _ => i += 1,
        }
    }
    true
}

/// Matches a class starting after `[` at `i` against `c`: (matched, index after `]`).
fn class(p: &[char], mut i: usize, c: char) -> Option<(bool, usize)> {
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            return Some((matched != negated, i + 1));
        }
        first = false;
        let (lo, next) = class_char(p, i)?;
        i = next;
        let hi = if p.get(i) == Some(&'-') {
            let (hi, next) = class_char(p, i + 1)?;
            i = next;
            hi
        } else {
            lo
        };
        if lo <= c && c <= hi {
            matched = true;
        }
    }
}

fn class_char(p: &[char], i: usize) -> Option<(char, usize)> {
    match *p.get(i)? {
        '\\' => Some((*p.get(i + 1)?, i + 2)),
        '-' | ']' => None,
        c => Some((c, i + 1)),
    }
}

/// Backtracking match; `None` for a malformed pattern.
fn matches(p: &[char], n: &[char]) -> Option<bool> {
    let Some(&first) = p.first() else {
        return Some(n.is_empty());
    };
    match first {
        '*' => {
            let rest = &p[1..];
            let mut k = 0;
            loop {
                if matches(rest, &n[k..])? {
                    return Some(true);
                }
                if k >= n.len() || n[k] == '/' {
                    return Some(false);
                }
                k += 1;
            }
        }
        '?' => match n.first() {
            Some(&c) if c != '/' => matches(&p[1..], &n[1..]),
            _ => Some(false),
        },
        '[' => {
            let c = n.first().copied();
            let (hit, next) = class(p, 1, c.unwrap_or('\0'))?;
            match c {
                Some(c) if hit && c != '/' => matches(&p[next..], &n[1..]),
                _ => Some(false),
            }
        }
        '\\' => {
            let &lit = p.get(1)?;
            match n.first() {
                Some(&c) if c == lit => matches(&p[2..], &n[1..]),
                _ => Some(false),
            }
        }
        lit => match n.first() {
            Some(&c) if c == lit => matches(&p[1..], &n[1..]),
            _ => Some(false),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_match_table() {
        // From Go's path/filepath match tests.
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("*x", "xxx", true),
            ("*.go", "main.go", true),
            ("*.go", ".go", true),
        ];
        for (p, n, want) in cases {
            assert_eq!(glob_match(p, n), *want, "{p} on {n}");
        }
    }

    #[test]
    fn bad_patterns() {
        for p in [
            "[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "\\", "[a-b-c]",
        ] {
            assert!(!glob_valid(p), "{p} should be bad");
        }
        for p in ["abc", "a*[b-c]?", "a\\*"] {
            assert!(glob_valid(p), "{p} should be fine");
        }
        assert!(has_glob("a*") && has_glob("x[ab]") && !has_glob("plain/path.txt"));
    }
}
