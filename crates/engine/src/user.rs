//! User ids: 1 to 64 characters of `[A-Za-z0-9_.-]`.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A validated user id. Cheap to clone (shared), since every command, log
/// row and lock carries one.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(Arc<str>);

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("A user id is {}.", UserId::rule())]
pub struct UserIdError;

impl UserId {
    pub const MAX_LEN: usize = 64;
    /// The characters besides ASCII letters and digits a user id may hold.
    pub const PUNCTUATION: [char; 3] = ['_', '.', '-'];

    /// The rule [`UserId::parse`] checks, in words, for forms and errors
    /// ("1 to 64 characters of letters, digits, '_', '.' and '-'").
    pub fn rule() -> String {
        let quoted: Vec<String> = Self::PUNCTUATION.iter().map(|c| format!("'{c}'")).collect();
        let (last, rest) = quoted.split_last().expect("there is punctuation");
        format!(
            "1 to {} characters of letters, digits, {} and {last}",
            Self::MAX_LEN,
            rest.join(", ")
        )
    }

    pub fn parse(text: &str) -> Result<UserId, UserIdError> {
        let ok = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || Self::PUNCTUATION.contains(&c));
        if ok {
            Ok(UserId(Arc::from(text)))
        } else {
            Err(UserIdError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", &*self.0)
    }
}

impl Borrow<str> for UserId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for UserId {
    type Err = UserIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UserId::parse(s)
    }
}

impl Serialize for UserId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        UserId::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for good in ["oY01WVirLr", "a", "user.name-1_x", &"x".repeat(64)] {
            assert!(UserId::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        let long = "x".repeat(65);
        for bad in [
            "",
            "a b",
            "a/b",
            "<script>",
            "é",
            "a\nb",
            "'; DROP",
            long.as_str(),
            "a\u{200b}",
        ] {
            assert_eq!(UserId::parse(bad), Err(UserIdError), "{bad:?}");
        }
    }

    #[test]
    fn the_rule_in_words_names_every_allowed_character() {
        assert_eq!(
            UserIdError.to_string(),
            "A user id is 1 to 64 characters of letters, digits, '_', '.' and '-'."
        );
    }
}
