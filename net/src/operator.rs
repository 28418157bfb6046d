//! What the node's and the anchor's binaries share with their operators:
//! logging set-up ([`init_logging`], [`LogFormat`]) and configuration files
//! with a comment above every key ([`commented_toml`]).

use std::fmt;
use std::io::IsTerminal;
use std::str::FromStr;

use serde::Serialize;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines; colours only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`
    /// with `message` and every field of the event), for log collectors.
    Json,
}

impl LogFormat {
    /// The name used in flags and configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format {other:?}: use \"text\" or \"json\""
            )),
        }
    }
}

/// Installs the process's log subscriber on stderr: `RUST_LOG` if set, else
/// `filter` (tracing's `EnvFilter` syntax); `format` as given. Text output
/// carries ANSI colour codes only when stderr is a terminal. A second call
/// does nothing.
pub fn init_logging(filter: &str, format: LogFormat) {
    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

/// `value` as TOML with a `#` comment above every key and table: the text
/// `docs` gives for its path (`key`, or `table.key` inside `[table]`),
/// wrapped at 78 columns, then `Default: …` taken from `defaults`. The text
/// parses back to `value`. A key without an entry in `docs` gets no comment
/// (the callers' tests check that none is missing, with
/// [`keys_without_comment`]).
pub fn commented_toml<T: Serialize>(
    header: &str,
    value: &T,
    defaults: &T,
    docs: &[(&str, &str)],
) -> String {
    let body = toml::to_string_pretty(value).unwrap_or_default();
    let defaults = toml::Table::try_from(defaults).unwrap_or_default();
    let mut out = String::new();
    for line in header.lines() {
        push_comment_line(&mut out, line);
    }
    let mut table: Option<String> = None;
    let mut in_array = false;
    for line in body.lines() {
        if in_array {
            out.push_str(line);
            out.push('\n');
            if line.trim_start().starts_with(']') {
                in_array = false;
            }
            continue;
        }
        let trimmed = line.trim();
        let path = if let Some(name) = trimmed
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .filter(|_| !trimmed.starts_with("[["))
        {
            table = Some(name.to_string());
            Some(name.to_string())
        } else {
            toml_key(trimmed).map(|k| match &table {
                Some(t) => format!("{t}.{k}"),
                None => k.to_string(),
            })
        };
        if let Some(path) = path {
            if !out.ends_with("\n\n") {
                out.push('\n');
            }
            if let Some((_, text)) = docs.iter().find(|(k, _)| *k == path) {
                for l in wrap(text, 76) {
                    push_comment_line(&mut out, &l);
                }
            }
            if let Some(default) = lookup(&defaults, &path).filter(|v| !v.is_table()) {
                push_comment_line(&mut out, &format!("Default: {}", inline(default)));
            }
            if trimmed.ends_with('[') {
                in_array = true;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The keys (and tables) of a TOML text written by [`commented_toml`] that
/// are not directly preceded by a `#` comment saying more than the default:
/// what a test asserts is empty.
pub fn keys_without_comment(text: &str) -> Vec<String> {
    let mut missing = Vec::new();
    let mut explained = false;
    let mut in_array = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if in_array {
            in_array = !trimmed.starts_with(']');
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            explained |= !comment.trim().is_empty() && !comment.trim().starts_with("Default:");
            continue;
        }
        let is_table = trimmed.starts_with('[') && trimmed.ends_with(']');
        if let Some(key) = toml_key(trimmed).or(is_table.then_some(trimmed)) {
            if !explained {
                missing.push(key.to_string());
            }
            in_array = trimmed.ends_with('[');
        }
        explained = false;
    }
    missing
}

/// The bare key of a `key = value` line.
fn toml_key(line: &str) -> Option<&str> {
    let (key, _) = line.split_once(" = ")?;
    (!key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then_some(key)
}

fn lookup<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut value = table.get(parts.next()?)?;
    for p in parts {
        value = value.as_table()?.get(p)?;
    }
    Some(value)
}

/// A value as it would be written inline.
fn inline(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) if s.is_empty() => "\"\" (empty)".into(),
        other => other.to_string(),
    }
}

fn push_comment_line(out: &mut String, line: &str) {
    if line.is_empty() {
        out.push_str("#\n");
    } else {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
}

/// `text` in lines of at most `width` characters (longer words stay whole);
/// a `\n` in `text` starts a new line.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Inner {
        depth: u32,
    }

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Demo {
        name: String,
        list: Vec<String>,
        inner: Inner,
    }

    #[test]
    fn every_key_commented_and_text_parses_back() {
        let d = Demo {
            name: String::new(),
            list: vec!["a".into(), "b".into()],
            inner: Inner { depth: 3 },
        };
        let docs = [
            ("name", "The name."),
            ("list", "Some entries; a long comment that has to be wrapped over more than one line because it is long."),
            ("inner", "The inner table."),
            ("inner.depth", "How deep."),
        ];
        let text = commented_toml("head line", &d, &d, &docs);
        assert!(text.starts_with("# head line\n"), "{text}");
        assert!(
            text.contains("# Default: \"\" (empty)\nname = \"\""),
            "{text}"
        );
        assert!(text.contains("# Default: 3\ndepth = 3"), "{text}");
        assert!(text.lines().all(|l| l.len() <= 80), "{text}");
        assert_eq!(toml::from_str::<Demo>(&text).unwrap(), d);
        assert!(keys_without_comment(&text).is_empty(), "{text}");
        let bare = commented_toml("", &d, &d, &docs[..1]);
        assert_eq!(
            keys_without_comment(&bare),
            ["list", "[inner]", "depth"],
            "{bare}"
        );
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!("xml".parse::<LogFormat>().is_err());
    }
}
