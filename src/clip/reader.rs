//! The one place that knows which YAML readers we use: the fast one (`crate::yaml`) for the
//! plain block YAML nearly every clipping is written in, serde_yaml for the rest and for every
//! error message. Messages name the field, give positions as lines of the file (not of the
//! front matter block), and say so when a tab in the indentation is the cause.

use serde::de::DeserializeOwned;

/// Reads `yaml`, the front matter block whose first line is line `first_line` of the file.
pub(super) fn from_yaml<T: DeserializeOwned>(yaml: &str, first_line: usize) -> Result<T, String> {
    if let Some(value) = crate::yaml::parse(yaml)
        && let Ok(v) = serde_json::from_value(value)
    {
        return Ok(v);
    }
    let de = serde_yaml::Deserializer::from_str(yaml);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let error_line = inner.location().map(|l| l.line());
        if let Some(line) = tab_indented_line(yaml, error_line) {
            return format!("tab character in indentation at line {}: YAML allows spaces only", line + first_line - 1);
        }
        let msg = without_values(&shift_lines(&inner.to_string(), first_line - 1));
        // serde_yaml names the field itself when it knows it.
        if path == "." || path.is_empty() || msg.starts_with(&format!("{path}: ")) {
            msg
        } else {
            format!("{path}: {msg}")
        }
    })
}

/// The first line (1-based, within `yaml`) whose indentation holds a tab, at or before the line
/// the error was found on.
fn tab_indented_line(yaml: &str, error_line: Option<usize>) -> Option<usize> {
    let last = error_line.unwrap_or(usize::MAX);
    yaml.split('\n')
        .enumerate()
        .take(last)
        .find(|(_, line)| line.chars().take_while(|c| c.is_whitespace()).any(|c| c == '\t'))
        .map(|(i, _)| i + 1)
}

/// Adds `by` to every position (`line N`) in a serde_yaml message, so that it counts lines of the
/// file. Only `at line N column M` is rewritten: a value quoted in the message is left alone.
fn shift_lines(msg: &str, by: usize) -> String {
    const AT: &str = "at line ";
    let mut out = String::with_capacity(msg.len() + 4);
    let mut rest = msg;
    while let Some(i) = rest.find(AT) {
        out.push_str(&rest[..i + AT.len()]);
        rest = &rest[i + AT.len()..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match rest[..digits].parse::<usize>() {
            Ok(n) if rest[digits..].starts_with(" column ") => {
                out.push_str(&(n + by).to_string());
                rest = &rest[digits..];
            }
            _ => {}
        }
    }
    out.push_str(rest);
    out
}

/// The words after which serde quotes a value from the file in backticks.
const VALUE_KINDS: [&str; 5] = ["integer ", "floating point ", "boolean ", "character ", "variant "];

/// A serde message without the file's values: a rejection reason names the field and what was
/// expected, and is shown to operators who may not read the file (a value can be the secret the
/// file holds). Double-quoted strings go, and backtick-quoted numbers, booleans, characters and
/// variant names; key names (`unknown field \`x\``) and what was expected stay.
fn without_values(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut chars = msg.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let quoted_value = c == '"' || (c == '`' && VALUE_KINDS.iter().any(|k| msg[..i].ends_with(k)));
        if !quoted_value {
            out.push(c);
            continue;
        }
        let mut escaped = false;
        for (_, d) in chars.by_ref() {
            match d {
                _ if escaped => escaped = false,
                '\\' if c == '"' => escaped = true,
                d if d == c => break,
                _ => {}
            }
        }
        if out.ends_with(' ') {
            out.pop();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field_and_never_quote_the_value() {
        let secret = "SECRET acme takeover at 40 dollars a share";
        let yaml = format!("quality: \"{secret}\"\n");
        let e = from_yaml::<std::collections::BTreeMap<String, i64>>(&yaml, 2).unwrap_err();
        assert!(!e.contains("SECRET") && !e.contains("acme"), "{e}");
        assert!(e.starts_with("quality: invalid type: string, expected i64 at line 2"), "{e}");
        for (msg, want) in [
            (
                "quality: invalid type: string \"SECRET \\\"x\\\" y\", expected i64 at line 3 column 10",
                "quality: invalid type: string, expected i64 at line 3 column 10",
            ),
            ("invalid value: integer `40`, expected u8", "invalid value: integer, expected u8"),
            ("unknown variant `hush`, expected `a` or `b`", "unknown variant, expected `a` or `b`"),
            ("unknown field `titel`, expected `title`", "unknown field `titel`, expected `title`"),
            (
                "invalid type: floating point `1.5`, expected a string",
                "invalid type: floating point, expected a string",
            ),
        ] {
            assert_eq!(without_values(msg), want);
        }
    }

    #[test]
    fn positions_are_shifted_to_file_lines() {
        let cases: &[(&str, usize, &str)] = &[
            ("x at line 1 column 8", 1, "x at line 2 column 8"),
            (
                "found a tab at line 2 column 1, while scanning a plain scalar at line 1 column 8",
                4,
                "found a tab at line 6 column 1, while scanning a plain scalar at line 5 column 8",
            ),
            (
                "invalid value: string \"at line 3\", expected x at line 1 column 2",
                1,
                "invalid value: string \"at line 3\", expected x at line 2 column 2",
            ),
            ("no position", 3, "no position"),
            ("at line ", 1, "at line "),
        ];
        for &(msg, by, want) in cases {
            assert_eq!(shift_lines(msg, by), want, "{msg}");
        }
    }

    #[test]
    fn tabs_in_indentation_are_found() {
        assert_eq!(tab_indented_line("a: 1\n\tb: 2\n", Some(2)), Some(2));
        assert_eq!(tab_indented_line("a:\n  - x\n \t- y\n", None), Some(3));
        assert_eq!(tab_indented_line("a:\tvalue\n", Some(1)), None);
        assert_eq!(tab_indented_line("a: [\n\n  x\nb: \t\n", Some(2)), None);
    }
}
