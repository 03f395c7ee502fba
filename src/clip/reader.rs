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
        let msg = shift_lines(&inner.to_string(), first_line - 1);
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

#[cfg(test)]
mod tests {
    use super::*;

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
