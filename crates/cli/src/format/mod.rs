//! Output formatting: Go templates, docker's `table` formats, and Go's tabwriter layout.

pub(crate) mod template;
pub(crate) mod units;
pub(crate) mod value;

pub(crate) use template::{Template, TemplateError};
pub(crate) use value::Value;

/// Go's `text/tabwriter` with docker's settings (`NewWriter(out, 10, 1, 3, ' ', 0)`):
/// tab-terminated cells are padded to the widest cell of their column block plus 3,
/// with a minimum width of 10. Text after the last tab of a line is not part of a column.
pub(crate) fn tabwrite(text: &str) -> String {
    tabwrite_with(text, 10, 3)
}

/// [`tabwrite`] with explicit minwidth and padding.
pub(crate) fn tabwrite_with(text: &str, minwidth: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut widths: Vec<usize> = Vec::new();
    format_block(
        &lines,
        0,
        lines.len(),
        &mut widths,
        minwidth,
        padding,
        &mut out,
    );
    out
}

fn width_of(s: &str) -> usize {
    s.chars().count()
}

fn format_block(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    minwidth: usize,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        // A cell exists in this column: print the lines before the block, then size the block.
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = minwidth;
        while this < line1 && column + 1 < lines[this].len() {
            let w = width_of(lines[this][column]) + padding;
            width = width.max(w);
            this += 1;
        }
        widths.push(width);
        format_block(lines, line0, this, widths, minwidth, padding, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(lines: &[Vec<&str>], from: usize, to: usize, widths: &[usize], out: &mut String) {
    for (i, line) in lines.iter().enumerate().take(to).skip(from) {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < line.len()
                && let Some(w) = widths.get(j)
            {
                let pad = w.saturating_sub(width_of(cell));
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

/// A `--format` value, as docker's formatter `Context` handles it.
#[derive(Debug, Clone)]
pub(crate) struct Format {
    /// `table …` format: a header row is printed and columns are aligned.
    pub(crate) table: bool,
    template: Template,
}

impl Format {
    /// Parses a format string. `default_table` is used for `table` alone or an empty format.
    pub(crate) fn new(format: &str, default_table: &str) -> Result<Self, TemplateError> {
        let f = if format.is_empty() || format == "table" {
            default_table
        } else {
            format
        };
        let table = f.starts_with("table");
        let body = if table { &f["table".len()..] } else { f };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let template = Template::parse(&body)
            .map_err(|e| TemplateError(format!("template parsing error: {e}")))?;
        Ok(Self { table, template })
    }

    /// Renders rows, with the header (rendered from `header`) when this is a table format.
    pub(crate) fn render_rows(
        &self,
        header: &Value,
        rows: &[Value],
    ) -> Result<String, TemplateError> {
        let mut buf = String::new();
        for row in rows {
            buf.push_str(&self.template.render(row)?);
            buf.push('\n');
        }
        if self.table {
            let mut all = self.template.render_header(header)?;
            all.push('\n');
            all.push_str(&buf);
            Ok(tabwrite(&all))
        } else {
            Ok(buf)
        }
    }
}

/// Renders a plain (non-table) template once, for `inspect -f`, `info -f`, `version -f`:
/// Go's output plus a newline.
pub(crate) fn render_once(format: &str, data: &Value) -> Result<String, TemplateError> {
    let t = Template::parse(format)
        .map_err(|e| TemplateError(format!("template parsing error: {e}")))?;
    let mut s = t.render(data)?;
    s.push('\n');
    Ok(s)
}

/// JSON indented by 4 spaces, as Go's `json.Indent(…, "", "    ")`.
pub(crate) fn indent_json(v: &impl serde::Serialize) -> Result<String, serde_json::Error> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    v.serialize(&mut ser)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// docker's `Ellipsis`: cut to `max` characters, the last being `…`.
pub(crate) fn ellipsis(s: &str, max: usize) -> String {
    if width_of(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// stringid.TruncateID: drop the algorithm prefix and keep 12 characters.
pub(crate) fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map(|(_, r)| r).unwrap_or(id);
    id.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabwriter_matches_go() {
        let text = "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nbusybox\tlatest\t1234567890ab\t2 weeks ago\t4.27MB\n";
        let want = "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\n\
                    busybox      latest    1234567890ab   2 weeks ago   4.27MB\n";
        assert_eq!(tabwrite(text), want);
    }

    #[test]
    fn tabwriter_blocks_and_short_lines() {
        // Lines with fewer cells end a column block, as in Go.
        let text = "a\tb\tc\nlonger cell\tx\n\nz\n";
        assert_eq!(
            tabwrite(text),
            "a             b         c\nlonger cell   x\n\nz\n"
        );
    }

    #[test]
    fn table_format_with_header() {
        let f = Format::new("table {{.Repository}}\\t{{.Tag}}", "").unwrap();
        let header = Value::str_obj([("Repository", "REPOSITORY".into()), ("Tag", "TAG".into())]);
        let rows = vec![
            Value::str_obj([("Repository", "busybox".into()), ("Tag", "latest".into())]),
            Value::str_obj([("Repository", "alpine".into()), ("Tag", "3.19".into())]),
        ];
        let out = f.render_rows(&header, &rows).unwrap();
        assert_eq!(
            out,
            "REPOSITORY   TAG\nbusybox      latest\nalpine       3.19\n"
        );
    }

    #[test]
    fn plain_format_and_json_row() {
        let f = Format::new("{{json .}}", "").unwrap();
        let rows = vec![Value::str_obj([
            ("ID", "abc".into()),
            ("Tag", "latest".into()),
        ])];
        let out = f.render_rows(&Value::Null, &rows).unwrap();
        assert_eq!(out, "{\"ID\":\"abc\",\"Tag\":\"latest\"}\n");
        let f = Format::new("{{.ID}}: {{upper .Tag}}", "").unwrap();
        assert_eq!(f.render_rows(&Value::Null, &rows).unwrap(), "abc: LATEST\n");
    }

    #[test]
    fn header_functions_pass_through() {
        let f = Format::new("table {{upper .Tag}}\\t{{truncate .ID 3}}", "").unwrap();
        let header = Value::str_obj([("ID", "IMAGE ID".into()), ("Tag", "TAG".into())]);
        let rows = vec![Value::str_obj([
            ("ID", "abcdef".into()),
            ("Tag", "latest".into()),
        ])];
        assert_eq!(
            f.render_rows(&header, &rows).unwrap(),
            "TAG       IMAGE ID\nLATEST    abc\n"
        );
    }

    #[test]
    fn indent_and_helpers() {
        let v: Value = serde_json::from_str(r#"[{"B":[],"A":{}}]"#).unwrap();
        assert_eq!(
            indent_json(&v).unwrap(),
            "[\n    {\n        \"B\": [],\n        \"A\": {}\n    }\n]"
        );
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(ellipsis("abc", 4), "abc");
        assert_eq!(truncate_id("sha256:0123456789abcdef"), "0123456789ab");
    }
}
