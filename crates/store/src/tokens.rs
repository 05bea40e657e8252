//! Personal API tokens (SPEC section 4): bearer tokens a trader makes for
//! their own account on the web pages. Only a token's SHA-256 is stored, so
//! a copy of the database holds no usable secret; the secret is shown once,
//! when it is made.

use engine::UserId;

/// The SHA-256 of a token's secret: what is stored and looked up.
pub type TokenHash = [u8; 32];

/// A stored token as its owner sees it: never its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    /// The owner's label for it ("laptop script").
    pub name: String,
    pub created_ms: i64,
    /// When it stopped working; `None` while it works.
    pub revoked_ms: Option<i64>,
}

/// A token to store.
#[derive(Clone, Debug)]
pub struct NewApiToken {
    pub user: UserId,
    pub name: String,
    pub hash: TokenHash,
    pub created_ms: i64,
}

/// A change to a trader's means of signing in (API tokens, password), for
/// a back end with one writer.
#[derive(Clone, Debug)]
pub(crate) enum TokenChange {
    Create(NewApiToken),
    /// Revokes token `id` if it is `user`'s and still works.
    Revoke {
        user: UserId,
        id: i64,
        now_ms: i64,
    },
    /// Sets `user`'s password hash, replacing any they had.
    SetPassword {
        user: UserId,
        hash: String,
        now_ms: i64,
    },
}

/// Sets a user's password hash, their first or a new one: the same SQL on
/// both back ends (`$n` placeholders, which SQLite reads as numbered).
pub(crate) const SET_PASSWORD: &str = "INSERT INTO credentials (user_id, password_hash, created_ms)
     VALUES ($1, $2, $3)
     ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash";
