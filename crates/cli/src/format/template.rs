//! A small Go `text/template` interpreter covering what `--format` users write: fields,
//! variables, pipelines, `if`/`else`/`range`/`with`, and docker's template functions.

use super::value::Value;

/// A template error (parse or execution), worded like Go's where cheap.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TemplateError(pub(crate) String);

fn err<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// `.A.B` (empty chain is `.`).
    Field(Vec<String>),
    /// `$x.A.B` (`$` alone is the root).
    Var(String, Vec<String>),
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
    Nil,
    Ident(String),
    /// `(pipeline).A.B`
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
struct Pipeline {
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

fn tokenize(src: &str) -> Result<Vec<Tok>, TemplateError> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1;
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return err("unterminated quoted string"),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            match chars.get(i) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some('r') => s.push('\r'),
                                Some('\\') => s.push('\\'),
                                Some('"') => s.push('"'),
                                Some(o) => {
                                    s.push('\\');
                                    s.push(*o);
                                }
                                None => return err("unterminated quoted string"),
                            }
                        }
                        Some(o) => s.push(*o),
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Str(s));
            }
            '`' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return err("unterminated raw quoted string"),
                        Some('`') => break,
                        Some(o) => s.push(*o),
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Str(s));
            }
            _ => {
                let start = i;
                while i < chars.len() {
                    let d = chars[i];
                    if d.is_whitespace() || "()|,=\"`".contains(d) {
                        break;
                    }
                    if d == ':' && chars.get(i + 1) == Some(&'=') {
                        break;
                    }
                    // `$x` followed directly by `.` continues the chain; a `(` ends it.
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

fn chain(s: &str) -> Vec<String> {
    s.split('.')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_word(w: &str) -> Result<Arg, TemplateError> {
    if w.starts_with('.') {
        return Ok(Arg::Field(chain(w)));
    }
    if let Some(rest) = w.strip_prefix('$') {
        let (name, fields) = match rest.split_once('.') {
            Some((n, f)) => (n, chain(f)),
            None => (rest, Vec::new()),
        };
        return Ok(Arg::Var(format!("${name}"), fields));
    }
    match w {
        "true" => return Ok(Arg::Bool(true)),
        "false" => return Ok(Arg::Bool(false)),
        "nil" => return Ok(Arg::Nil),
        _ => {}
    }
    let first = w.chars().next().unwrap_or(' ');
    if first.is_ascii_digit() || ((first == '-' || first == '+') && w.len() > 1) {
        if let Ok(i) = w.parse::<i64>() {
            return Ok(Arg::Num(i.into()));
        }
        if let Some(n) = w.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
            return Ok(Arg::Num(n));
        }
        return err(format!("bad number syntax: {w:?}"));
    }
    if w.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Ok(Arg::Ident(w.to_string()));
    }
    err(format!("unexpected {w:?} in command"))
}

struct TokStream {
    toks: Vec<Tok>,
    pos: usize,
}

impl TokStream {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
}

fn parse_pipeline(ts: &mut TokStream, in_paren: bool) -> Result<Pipeline, TemplateError> {
    let mut p = Pipeline {
        decl: Vec::new(),
        assign: false,
        cmds: Vec::new(),
    };
    // Variable declarations: `$x :=`, `$i, $e :=`, `$x =`.
    let save = ts.pos;
    let mut vars = Vec::new();
    while let Some(Tok::Word(w)) = ts.peek().cloned() {
        if !w.starts_with('$') || w.contains('.') {
            break;
        }
        ts.next();
        vars.push(w);
        match ts.peek() {
            Some(Tok::Comma) => {
                ts.next();
            }
            Some(Tok::Declare) => {
                ts.next();
                p.decl = vars.clone();
                break;
            }
            Some(Tok::Assign) => {
                ts.next();
                p.decl = vars.clone();
                p.assign = true;
                break;
            }
            _ => break,
        }
    }
    if p.decl.is_empty() {
        ts.pos = save;
    }
    let mut cmd: Vec<Arg> = Vec::new();
    loop {
        match ts.next() {
            None => {
                if in_paren {
                    return err("unclosed left paren");
                }
                break;
            }
            Some(Tok::RParen) => {
                if in_paren {
                    break;
                }
                return err("unexpected right paren");
            }
            Some(Tok::Pipe) => {
                if cmd.is_empty() {
                    return err("missing command");
                }
                p.cmds.push(std::mem::take(&mut cmd));
            }
            Some(Tok::LParen) => {
                let sub = parse_pipeline(ts, true)?;
                // A field chain may follow directly: `(index .X 0).Name`.
                let mut fields = Vec::new();
                if let Some(Tok::Word(w)) = ts.peek().cloned()
                    && w.starts_with('.')
                {
                    ts.next();
                    fields = chain(&w);
                }
                cmd.push(Arg::Sub(Box::new(sub), fields));
            }
            Some(Tok::Word(w)) => cmd.push(parse_word(&w)?),
            Some(Tok::Str(s)) => cmd.push(Arg::Str(s)),
            Some(t) => return err(format!("unexpected {t:?} in operand")),
        }
    }
    if !cmd.is_empty() {
        p.cmds.push(cmd);
    }
    if p.cmds.is_empty() {
        return err("missing value for command");
    }
    Ok(p)
}

enum Seg {
    Text(String),
    Action(String),
}

fn split_segments(src: &str) -> Result<Vec<Seg>, TemplateError> {
    let mut segs = Vec::new();
    let mut rest = src;
    let mut trim_next_left = false;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        if trim_next_left {
            text = text.trim_start().to_string();
        }
        let after = &rest[start + 2..];
        let trim_left = after.starts_with("- ") || after.starts_with("-\t") || after == "-";
        if trim_left {
            text = text.trim_end().to_string();
        }
        let Some(end) = after.find("}}") else {
            return err("unclosed action");
        };
        let mut inner = &after[..end];
        if trim_left {
            inner = &inner[1..];
        }
        trim_next_left = false;
        if inner.ends_with(" -") || inner.ends_with("\t-") {
            inner = &inner[..inner.len() - 1];
            trim_next_left = true;
        }
        segs.push(Seg::Text(text));
        let inner = inner.trim();
        if !(inner.starts_with("/*") && inner.ends_with("*/")) {
            segs.push(Seg::Action(inner.to_string()));
        }
        rest = &after[end + 2..];
    }
    let mut text = rest.to_string();
    if trim_next_left {
        text = text.trim_start().to_string();
    }
    segs.push(Seg::Text(text));
    Ok(segs)
}

enum ListEnd {
    Eof,
    End,
    Else(Option<Vec<Tok>>),
}

fn parse_list(
    segs: &mut std::iter::Peekable<std::vec::IntoIter<Seg>>,
) -> Result<(Vec<Node>, ListEnd), TemplateError> {
    let mut nodes = Vec::new();
    while let Some(seg) = segs.next() {
        match seg {
            Seg::Text(t) => {
                if !t.is_empty() {
                    nodes.push(Node::Text(t));
                }
            }
            Seg::Action(a) => {
                let toks = tokenize(&a)?;
                let keyword = match toks.first() {
                    Some(Tok::Word(w)) => w.clone(),
                    _ => String::new(),
                };
                let rest = TokStream {
                    toks: toks[1.min(toks.len())..].to_vec(),
                    pos: 0,
                };
                match keyword.as_str() {
                    "end" => return Ok((nodes, ListEnd::End)),
                    "else" => {
                        let r = rest.toks;
                        return Ok((
                            nodes,
                            ListEnd::Else(if r.is_empty() { None } else { Some(r) }),
                        ));
                    }
                    "if" | "range" | "with" => {
                        let mut rest = rest;
                        let node = parse_control(&keyword, &mut rest, segs)?;
                        nodes.push(node);
                    }
                    "define" | "template" | "block" => {
                        return err(format!("{keyword} is not supported"));
                    }
                    _ => {
                        let mut ts = TokStream { toks, pos: 0 };
                        nodes.push(Node::Action(parse_pipeline(&mut ts, false)?));
                    }
                }
            }
        }
    }
    Ok((nodes, ListEnd::Eof))
}

fn parse_control(
    keyword: &str,
    ts: &mut TokStream,
    segs: &mut std::iter::Peekable<std::vec::IntoIter<Seg>>,
) -> Result<Node, TemplateError> {
    let pipe = parse_pipeline(ts, false)?;
    let (body, end) = parse_list(segs)?;
    let else_body = match end {
        ListEnd::Eof => return err(format!("unexpected EOF in {keyword}")),
        ListEnd::End => Vec::new(),
        ListEnd::Else(None) => match parse_list(segs)? {
            (b, ListEnd::End) => b,
            _ => return err(format!("expected end in {keyword}")),
        },
        ListEnd::Else(Some(toks)) => {
            // `else if …` / `else with …`: the nested control consumes the shared `end`.
            let kw = match toks.first() {
                Some(Tok::Word(w)) => w.clone(),
                _ => return err("unexpected tokens after else"),
            };
            if kw != "if" && kw != "with" {
                return err(format!("unexpected {kw} after else"));
            }
            let mut inner = TokStream {
                toks: toks[1..].to_vec(),
                pos: 0,
            };
            vec![parse_control(&kw, &mut inner, segs)?]
        }
    };
    Ok(match keyword {
        "if" => Node::If(pipe, body, else_body),
        "range" => Node::Range(pipe, body, else_body),
        _ => Node::With(pipe, body, else_body),
    })
}

impl Template {
    /// Parses a template text.
    pub(crate) fn parse(src: &str) -> Result<Self, TemplateError> {
        let mut segs = split_segments(src)?.into_iter().peekable();
        match parse_list(&mut segs)? {
            (nodes, ListEnd::Eof) => Ok(Template { nodes }),
            (_, ListEnd::End) => err("unexpected {{end}}"),
            (_, ListEnd::Else(_)) => err("unexpected {{else}}"),
        }
    }

    /// Renders with `data` as `.`.
    pub(crate) fn render(&self, data: &Value) -> Result<String, TemplateError> {
        self.render_mode(data, false)
    }

    /// Renders a table header: docker's formatting functions pass their argument through.
    pub(crate) fn render_header(&self, data: &Value) -> Result<String, TemplateError> {
        self.render_mode(data, true)
    }

    fn render_mode(&self, data: &Value, header: bool) -> Result<String, TemplateError> {
        let mut ex = Exec {
            vars: vec![("$".to_string(), data.clone())],
            header,
            out: String::new(),
        };
        ex.walk(&self.nodes, data)?;
        Ok(ex.out)
    }
}

struct Exec {
    vars: Vec<(String, Value)>,
    header: bool,
    out: String,
}

fn walk_fields(mut v: Value, fields: &[String]) -> Result<Value, TemplateError> {
    for f in fields {
        v = match &v {
            Value::Obj(_) => v.field(f),
            Value::Missing | Value::Null => Value::Missing,
            other => {
                return err(format!(
                    "can't evaluate field {f} in type {}",
                    type_name(other)
                ));
            }
        };
    }
    Ok(v)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Missing | Value::Null => "interface {}",
        Value::Bool(_) => "bool",
        Value::Num(_) => "float64",
        Value::Str(_) => "string",
        Value::Arr(_) => "[]interface {}",
        Value::Obj(_) => "map[string]interface {}",
    }
}

impl Exec {
    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<(), TemplateError> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&v.to_string());
                    }
                }
                Node::If(p, body, els) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    if v.truthy() {
                        self.walk(body, dot)?;
                    } else {
                        self.walk(els, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::With(p, body, els) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    if v.truthy() {
                        self.walk(body, &v)?;
                    } else {
                        self.walk(els, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range(p, body, els) => {
                    let mark = self.vars.len();
                    let decl = p.decl.clone();
                    let inner = Pipeline {
                        decl: Vec::new(),
                        assign: false,
                        cmds: p.cmds.clone(),
                    };
                    let v = self.pipeline(&inner, dot)?;
                    let items: Vec<(Value, Value)> = match v {
                        Value::Arr(a) => a
                            .into_iter()
                            .enumerate()
                            .map(|(i, x)| (Value::Num((i as u64).into()), x))
                            .collect(),
                        Value::Obj(o) => {
                            let mut o = o;
                            o.sort_by(|a, b| a.0.cmp(&b.0));
                            o.into_iter().map(|(k, x)| (Value::Str(k), x)).collect()
                        }
                        Value::Missing | Value::Null => Vec::new(),
                        Value::Num(n) => {
                            let count = n.as_u64().unwrap_or(0);
                            (0..count)
                                .map(|i| (Value::Num(i.into()), Value::Num(i.into())))
                                .collect()
                        }
                        other => {
                            return err(format!("range can't iterate over {other}"));
                        }
                    };
                    if items.is_empty() {
                        self.walk(els, dot)?;
                    }
                    for (k, x) in items {
                        let m2 = self.vars.len();
                        match decl.as_slice() {
                            [e] => self.vars.push((e.clone(), x.clone())),
                            [i, e] => {
                                self.vars.push((i.clone(), k));
                                self.vars.push((e.clone(), x.clone()));
                            }
                            _ => {}
                        }
                        self.walk(body, &x)?;
                        self.vars.truncate(m2);
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }

    fn lookup_var(&self, name: &str) -> Result<Value, TemplateError> {
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| TemplateError(format!("undefined variable: {name}")))
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, TemplateError> {
        let mut val: Option<Value> = None;
        for cmd in &p.cmds {
            val = Some(self.command(cmd, dot, val)?);
        }
        let v = val.unwrap_or(Value::Missing);
        if !p.decl.is_empty() {
            if p.assign {
                for (k, slot) in self.vars.iter_mut().rev() {
                    if *k == p.decl[0] {
                        *slot = v.clone();
                        return Ok(v);
                    }
                }
                return err(format!("undefined variable: {}", p.decl[0]));
            }
            if let Some(name) = p.decl.last() {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, TemplateError> {
        Ok(match a {
            Arg::Field(f) => walk_fields(dot.clone(), f)?,
            Arg::Var(name, f) => walk_fields(self.lookup_var(name)?, f)?,
            Arg::Str(s) => Value::Str(s.clone()),
            Arg::Num(n) => Value::Num(n.clone()),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Nil => Value::Null,
            Arg::Ident(name) => self.call(name, Vec::new())?,
            Arg::Sub(p, f) => {
                let v = self.pipeline(p, dot)?;
                walk_fields(v, f)?
            }
        })
    }

    fn command(
        &mut self,
        cmd: &[Arg],
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, TemplateError> {
        let Some(first) = cmd.first() else {
            return err("empty command");
        };
        if let Arg::Ident(name) = first {
            let mut args = Vec::with_capacity(cmd.len());
            for a in &cmd[1..] {
                args.push(self.arg(a, dot)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            return self.call(name, args);
        }
        if let Arg::Field(path) = first
            && let Some((method, parent)) = path.split_last()
            && (cmd.len() > 1 || piped.is_some())
        {
            // A method call with arguments, e.g. `{{.Label "com.example"}}`.
            let recv = walk_fields(dot.clone(), parent)?;
            let mut args = Vec::with_capacity(cmd.len());
            for a in &cmd[1..] {
                args.push(self.arg(a, dot)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            return self.method(&recv, method, args);
        }
        if cmd.len() > 1 || piped.is_some() {
            return err(format!("can't give argument to non-function {first:?}"));
        }
        self.arg(first, dot)
    }

    /// Methods with one string argument are modelled as a hidden `Name()` object field
    /// mapping the argument to the result (missing keys give "").
    fn method(
        &mut self,
        recv: &Value,
        name: &str,
        args: Vec<Value>,
    ) -> Result<Value, TemplateError> {
        if self.header && name == "Label" {
            // docker's SubHeaderContext.Label: the last dotted part, `-`/`_` as spaces.
            exact(name, &args, 1)?;
            let text = string_of(&args[0]);
            let last = text.rsplit('.').next().unwrap_or_default();
            return Ok(Value::Str(last.replace(['-', '_'], " ")));
        }
        match recv.field(&format!("{name}()")) {
            Value::Obj(pairs) => {
                exact(name, &args, 1)?;
                let key = string_of(&args[0]);
                Ok(pairs
                    .into_iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v)
                    .unwrap_or(Value::Str(String::new())))
            }
            _ => err(format!("can't give argument to non-function .{name}")),
        }
    }

    fn call(&mut self, name: &str, args: Vec<Value>) -> Result<Value, TemplateError> {
        let passthrough = matches!(
            name,
            "json" | "split" | "join" | "title" | "lower" | "upper" | "pad" | "truncate"
        );
        if self.header && passthrough {
            return Ok(args.into_iter().next().unwrap_or(Value::Str(String::new())));
        }
        call_func(name, args)
    }
}

fn string_of(v: &Value) -> String {
    v.to_string()
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Num(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn exact(name: &str, args: &[Value], n: usize) -> Result<(), TemplateError> {
    if args.len() != n {
        return err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn call_func(name: &str, args: Vec<Value>) -> Result<Value, TemplateError> {
    use std::cmp::Ordering;
    let s = |s: String| Ok(Value::Str(s));
    match name {
        "json" => {
            exact(name, &args, 1)?;
            s(args[0].to_go_json())
        }
        "join" => {
            exact(name, &args, 2)?;
            let sep = string_of(&args[1]);
            match &args[0] {
                Value::Arr(a) => s(a.iter().map(string_of).collect::<Vec<_>>().join(&sep)),
                Value::Null | Value::Missing => s(String::new()),
                other => err(format!(
                    "wrong type for value; expected []string; got {other}"
                )),
            }
        }
        "split" => {
            exact(name, &args, 2)?;
            let (text, sep) = (string_of(&args[0]), string_of(&args[1]));
            let parts: Vec<Value> = if sep.is_empty() {
                text.chars().map(|c| Value::Str(c.to_string())).collect()
            } else {
                text.split(sep.as_str())
                    .map(|p| Value::Str(p.to_string()))
                    .collect()
            };
            Ok(Value::Arr(parts))
        }
        "upper" => {
            exact(name, &args, 1)?;
            s(string_of(&args[0]).to_uppercase())
        }
        "lower" => {
            exact(name, &args, 1)?;
            s(string_of(&args[0]).to_lowercase())
        }
        "title" => {
            exact(name, &args, 1)?;
            let text = string_of(&args[0]);
            let mut out = String::with_capacity(text.len());
            let mut prev_letter = false;
            for c in text.chars() {
                if !prev_letter && c.is_alphabetic() {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
            }
            s(out)
        }
        "truncate" => {
            exact(name, &args, 2)?;
            let text = string_of(&args[0]);
            let n = as_i64(&args[1]).unwrap_or(0).max(0) as usize;
            s(text.chars().take(n).collect())
        }
        "pad" => {
            exact(name, &args, 3)?;
            let text = string_of(&args[0]);
            let l = as_i64(&args[1]).unwrap_or(0).max(0) as usize;
            let r = as_i64(&args[2]).unwrap_or(0).max(0) as usize;
            s(format!("{}{text}{}", " ".repeat(l), " ".repeat(r)))
        }
        "print" | "println" => {
            let mut out = String::new();
            for (i, a) in args.iter().enumerate() {
                let is_str = matches!(a, Value::Str(_));
                let prev_str = i > 0 && matches!(args[i - 1], Value::Str(_));
                if i > 0 && (name == "println" || (!is_str && !prev_str)) {
                    out.push(' ');
                }
                out.push_str(&a.to_string());
            }
            if name == "println" {
                out.push('\n');
            }
            s(out)
        }
        "printf" => {
            let Some((fmt, rest)) = args.split_first() else {
                return err("printf requires a format string");
            };
            s(sprintf(&string_of(fmt), rest))
        }
        "len" => {
            exact(name, &args, 1)?;
            let n = match &args[0] {
                Value::Str(t) => t.len(),
                Value::Arr(a) => a.len(),
                Value::Obj(o) => o.len(),
                Value::Null | Value::Missing => 0,
                other => return err(format!("len of type {}", type_name(other))),
            };
            Ok(Value::Num((n as u64).into()))
        }
        "index" => {
            let Some((first, keys)) = args.split_first() else {
                return err("wrong number of args for index");
            };
            let mut v = first.clone();
            for k in keys {
                v = match (&v, k) {
                    (Value::Arr(a), k) => {
                        let i = as_i64(k).ok_or_else(|| TemplateError("bad index".into()))?;
                        match usize::try_from(i).ok().and_then(|i| a.get(i)) {
                            Some(x) => x.clone(),
                            None => {
                                return err(format!(
                                    "error calling index: index out of range: {i}"
                                ));
                            }
                        }
                    }
                    (Value::Obj(_), k) => match v.field(&string_of(k)) {
                        Value::Missing => Value::Missing,
                        x => x,
                    },
                    (Value::Null | Value::Missing, _) => Value::Missing,
                    (other, _) => {
                        return err(format!("can't index item of type {}", type_name(other)));
                    }
                };
            }
            Ok(v)
        }
        "eq" => {
            let Some((a, rest)) = args.split_first() else {
                return err("missing argument for comparison");
            };
            Ok(Value::Bool(rest.iter().any(|b| {
                compare(a, b)
                    .map(|o| o == Ordering::Equal)
                    .unwrap_or_else(|| a == b)
            })))
        }
        "ne" => {
            exact(name, &args, 2)?;
            let eq = compare(&args[0], &args[1])
                .map(|o| o == Ordering::Equal)
                .unwrap_or_else(|| args[0] == args[1]);
            Ok(Value::Bool(!eq))
        }
        "lt" | "le" | "gt" | "ge" => {
            exact(name, &args, 2)?;
            let Some(o) = compare(&args[0], &args[1]) else {
                return err("incompatible types for comparison");
            };
            Ok(Value::Bool(match name {
                "lt" => o == Ordering::Less,
                "le" => o != Ordering::Greater,
                "gt" => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }))
        }
        "and" => {
            let mut last = Value::Missing;
            for a in args {
                if !a.truthy() {
                    return Ok(a);
                }
                last = a;
            }
            Ok(last)
        }
        "or" => {
            let mut last = Value::Missing;
            for a in args {
                if a.truthy() {
                    return Ok(a);
                }
                last = a;
            }
            Ok(last)
        }
        "not" => {
            exact(name, &args, 1)?;
            Ok(Value::Bool(!args[0].truthy()))
        }
        _ => err(format!("function {name:?} not defined")),
    }
}

/// A small `fmt.Sprintf`: `%s %v %d %q %%` with optional width.
fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut ai = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&d) = it.peek() {
            if d == '-' || d.is_ascii_digit() {
                flags.push(d);
                it.next();
            } else {
                break;
            }
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = args.get(ai) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        ai += 1;
        let text = match verb {
            'q' => format!("{:?}", a.to_string()),
            _ => a.to_string(),
        };
        let left = flags.starts_with('-');
        let width: usize = flags.trim_start_matches('-').parse().unwrap_or(0);
        let pad = width.saturating_sub(text.chars().count());
        if left {
            out.push_str(&text);
            out.push_str(&" ".repeat(pad));
        } else {
            out.push_str(&" ".repeat(pad));
            out.push_str(&text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    fn render(t: &str, data: &Value) -> String {
        Template::parse(t).unwrap().render(data).unwrap()
    }

    #[test]
    fn fields_and_go_printing() {
        let d = obj(
            r#"{"Id":"sha256:abc","Config":{"Cmd":["sh"],"Env":["A=1","B=2"],
            "Labels":{"b":"2","a":"1"},"Entrypoint":null},"RepoTags":["busybox:latest"],"Size":42}"#,
        );
        assert_eq!(render("{{.Id}}", &d), "sha256:abc");
        assert_eq!(render("{{.Config.Cmd}}", &d), "[sh]");
        assert_eq!(render("{{.Config.Env}}", &d), "[A=1 B=2]");
        assert_eq!(render("{{.Config.Labels}}", &d), "map[a:1 b:2]");
        assert_eq!(render("{{index .RepoTags 0}}", &d), "busybox:latest");
        assert_eq!(render("{{.Size}}", &d), "42");
        assert_eq!(render("{{.Nope}}", &d), "<no value>");
        assert_eq!(render("{{json .Config.Cmd}}", &d), r#"["sh"]"#);
        assert_eq!(render("{{join .Config.Env \",\"}}", &d), "A=1,B=2");
        assert_eq!(render("{{len .RepoTags}}", &d), "1");
        assert_eq!(render("{{index .Config.Labels \"a\"}}", &d), "1");
    }

    #[test]
    fn json_keeps_key_order_and_escapes_html() {
        let d = obj(r#"{"Z":"<a&b>","A":1}"#);
        assert_eq!(
            render("{{json .}}", &d),
            r#"{"Z":"\u003ca\u0026b\u003e","A":1}"#
        );
    }

    #[test]
    fn control_flow() {
        let d = obj(r#"{"L":["a","b"],"E":[],"T":true,"N":"x"}"#);
        assert_eq!(render("{{range .L}}[{{.}}]{{end}}", &d), "[a][b]");
        assert_eq!(
            render("{{range $i, $e := .L}}{{$i}}={{$e}} {{end}}", &d),
            "0=a 1=b "
        );
        assert_eq!(render("{{range .E}}x{{else}}empty{{end}}", &d), "empty");
        assert_eq!(render("{{if .T}}yes{{else}}no{{end}}", &d), "yes");
        assert_eq!(render("{{if .E}}a{{else if .T}}b{{else}}c{{end}}", &d), "b");
        assert_eq!(render("{{with .N}}<{{.}}>{{end}}", &d), "<x>");
        assert_eq!(render("{{$x := .N}}{{$x}}{{$x}}", &d), "xx");
        assert_eq!(render("{{- \" a \" -}} b", &d), " a b");
        assert_eq!(render("{{if eq .N \"x\"}}eq{{end}}", &d), "eq");
        assert_eq!(render("{{if and .T (not .E)}}ok{{end}}", &d), "ok");
    }

    #[test]
    fn string_functions() {
        let d = obj(r#"{"N":"hello world","M":"a,b"}"#);
        assert_eq!(render("{{upper .N}}", &d), "HELLO WORLD");
        assert_eq!(render("{{title .N}}", &d), "Hello World");
        assert_eq!(render("{{lower \"ABC\"}}", &d), "abc");
        assert_eq!(render("{{truncate .N 5}}", &d), "hello");
        assert_eq!(render("{{.N | upper}}", &d), "HELLO WORLD");
        assert_eq!(render("{{split .M \",\"}}", &d), "[a b]");
        assert_eq!(render("{{println .N}}", &d), "hello world\n");
        assert_eq!(render("{{printf \"%-7s|\" \"ab\"}}", &d), "ab     |");
        assert_eq!(render("{{(index (split .M \",\") 1)}}", &d), "b");
    }

    #[test]
    fn errors() {
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{if .A}}x").is_err());
        assert!(Template::parse("{{end}}").is_err());
        let t = Template::parse("{{nosuch .A}}").unwrap();
        assert!(t.render(&Value::Null).is_err());
    }
}
