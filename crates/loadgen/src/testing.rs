//! The course's workload files, for tests (the `testing` feature).
//!
//! The project never needs them to build or run; tests use them when
//! `../shared/workloads` is beside the project. A test that needs one and
//! finds it missing is skipped, and says so; in CI (`CI=true`) it fails
//! instead, since there a skipped test is a check that silently did not
//! happen.

use std::path::{Path, PathBuf};

/// Where the course's workload files are when they are beside the project.
pub fn course_workloads() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/workloads")
}

/// The course file `name`, for a test that needs it: `None` (the test
/// skips) when it is missing outside CI, a panic in CI.
pub fn course_file(name: &str) -> Option<PathBuf> {
    find(&course_workloads(), name, in_ci())
}

fn find(dir: &Path, name: &str, in_ci: bool) -> Option<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        return Some(path);
    }
    let missing = format!("the course file {name} (looked for at {})", path.display());
    assert!(!in_ci, "{missing} is required in CI (CI=true)");
    eprintln!("SKIPPED: {missing} is not there");
    None
}

/// The course file `name` if it is there, for a test that has a workload
/// of its own to use otherwise (so nothing is skipped either way).
pub fn course_file_if_present(name: &str) -> Option<PathBuf> {
    Some(course_workloads().join(name)).filter(|path| path.is_file())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_course_file_skips_outside_ci() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find(dir.path(), "10User_testWorkLoad.txt", false), None);
        std::fs::write(dir.path().join("here.txt"), "[1] ADD,u,1\n").unwrap();
        assert_eq!(
            find(dir.path(), "here.txt", true),
            Some(dir.path().join("here.txt"))
        );
    }

    #[test]
    #[should_panic(expected = "is required in CI")]
    fn a_missing_course_file_fails_in_ci() {
        let dir = tempfile::tempdir().unwrap();
        find(dir.path(), "10User_testWorkLoad.txt", true);
    }
}
