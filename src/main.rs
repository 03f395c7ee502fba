//! The `clipfeed` binary: parses the command line, runs it, maps errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: its per-thread heaps take no lock on the serving path
/// (glibc's arenas showed up as lock contention under load) and it hands freed pages back to
/// the system on its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// Positions in mimalloc's `mi_option_e` (mimalloc.h, the same in v2 and v3); the Rust bindings
// do not name these two.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Commits arena memory as it is used rather than a whole arena at once, and hands freed pages
/// back without a delay, so the resident size follows what is live (mostly the published feeds).
/// It must run before the first allocation reserves an arena, so it is a constructor that runs
/// ahead of the default-priority ones (Rust's runtime set-up and mimalloc's own).
extern "C" fn tune_allocator() {
    // SAFETY: mi_option_set only stores the value; it allocates nothing and needs no set-up.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00100")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

fn main() -> ExitCode {
    match clipfeed::cli::run(clipfeed::cli::Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("clipfeed: {err:#}");
            ExitCode::from(2)
        }
    }
}
