//! Which files are clippings: a path (relative to its root, or to the folder `clipfeed check`
//! searches) with one of the configured extensions (by default [`DEFAULT_EXTENSIONS`]), no dot
//! file or dot folder on the way, and not an editor's or tool's temporary. The scanner and
//! `clipfeed check` both ask [`Config::is_clipping`].

use std::path::Path;

use super::Config;

/// The extensions of clipping files when the configuration names none.
pub const DEFAULT_EXTENSIONS: [&str; 3] = ["md", "markdown", "txt"];

impl Config {
    /// Whether a relative path names a clipping file.
    pub(crate) fn is_clipping(&self, rel: &Path) -> bool {
        let Some(name) = rel.file_name().and_then(|n| n.to_str()) else { return false };
        !rel.components().any(|c| c.as_os_str().to_str().is_none_or(is_hidden))
            && !is_editor_temp(name)
            && self.wants_extension(rel)
    }

    /// Whether a file name has one of the configured extensions (in any case).
    fn wants_extension(&self, path: &Path) -> bool {
        path.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| self.extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
    }
}

/// Whether a file or folder name is hidden (a dot name): nothing in or below it is a clipping,
/// and the scanner does not enter such a folder.
pub(crate) fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

/// Editor and tool temporaries: vim swap files and its `4913` probe, `name~` backups, `.tmp`
/// files, Emacs `#name#` autosaves. Dotfiles are excluded separately.
fn is_editor_temp(name: &str) -> bool {
    name == "4913"
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".swo")
        || name.to_ascii_lowercase().ends_with(".tmp")
        || (name.starts_with('#') && name.ends_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_temporaries() {
        for name in ["4913", "a.md~", ".a.md.swp", "a.swx", "x.TMP", "#a.md#"] {
            assert!(is_editor_temp(name), "{name}");
        }
        for name in ["a.md", "a.txt", "4914", "#a.md"] {
            assert!(!is_editor_temp(name), "{name}");
        }
    }

    #[test]
    fn clippings_by_extension_name_and_folder() {
        let cfg = Config::parse("extensions: [\".MD\", txt]\n", Path::new("/")).unwrap();
        for yes in ["a.md", "b/c.Md", "d.TXT"] {
            assert!(cfg.is_clipping(Path::new(yes)), "{yes}");
        }
        for no in ["a.markdown", ".a.md", "b/.c/d.md", "a.md~", "#a.md#", "a.tmp", "4913", "md", "a.md.swp"] {
            assert!(!cfg.is_clipping(Path::new(no)), "{no}");
        }
        let defaults = Config::built_in();
        assert_eq!(defaults.extensions, DEFAULT_EXTENSIONS);
        assert!(defaults.is_clipping(Path::new("a.markdown")));
    }
}
