//! Stock symbols: 1 to 3 ASCII letters, upper-cased on input.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A validated, upper-case stock symbol. `Copy` and four bytes wide, so it
/// can key maps and cross threads without allocation.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Symbol {
    bytes: [u8; 3],
    len: u8,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("A stock symbol is 1 to 3 letters A-Z.")]
pub struct SymbolError;

impl Symbol {
    pub const MAX_LEN: usize = 3;

    pub fn parse(text: &str) -> Result<Symbol, SymbolError> {
        let raw = text.as_bytes();
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !raw.iter().all(u8::is_ascii_alphabetic) {
            return Err(SymbolError);
        }
        let mut bytes = [0u8; 3];
        for (slot, b) in bytes.iter_mut().zip(raw) {
            *slot = b.to_ascii_uppercase();
        }
        Ok(Symbol {
            bytes,
            len: raw.len() as u8,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).expect("ASCII symbol")
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.as_str())
    }
}

impl FromStr for Symbol {
    type Err = SymbolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Symbol::parse(s)
    }
}

impl Serialize for Symbol {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Symbol::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_cases_and_validates() {
        assert_eq!(Symbol::parse("abc").unwrap().as_str(), "ABC");
        assert_eq!(Symbol::parse("S").unwrap().as_str(), "S");
        for bad in ["", "ABCD", "A1", "A B", "É", "A\0", "<s>"] {
            assert_eq!(Symbol::parse(bad), Err(SymbolError), "{bad:?}");
        }
    }

    #[test]
    fn orders_like_its_text() {
        let mut symbols: Vec<Symbol> = ["B", "AB", "A", "ABC"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        symbols.sort();
        let texts: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
        // Byte order of the padded array: "A" < "AB" < "ABC" < "B".
        assert_eq!(texts, ["A", "AB", "ABC", "B"]);
    }
}
