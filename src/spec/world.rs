//! What validation asks of the host: whether the paths a topology names exist, and whether
//! its seccomp profiles can be honoured. The shell answers for the real host; [`Unchecked`]
//! answers for text alone.

use std::path::Path;

/// The host as validation sees it.
pub trait World {
    /// Something exists at `path` (a bind source).
    fn exists(&self, path: &Path) -> bool;
    /// `path` is a directory (a node's rootfs).
    fn is_dir(&self, path: &Path) -> bool;
    /// `path` is a file (a seccomp profile).
    fn is_file(&self, path: &Path) -> bool;
    /// `path` is the host's root directory once `..` and symbolic links are resolved (a
    /// rootfs that must be refused: `/`, or `../..` from a file near it). Without a file
    /// system, only the text `/` is.
    fn is_root(&self, path: &Path) -> bool {
        path.components()
            .all(|c| c == std::path::Component::RootDir)
    }
    /// Reads the seccomp profile at `path` and checks that topo can honour it; the error is
    /// the diagnostic's message, naming the file and the offending key.
    fn check_seccomp_profile(&self, path: &Path) -> Result<(), String>;
}

/// A host on which every path exists and every seccomp profile is honoured: validation of
/// the text alone, with no file system access.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unchecked;

impl World for Unchecked {
    fn exists(&self, _: &Path) -> bool {
        true
    }

    fn is_dir(&self, _: &Path) -> bool {
        true
    }

    fn is_file(&self, _: &Path) -> bool {
        true
    }

    fn check_seccomp_profile(&self, _: &Path) -> Result<(), String> {
        Ok(())
    }
}
