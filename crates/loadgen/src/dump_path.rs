//! Where a DUMPLOG's XML is saved. The file name comes from the workload,
//! which is input, not configuration: a workload must not be able to make
//! the replaying client write outside the directory it was given.

use std::path::{Component, Path, PathBuf};

/// Why a DUMPLOG file name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeDumpName {
    #[error("the file name is empty")]
    Empty,
    #[error("the file name holds a NUL or control character")]
    ControlCharacter,
    #[error("the file name is an absolute path")]
    Absolute,
    #[error("the file name climbs out of the output directory with \"..\"")]
    ParentDirectory,
    #[error("the file name ends with a \"/\": it names a directory")]
    Directory,
}

/// The path inside `out_dir` that a DUMPLOG file name designates: a leading
/// `./` (the course files' `./testLOG`) is dropped, subdirectories are
/// allowed, anything that could leave `out_dir` is refused.
pub fn resolve_dump_path(out_dir: &Path, name: &str) -> Result<PathBuf, UnsafeDumpName> {
    if name.chars().any(char::is_control) {
        return Err(UnsafeDumpName::ControlCharacter);
    }
    if name.ends_with('/') || name.ends_with('\\') {
        return Err(UnsafeDumpName::Directory);
    }
    let mut relative = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(UnsafeDumpName::ParentDirectory),
            Component::RootDir | Component::Prefix(_) => return Err(UnsafeDumpName::Absolute),
        }
    }
    if relative.as_os_str().is_empty() {
        return Err(UnsafeDumpName::Empty);
    }
    Ok(out_dir.join(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_names_inside_the_output_directory() {
        let out = Path::new("/tmp/out");
        assert_eq!(
            resolve_dump_path(out, "./testLOG"),
            Ok(PathBuf::from("/tmp/out/testLOG"))
        );
        assert_eq!(
            resolve_dump_path(out, "testLOG"),
            Ok(PathBuf::from("/tmp/out/testLOG"))
        );
        assert_eq!(
            resolve_dump_path(out, "logs/./a.xml"),
            Ok(PathBuf::from("/tmp/out/logs/a.xml"))
        );
        assert_eq!(
            resolve_dump_path(out, "..x"),
            Ok(PathBuf::from("/tmp/out/..x"))
        );
    }

    #[test]
    fn refuses_names_that_could_leave_it() {
        let out = Path::new("/tmp/out");
        let cases = [
            ("../x", UnsafeDumpName::ParentDirectory),
            ("a/../../b", UnsafeDumpName::ParentDirectory),
            ("a/..", UnsafeDumpName::ParentDirectory),
            ("/etc/passwd", UnsafeDumpName::Absolute),
            ("", UnsafeDumpName::Empty),
            (".", UnsafeDumpName::Empty),
            ("./", UnsafeDumpName::Directory),
            ("logs/", UnsafeDumpName::Directory),
            ("a\0b", UnsafeDumpName::ControlCharacter),
            ("a\nb", UnsafeDumpName::ControlCharacter),
        ];
        for (name, why) in cases {
            assert_eq!(resolve_dump_path(out, name), Err(why), "{name:?}");
        }
    }
}
