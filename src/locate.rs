//! Where things live: which configuration file is used, where the store goes when the
//! configuration does not say, and what counts as a configuration error (exit status 78).
//!
//! The configuration file is the first of:
//! 1. `--config FILE`;
//! 2. `$CLIPFEED_CONFIG`;
//! 3. `$CONFIGURATION_DIRECTORY/clipfeed.yaml` (systemd sets the variable for a unit with
//!    `ConfigurationDirectory=`);
//! 4. `./config/clipfeed.yaml` (a checkout: `cargo run` there never touches a packaged host's
//!    store);
//! 5. `/etc/clipfeed/clipfeed.yaml`.
//!
//! The first two are the operator's explicit choice, used whether or not the file exists (so a
//! typo is an error, not a silent fall-through); the others are used when the file is there.
//! Without a `store` key the store is `$STATE_DIRECTORY/clipfeed.db` (systemd's
//! `StateDirectory=`), else `clipfeed.db` beside the configuration file.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::Config;

/// The file name looked for in `$CONFIGURATION_DIRECTORY`.
pub const FILE_NAME: &str = "clipfeed.yaml";
/// A checkout's configuration, relative to the working directory.
pub const CHECKOUT: &str = "config/clipfeed.yaml";
/// A system-wide installation's configuration.
pub const SYSTEM: &str = "/etc/clipfeed/clipfeed.yaml";
/// The store's file name in `$STATE_DIRECTORY` or beside the configuration.
pub const STORE_NAME: &str = "clipfeed.db";
/// The exit status of a configuration error (`EX_CONFIG` in sysexits.h); the systemd unit does not
/// restart after it (`RestartPreventExitStatus=78`), since a restart cannot fix the file.
pub const EX_CONFIG: u8 = 78;
/// The exit status of every other fatal error.
pub const EX_FAILURE: u8 = 2;

/// How the configuration file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    ConfigurationDirectory,
    Checkout,
    System,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Flag => "--config",
            Source::Env => "$CLIPFEED_CONFIG",
            Source::ConfigurationDirectory => "$CONFIGURATION_DIRECTORY",
            Source::Checkout => "./config",
            Source::System => "/etc/clipfeed",
        })
    }
}

/// The configuration file to use, and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub path: PathBuf,
    pub source: Source,
}

/// A configuration that cannot be found, read or accepted. Anywhere in an error's chain, it
/// makes the process exit with [`EX_CONFIG`].
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct ConfigError(anyhow::Error);

impl ConfigError {
    pub fn new(err: impl Into<anyhow::Error>) -> ConfigError {
        ConfigError(err.into())
    }
}

/// The exit status for a fatal error: `EX_CONFIG` (78) for a configuration error, else
/// `EX_FAILURE`.
pub fn exit_status(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<ConfigError>()) { EX_CONFIG } else { EX_FAILURE }
}

/// Finds the configuration file. `env` reads an environment variable, `is_file` says whether a
/// regular file exists at a path: the real ones in [`locate`], stand-ins in tests.
pub fn find(
    flag: Option<&Path>,
    env: &dyn Fn(&str) -> Option<OsString>,
    is_file: &dyn Fn(&Path) -> bool,
) -> Result<Located, ConfigError> {
    if let Some(path) = flag {
        return Ok(Located { path: path.to_path_buf(), source: Source::Flag });
    }
    if let Some(path) = env("CLIPFEED_CONFIG").filter(|v| !v.is_empty()) {
        return Ok(Located { path: PathBuf::from(path), source: Source::Env });
    }
    let mut looked = Vec::new();
    // systemd joins several ConfigurationDirectory= entries with colons.
    let dirs = env("CONFIGURATION_DIRECTORY").unwrap_or_default();
    for dir in std::env::split_paths(&dirs).filter(|d| !d.as_os_str().is_empty()) {
        let path = dir.join(FILE_NAME);
        if is_file(&path) {
            return Ok(Located { path, source: Source::ConfigurationDirectory });
        }
        looked.push(path);
    }
    for (path, source) in [(CHECKOUT, Source::Checkout), (SYSTEM, Source::System)] {
        let path = PathBuf::from(path);
        if is_file(&path) {
            return Ok(Located { path, source });
        }
        looked.push(path);
    }
    let looked: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
    Err(ConfigError::new(anyhow::anyhow!(
        "no configuration file found (looked for {}); pass --config FILE or set CLIPFEED_CONFIG",
        looked.join(", ")
    )))
}

/// [`find`] with the process's environment and file system.
pub fn locate(flag: Option<&Path>) -> Result<Located, ConfigError> {
    find(flag, &|name| std::env::var_os(name), &|p| p.is_file())
}

/// Finds and loads the configuration; every failure is a [`ConfigError`].
pub fn load(flag: Option<&Path>) -> Result<(Config, Located), ConfigError> {
    let found = locate(flag)?;
    let cfg = Config::load(&found.path).map_err(ConfigError::new)?;
    Ok((cfg, found))
}

/// The store when the configuration has no `store` key: in systemd's state directory when the
/// process has one, else beside the configuration file (`config_dir`).
pub fn default_store(config_dir: &Path) -> PathBuf {
    state_directory_store(&|name| std::env::var_os(name)).unwrap_or_else(|| config_dir.join(STORE_NAME))
}

/// `$STATE_DIRECTORY/clipfeed.db` (the first directory when systemd lists several), if set to an
/// absolute path.
fn state_directory_store(env: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let dirs = env("STATE_DIRECTORY")?;
    let first = std::env::split_paths(&dirs).next()?;
    first.is_absolute().then(|| first.join(STORE_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
    }

    fn files(list: &'static [&'static str]) -> impl Fn(&Path) -> bool {
        move |p| list.iter().any(|f| Path::new(f) == p)
    }

    fn found(
        flag: Option<&str>,
        vars: &'static [(&'static str, &'static str)],
        fs: &'static [&'static str],
    ) -> Located {
        find(flag.map(Path::new), &env_of(vars), &files(fs)).expect("found")
    }

    #[test]
    fn explicit_choices_win_even_when_the_file_is_missing() {
        let every = &[CHECKOUT, SYSTEM, "/etc/cd/clipfeed.yaml"];
        let vars = &[("CLIPFEED_CONFIG", "/env.yaml"), ("CONFIGURATION_DIRECTORY", "/etc/cd")];
        let l = found(Some("/flag.yaml"), vars, every);
        assert_eq!((l.path, l.source), (PathBuf::from("/flag.yaml"), Source::Flag));
        let l = found(None, vars, every);
        assert_eq!((l.path, l.source), (PathBuf::from("/env.yaml"), Source::Env));
    }

    #[test]
    fn implicit_places_are_tried_in_order_and_must_exist() {
        let l = found(None, &[("CONFIGURATION_DIRECTORY", "/etc/cd")], &["/etc/cd/clipfeed.yaml", CHECKOUT, SYSTEM]);
        assert_eq!((l.path, l.source), (PathBuf::from("/etc/cd/clipfeed.yaml"), Source::ConfigurationDirectory));
        // Several directories (systemd joins them with colons): the first that has the file.
        let l = found(None, &[("CONFIGURATION_DIRECTORY", "/a:/b")], &["/b/clipfeed.yaml", SYSTEM]);
        assert_eq!(l.path, PathBuf::from("/b/clipfeed.yaml"));
        // Set, but without the file there: the checkout comes next, then /etc.
        let l = found(None, &[("CONFIGURATION_DIRECTORY", "/etc/cd"), ("CLIPFEED_CONFIG", "")], &[CHECKOUT, SYSTEM]);
        assert_eq!((l.path, l.source), (PathBuf::from(CHECKOUT), Source::Checkout));
        let l = found(None, &[], &[SYSTEM]);
        assert_eq!((l.path, l.source), (PathBuf::from(SYSTEM), Source::System));
    }

    #[test]
    fn nothing_found_names_every_place_looked_at() {
        let err = find(None, &env_of(&[("CONFIGURATION_DIRECTORY", "/etc/cd")]), &files(&[])).unwrap_err();
        let msg = err.to_string();
        for place in ["/etc/cd/clipfeed.yaml", CHECKOUT, SYSTEM, "--config"] {
            assert!(msg.contains(place), "{msg}");
        }
        assert_eq!(exit_status(&anyhow::Error::new(err)), EX_CONFIG);
    }

    #[test]
    fn configuration_errors_are_found_under_context() {
        let config = anyhow::Error::new(ConfigError::new(anyhow::anyhow!("key 'listen': bad")));
        let wrapped = config.context("starting");
        assert_eq!(exit_status(&wrapped), EX_CONFIG);
        assert!(format!("{wrapped:#}").contains("key 'listen': bad"));
        assert_eq!(exit_status(&anyhow::anyhow!("cannot listen")), EX_FAILURE);
    }

    #[test]
    fn the_store_goes_to_the_state_directory_when_there_is_one() {
        let store = |vars: &'static [(&'static str, &'static str)]| state_directory_store(&env_of(vars));
        assert_eq!(
            store(&[("STATE_DIRECTORY", "/var/lib/clipfeed")]),
            Some(PathBuf::from("/var/lib/clipfeed/clipfeed.db"))
        );
        assert_eq!(
            store(&[("STATE_DIRECTORY", "/var/lib/a:/var/lib/b")]),
            Some(PathBuf::from("/var/lib/a/clipfeed.db"))
        );
        assert_eq!(store(&[("STATE_DIRECTORY", "relative")]), None);
        assert_eq!(store(&[]), None);
    }
}
