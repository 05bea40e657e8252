//! Passwords: Argon2id with OWASP's parameters (19 MiB of memory, two
//! passes), run on the blocking pool, as each takes tens of milliseconds of
//! CPU that the async workers must not spend.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::web::error::PageError;

/// The shortest and longest passwords accepted. The longest bounds the
/// work a hash costs.
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

/// What is wrong with a new password, if anything.
pub fn check(password: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        Some(format!(
            "Choose a password of at least {MIN_LEN} characters."
        ))
    } else if chars > MAX_LEN {
        Some(format!("A password is at most {MAX_LEN} characters."))
    } else {
        None
    }
}

/// The PHC string (`$argon2id$v=19$...`) of `password`, with a fresh salt.
pub async fn hash(password: String) -> Result<String, PageError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
    })
    .await
    .map_err(|e| internal(&e.to_string()))?
    .map_err(|e| internal(&e.to_string()))
}

/// A PHC string of a password nobody has: checked against when the user
/// does not exist, so that an unknown name takes as long to refuse as a
/// wrong password and timing does not tell which names exist.
const NOBODY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$bm8tc3VjaC11c2Vy$Kq6hP/l1Z9sXl8mYQZt3H1E8m7cWQf0cKx2xqS1j9nE";

/// Whether `password` matches `stored` (or, with no stored hash, spends
/// the same effort and says no).
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, PageError> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| NOBODY.to_owned());
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok();
        known && matches
    })
    .await
    .map_err(|e| internal(&e.to_string()))
}

fn internal(why: &str) -> PageError {
    tracing::error!(why, "password hashing failed");
    PageError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The password could not be checked; the error has been logged.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let stored = hash("correct horse".into()).await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(
            verify("correct horse".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify("correct horsE".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert_ne!(
            stored,
            hash("correct horse".into()).await.unwrap(),
            "salted"
        );
    }

    #[tokio::test]
    async fn an_unknown_user_is_refused_after_the_same_work() {
        // The stand-in hash parses, so the work is really done.
        assert!(argon2::password_hash::phc::PasswordHash::new(NOBODY).is_ok());
        assert!(!verify("anything".into(), None).await.unwrap());
    }

    #[test]
    fn new_passwords_have_a_length_range() {
        assert!(check("short").is_some());
        assert!(check("long enough").is_none());
        assert!(check(&"x".repeat(MAX_LEN + 1)).is_some());
    }
}
