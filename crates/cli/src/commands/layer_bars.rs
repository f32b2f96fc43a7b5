//! The JSON progress stream of `pull` and `push` as docker's CLI shows it on a terminal: one
//! line per layer id (`<id>: Downloading [=====>     ]  12.3MB/45.6MB`), redrawn in place by
//! an indicatif `MultiProgress` keyed by id. A message without an id (`Digest: …`,
//! `Status: …`) freezes the lines drawn so far and is printed below them, as docker's display
//! forgets its ids there. Off a terminal, [`LayerDisplay`] is docker's plain display
//! ([`MessageDisplay`]: `<id>: Pull complete` lines, no bars).
//!
//! Knows nothing of the API: it draws [`JsonMessage`]s.

use std::collections::HashMap;
use std::io::Write;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::archive::{JsonMessage, MessageDisplay};
use crate::format::units;

/// docker draws the bar only on terminals wider than this.
const BAR_MIN_WIDTH: usize = 110;

/// docker's byte counts: `{current:>8}/{total}` (`  12.3MB/45.6MB`), or the current alone
/// when the total is unknown or exceeded.
fn sizes(current: u64, total: u64) -> String {
    let cur = units::human_size(current as f64);
    if total == 0 || current > total {
        format!("{cur:>8}")
    } else {
        format!("{cur:>8}/{}", units::human_size(total as f64))
    }
}

/// The template of a layer line: with a bar and byte counts, counts only, or the status alone.
fn style(kind: Kind) -> ProgressStyle {
    let template = match kind {
        Kind::Bar => "{msg} [{bar:50}] {sizes}",
        Kind::Counts => "{msg} {sizes}",
        Kind::Plain => "{msg}",
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
        .with_key("sizes", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&sizes(s.pos(), s.len().unwrap_or(0)));
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bar,
    Counts,
    Plain,
}

/// Which kind of line a message makes (docker's `JSONProgress.String()` rules).
fn kind_of(m: &JsonMessage, width: usize) -> Kind {
    let (current, total) = (m.current.unwrap_or(0), m.total.unwrap_or(0));
    if !m.has_progress || (current <= 0 && total <= 0) {
        Kind::Plain
    } else if total > 0 && width > BAR_MIN_WIDTH {
        Kind::Bar
    } else {
        Kind::Counts
    }
}

/// Layer lines on a terminal.
pub(crate) struct LayerBars {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    width: usize,
}

impl LayerBars {
    fn new(width: usize) -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            bars: HashMap::new(),
            width,
        }
    }

    fn show(&mut self, m: &JsonMessage) -> std::io::Result<()> {
        let Some(id) = m.id.as_deref().filter(|i| !i.is_empty()) else {
            self.freeze();
            let mut out = std::io::stdout().lock();
            match m.stream.as_deref() {
                Some(s) if !s.is_empty() => write!(out, "{s}")?,
                _ => writeln!(out, "{}", m.status.as_deref().unwrap_or_default())?,
            }
            return out.flush();
        };
        let bar = match self.bars.get(id) {
            Some(b) => b.clone(),
            None => {
                let b = self.multi.add(ProgressBar::new(0));
                self.bars.insert(id.to_string(), b.clone());
                b
            }
        };
        // Message and counts before the style, so no frame shows a new status with an old
        // bar or the reverse.
        let kind = kind_of(m, self.width);
        bar.set_message(format!("{id}: {}", m.status.as_deref().unwrap_or_default()));
        if kind != Kind::Plain {
            let total = u64::try_from(m.total.unwrap_or(0)).unwrap_or(0);
            let current = u64::try_from(m.current.unwrap_or(0)).unwrap_or(0);
            bar.set_length(total);
            bar.set_position(current);
        }
        bar.set_style(style(kind));
        Ok(())
    }

    /// Draws every line in its last state and starts a new group below them (indicatif leaves
    /// the cursor at the end of its last line: a newline moves below).
    fn freeze(&mut self) {
        if self.bars.is_empty() {
            return;
        }
        for bar in self.bars.values() {
            // `abandon` keeps the last position (`finish` would fill the bar).
            bar.abandon();
        }
        self.bars.clear();
        self.multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out);
        let _ = out.flush();
    }
}

/// The display of a pull's or push's messages: bars on a terminal, docker's lines elsewhere.
pub(crate) enum LayerDisplay {
    Bars(LayerBars),
    Plain(MessageDisplay<std::io::StdoutLock<'static>>),
}

impl LayerDisplay {
    /// Bars when stdout is a terminal.
    pub(crate) fn new(terminal: bool) -> Self {
        if terminal {
            let width = terminal_size::terminal_size_of(std::io::stdout())
                .map(|(w, _)| usize::from(w.0))
                .unwrap_or(0);
            Self::Bars(LayerBars::new(width))
        } else {
            Self::Plain(MessageDisplay::new(std::io::stdout().lock(), false))
        }
    }

    pub(crate) fn show(&mut self, m: &JsonMessage) -> std::io::Result<()> {
        match self {
            Self::Bars(b) => b.show(m),
            Self::Plain(p) => p.show(m),
        }
    }

    /// Leaves every layer line drawn in its final state (call before printing anything else).
    pub(crate) fn finish(&mut self) {
        if let Self::Bars(b) = self {
            b.freeze();
        }
    }
}

impl Drop for LayerDisplay {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str, status: &str, progress: Option<(i64, i64)>) -> JsonMessage {
        JsonMessage {
            id: Some(id.into()),
            status: Some(status.into()),
            stream: None,
            current: progress.map(|p| p.0),
            total: progress.map(|p| p.1),
            has_progress: progress.is_some(),
        }
    }

    #[test]
    fn byte_counts_like_docker() {
        assert_eq!(sizes(12_300_000, 45_600_000), "  12.3MB/45.6MB");
        assert_eq!(sizes(512, 0), "    512B");
        assert_eq!(sizes(10, 5), "     10B");
    }

    #[test]
    fn line_kinds() {
        assert_eq!(kind_of(&msg("a", "Pull complete", None), 200), Kind::Plain);
        assert_eq!(
            kind_of(&msg("a", "Downloading", Some((1, 10))), 200),
            Kind::Bar
        );
        assert_eq!(
            kind_of(&msg("a", "Downloading", Some((1, 10))), 80),
            Kind::Counts,
            "narrow terminals get no bar, as docker's"
        );
        assert_eq!(
            kind_of(&msg("a", "Pulling fs layer", Some((0, 0))), 200),
            Kind::Plain
        );
    }

    /// A terminal that records the lines drawn on it.
    #[derive(Debug, Clone, Default)]
    struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl indicatif::TermLike for Recorder {
        fn width(&self) -> u16 {
            200
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push(s.to_string());
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            if !s.is_empty() {
                self.0.lock().unwrap().push(s.to_string());
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn bar_renders_docker_style() {
        let term = Recorder::default();
        let bar = ProgressBar::with_draw_target(
            Some(100),
            ProgressDrawTarget::term_like(Box::new(term.clone())),
        );
        bar.set_style(style(Kind::Bar));
        bar.set_message("abc: Downloading");
        bar.set_position(50);
        bar.abandon();
        let drawn = term.0.lock().unwrap().clone();
        let want = format!(
            "abc: Downloading [{}>{}]      50B/100B",
            "=".repeat(25),
            " ".repeat(24)
        );
        let last = drawn.iter().rev().find(|l| !l.trim().is_empty());
        assert_eq!(last, Some(&want), "{drawn:?}");
    }
}
