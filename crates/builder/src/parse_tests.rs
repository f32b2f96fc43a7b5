//! Parser tests: moby's documented syntax and the legacy builder's error texts (checked against
//! dockerd 20.10's legacy builder, whose texts differ only in "line N" vs "on line N").

use std::time::Duration;

use super::*;

fn kinds(text: &str) -> Vec<Kind> {
    parse("Dockerfile", text)
        .unwrap()
        .instructions
        .into_iter()
        .map(|i| i.kind)
        .collect()
}

fn err(text: &str) -> String {
    parse("Dockerfile", text).unwrap_err().to_string()
}

fn shell(s: &str) -> CommandLine {
    CommandLine {
        args: vec![s.to_string()],
        json: false,
    }
}

fn exec(a: &[&str]) -> CommandLine {
    CommandLine {
        args: a.iter().map(|s| s.to_string()).collect(),
        json: true,
    }
}

#[test]
fn every_instruction() {
    let text = r#"# syntax=docker/dockerfile:1
# check=skip=all
ARG BASE=debian
FROM --platform=linux/amd64 ${BASE}:12 AS Build
MAINTAINER someone <a@b.c>
RUN --network=none apt-get update
RUN ["/bin/echo", "hi"]
CMD echo hi
CMD ["a", "b"]
ENTRYPOINT ["/x"]
ENTRYPOINT []
ENV A 1 2
ENV B=2 C="x y" D=e\ f
ARG X Y=1
LABEL a=b "c d"=e
COPY --from=build --chown=1:1 --chmod=755 --link a b /dst/
COPY ["a b", "/c d/"]
ADD --chown=0 x.tar /
WORKDIR /a b
USER app:app
EXPOSE 80/tcp 443 8000-8010/udp
VOLUME ["/data", "/logs"]
VOLUME /a /b
STOPSIGNAL SIGKILL
HEALTHCHECK NONE
HEALTHCHECK --interval=30s --timeout=1m30s --retries=3 --start-period=1.5s CMD curl -f x
HEALTHCHECK CMD ["true"]
SHELL ["/bin/bash", "-c"]
ONBUILD RUN make
"#;
    let got = kinds(text);
    let want = vec![
        Kind::Arg(vec![("BASE".into(), Some("debian".into()))]),
        Kind::From {
            image: "${BASE}:12".into(),
            name: Some("build".into()),
            platform: Some("linux/amd64".into()),
        },
        Kind::Maintainer("someone <a@b.c>".into()),
        Kind::Run {
            cmd: shell("apt-get update"),
            network: Some("none".into()),
        },
        Kind::Run {
            cmd: exec(&["/bin/echo", "hi"]),
            network: None,
        },
        Kind::Cmd(shell("echo hi")),
        Kind::Cmd(exec(&["a", "b"])),
        Kind::Entrypoint(exec(&["/x"])),
        Kind::Entrypoint(exec(&[])),
        Kind::Env(vec![("A".into(), "1 2".into())]),
        Kind::Env(vec![
            ("B".into(), "2".into()),
            ("C".into(), "\"x y\"".into()),
            ("D".into(), "e\\ f".into()),
        ]),
        Kind::Arg(vec![("X".into(), None), ("Y".into(), Some("1".into()))]),
        Kind::Label(vec![
            ("a".into(), "b".into()),
            ("\"c d\"".into(), "e".into()),
        ]),
        Kind::Copy(CopySpec {
            sources: vec!["a".into(), "b".into()],
            dest: "/dst/".into(),
            from: Some("build".into()),
            chown: Some("1:1".into()),
            chmod: Some("755".into()),
            link: true,
        }),
        Kind::Copy(CopySpec {
            sources: vec!["a b".into()],
            dest: "/c d/".into(),
            ..Default::default()
        }),
        Kind::Add(CopySpec {
            sources: vec!["x.tar".into()],
            dest: "/".into(),
            chown: Some("0".into()),
            ..Default::default()
        }),
        Kind::Workdir("/a b".into()),
        Kind::User("app:app".into()),
        Kind::Expose(vec!["443".into(), "80/tcp".into(), "8000-8010/udp".into()]),
        Kind::Volume(vec!["/data".into(), "/logs".into()]),
        Kind::Volume(vec!["/a".into(), "/b".into()]),
        Kind::StopSignal("SIGKILL".into()),
        Kind::Healthcheck(Healthcheck::None),
        Kind::Healthcheck(Healthcheck::Cmd {
            test: vec!["CMD-SHELL".into(), "curl -f x".into()],
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(90),
            start_period: Duration::from_millis(1500),
            start_interval: Duration::ZERO,
            retries: 3,
        }),
        Kind::Healthcheck(Healthcheck::Cmd {
            test: vec!["CMD".into(), "true".into()],
            interval: Duration::ZERO,
            timeout: Duration::ZERO,
            start_period: Duration::ZERO,
            start_interval: Duration::ZERO,
            retries: 0,
        }),
        Kind::Shell(vec!["/bin/bash".into(), "-c".into()]),
        Kind::Onbuild("RUN make".into()),
    ];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    let df = parse("Dockerfile", text).unwrap();
    assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.escape, '\\');
}

#[test]
fn continuations_comments_and_lines() {
    let text = "FROM scratch\n\n# a comment\n  # indented comment\nRUN echo a \\\n  # inside\n\n    b \\  \n c\nLABEL x=1\n";
    let df = parse("Dockerfile", text).unwrap();
    let run = &df.instructions[1];
    assert_eq!(run.line, 5);
    assert_eq!(run.end_line, 9);
    assert_eq!(run.original, "RUN echo a     b  c");
    assert_eq!(
        run.kind,
        Kind::Run {
            cmd: shell("echo a     b  c"),
            network: None
        }
    );
    assert_eq!(df.instructions[2].line, 10);
}

#[test]
fn lowercase_keywords_and_crlf() {
    let got = kinds("from busybox\r\nrun echo hi\r\n");
    assert_eq!(
        got[1],
        Kind::Run {
            cmd: shell("echo hi"),
            network: None
        }
    );
}

#[test]
fn escape_directive() {
    let text = "# escape=`\nFROM scratch\nCOPY a `\n  C:\\dir\\\n";
    let df = parse("Dockerfile", text).unwrap();
    assert_eq!(df.escape, '`');
    assert_eq!(
        df.instructions[1].kind,
        Kind::Copy(CopySpec {
            sources: vec!["a".into()],
            dest: "C:\\dir\\".into(),
            ..Default::default()
        })
    );
    // A directive after a comment or an instruction is a plain comment.
    let df = parse("Dockerfile", "# hello\n# escape=`\nFROM x\nRUN a \\\n b\n").unwrap();
    assert_eq!(df.escape, '\\');
    assert_eq!(df.instructions.len(), 2);
    // Directives are case-insensitive and may have blanks around `=`.
    let df = parse("Dockerfile", "#ESCAPE = `\nFROM x\n").unwrap();
    assert_eq!(df.escape, '`');
}

#[test]
fn json_form_details() {
    // Not valid JSON: shell form.
    assert_eq!(kinds("FROM x\nCMD [oops\n")[1], Kind::Cmd(shell("[oops")));
    // Spaces inside brackets are fine.
    assert_eq!(kinds("FROM x\nCMD [ \"a\" ]\n")[1], Kind::Cmd(exec(&["a"])));
    // A shell-form COPY splits on whitespace.
    assert_eq!(
        kinds("FROM x\nCOPY [a] b\n")[1],
        Kind::Copy(CopySpec {
            sources: vec!["[a]".into()],
            dest: "b".into(),
            ..Default::default()
        })
    );
}

#[test]
fn onbuild_trigger_text() {
    assert_eq!(
        kinds("FROM x\nonbuild   ADD . /app/src\n")[1],
        Kind::Onbuild("ADD . /app/src".into())
    );
}

#[test]
fn error_texts() {
    let cases: &[(&str, &str)] = &[
        ("", "the Dockerfile (Dockerfile) cannot be empty"),
        (
            "# just a comment\n\n",
            "failed to parse Dockerfile: file with no instructions",
        ),
        (
            "FROM scratch\nRUN x\nfoo bar\n",
            "dockerfile parse error on line 3: unknown instruction: FOO",
        ),
        (
            "FROM scratch\nENV\n",
            "dockerfile parse error on line 2: ENV requires at least one argument",
        ),
        (
            "FROM scratch\nENV a\n",
            "dockerfile parse error on line 2: ENV must have two arguments",
        ),
        (
            "FROM scratch\nLABEL a\n",
            "dockerfile parse error on line 2: LABEL must have two arguments",
        ),
        (
            "FROM scratch\nENV a=b c\n",
            "dockerfile parse error on line 2: Syntax error - can't find = in \"c\". Must be of \
             the form: name=value",
        ),
        (
            "FROM scratch\nCOPY a\n",
            "dockerfile parse error on line 2: COPY requires at least two arguments, but only \
             one was provided. Destination could not be determined",
        ),
        (
            "FROM scratch\nCOPY --foo=1 a b\n",
            "dockerfile parse error on line 2: Unknown flag: foo",
        ),
        (
            "FROM scratch\nCOPY --chown a b\n",
            "dockerfile parse error on line 2: Missing a value on flag: chown",
        ),
        (
            "FROM scratch\nCOPY --from=a --from=b a b\n",
            "dockerfile parse error on line 2: Duplicate flag specified: from",
        ),
        (
            "FROM scratch\nADD --from=a a b\n",
            "dockerfile parse error on line 2: Unknown flag: from",
        ),
        (
            "FROM scratch\nRUN --mount=type=cache,target=/x true\n",
            "dockerfile parse error on line 2: the --mount option requires BuildKit. Refer to \
             https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit \
             enabled",
        ),
        (
            "FROM scratch\nFROM a b\n",
            "dockerfile parse error on line 2: FROM requires either one or three arguments",
        ),
        (
            "FROM scratch AS 1a\n",
            "dockerfile parse error on line 1: invalid name for build stage: \"1a\", name can't \
             start with a number or contain symbols",
        ),
        (
            "FROM scratch\nONBUILD FROM x\n",
            "dockerfile parse error on line 2: FROM isn't allowed as an ONBUILD trigger",
        ),
        (
            "FROM scratch\nONBUILD ONBUILD RUN x\n",
            "dockerfile parse error on line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't \
             allowed",
        ),
        (
            "FROM scratch\nSHELL sh -c\n",
            "dockerfile parse error on line 2: SHELL requires the arguments to be in JSON form",
        ),
        (
            "FROM scratch\nHEALTHCHECK FOO x\n",
            "dockerfile parse error on line 2: Unknown type \"FOO\" in HEALTHCHECK (try CMD)",
        ),
        (
            "FROM scratch\nHEALTHCHECK NONE x\n",
            "dockerfile parse error on line 2: HEALTHCHECK NONE takes no arguments",
        ),
        (
            "FROM scratch\nHEALTHCHECK --interval=abc CMD x\n",
            "dockerfile parse error on line 2: time: invalid duration \"abc\"",
        ),
        (
            "FROM scratch\nHEALTHCHECK --retries=-1 CMD x\n",
            "dockerfile parse error on line 2: --retries must be at least 1 (not -1)",
        ),
        (
            "FROM scratch\nHEALTHCHECK CMD\n",
            "dockerfile parse error on line 2: Missing command after HEALTHCHECK CMD",
        ),
        (
            "FROM scratch\nWORKDIR\n",
            "dockerfile parse error on line 2: WORKDIR requires exactly one argument",
        ),
        (
            "FROM scratch\nSTOPSIGNAL\n",
            "dockerfile parse error on line 2: STOPSIGNAL requires exactly one argument",
        ),
        (
            "FROM scratch\nARG =x\n",
            "dockerfile parse error on line 2: ARG names can not be blank",
        ),
        (
            "FROM scratch\nRUN [\"a\", 1]\n",
            "dockerfile parse error on line 2: when using JSON array syntax, arrays must be \
             comprised of strings only",
        ),
        (
            "FROM scratch\nVOLUME [\"\"]\n",
            "dockerfile parse error on line 2: VOLUME specified can not be an empty string",
        ),
        (
            "# escape=x\nFROM scratch\n",
            "failed to parse Dockerfile: invalid escape token 'x' does not match ` or \\",
        ),
        (
            "# escape=`\n# escape=\\\nFROM scratch\n",
            "failed to parse Dockerfile: only one escape parser directive can be used",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(&err(text), want, "for {text:?}");
    }
    assert_eq!(
        parse("Dockerfile", "FROM x\n\nBAD\n").unwrap_err().line(),
        Some(3)
    );
}

#[test]
fn go_durations() {
    assert_eq!(
        parse_go_duration("1h2m3s").unwrap(),
        Duration::from_secs(3723)
    );
    assert_eq!(
        parse_go_duration("250ms").unwrap(),
        Duration::from_millis(250)
    );
    assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
    assert!(parse_go_duration("5").is_err());
    assert!(parse_go_duration("5x").is_err());
}

#[test]
fn quoted_words_keep_quotes() {
    assert_eq!(
        quoted_words(r#"a="b c" d='e f' g\ h"#, '\\'),
        vec![r#"a="b c""#, "d='e f'", r"g\ h"]
    );
    assert_eq!(quoted_words("x \\", '\\'), vec!["x"]);
    assert_eq!(quoted_words(r#"a="" b"#, '\\'), vec![r#"a="""#, "b"]);
}
