//! The supervisor's token: from the configuration, or, for an embedded
//! instance without one, generated once and kept in the data directory so
//! it survives restarts.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::auth::generate_token;

pub const TOKEN_FILE: &str = "admin-token";

/// Where the token came from, which decides what start-up says about it.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenSource {
    Configured,
    /// Read from this file, written by an earlier start.
    Kept(PathBuf),
    /// Made now and saved to this file: the only time it is shown.
    Generated(PathBuf),
}

pub fn resolve(
    configured: Option<&str>,
    data_dir: &Path,
) -> std::io::Result<(String, TokenSource)> {
    if let Some(token) = configured {
        return Ok((token.to_owned(), TokenSource::Configured));
    }
    let path = data_dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            return Ok((text.trim().to_owned(), TokenSource::Kept(path)));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(data_dir)?;
    let token = generate_token();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path)?;
    writeln!(file, "{token}")?;
    file.sync_all()?;
    Ok((token, TokenSource::Generated(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let (first, source) = resolve(None, dir.path()).unwrap();
        assert!(matches!(source, TokenSource::Generated(_)));
        let (second, source) = resolve(None, dir.path()).unwrap();
        assert_eq!(first, second);
        assert!(matches!(source, TokenSource::Kept(_)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(TOKEN_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read the token");
        }
        assert_eq!(
            resolve(Some("given"), dir.path()).unwrap(),
            ("given".into(), TokenSource::Configured)
        );
    }
}
