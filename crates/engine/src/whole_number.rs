//! Integers in JSON bodies. JSON has one number type, and JSON Schema counts
//! `3.0` as the integer 3, so a client (or a JSON library) that writes a
//! whole number with a fraction part means that integer. Anything with a
//! real fraction, or too large to be exact as a float (2^53), is refused.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// An `i64` that also deserializes from a whole float (`3.0`) up to 2^53.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct WholeNumber(pub i64);

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Whole;

        impl Visitor<'_> for Whole {
            type Value = WholeNumber;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<WholeNumber, E> {
                Ok(WholeNumber(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<WholeNumber, E> {
                i64::try_from(v)
                    .map(WholeNumber)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &"an i64"))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<WholeNumber, E> {
                // Past 2^53 a float no longer spells one integer: the JSON
                // text -9223372036854775809 reads as the float -2^63.
                const LIMIT: f64 = 9_007_199_254_740_992.0;
                if v.fract() == 0.0 && (-LIMIT..=LIMIT).contains(&v) {
                    Ok(WholeNumber(v as i64))
                } else {
                    Err(E::invalid_value(
                        de::Unexpected::Float(v),
                        &"a whole number in the i64 range",
                    ))
                }
            }
        }

        deserializer.deserialize_any(Whole)
    }
}

/// For `#[serde(deserialize_with = ...)]` on an `Option<i64>`.
pub fn option<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<WholeNumber>::deserialize(deserializer)?.map(|n| n.0))
}

/// For `#[serde(deserialize_with = ...)]` on an `Option<Vec<i64>>`.
pub fn option_vec<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<i64>>, D::Error> {
    struct Numbers;

    impl<'de> Visitor<'de> for Numbers {
        type Value = Vec<i64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of whole numbers")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<i64>, A::Error> {
            let mut numbers = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(WholeNumber(n)) = seq.next_element()? {
                numbers.push(n);
            }
            Ok(numbers)
        }
    }

    struct MaybeNumbers;

    impl<'de> Visitor<'de> for MaybeNumbers {
        type Value = Option<Vec<i64>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of whole numbers or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(Numbers).map(Some)
        }
    }

    deserializer.deserialize_option(MaybeNumbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Body {
        #[serde(default, deserialize_with = "option")]
        n: Option<i64>,
        #[serde(default, deserialize_with = "option_vec")]
        ids: Option<Vec<i64>>,
    }

    fn parse(text: &str) -> Result<Body, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn takes_integers_and_whole_floats() {
        assert_eq!(
            parse(r#"{"n": 3, "ids": [1, 2.0, -5e0]}"#),
            Ok(Body {
                n: Some(3),
                ids: Some(vec![1, 2, -5])
            })
        );
        assert_eq!(parse(r#"{"n": 3.0}"#).unwrap().n, Some(3));
        assert_eq!(
            parse(r#"{"n": null, "ids": null}"#),
            Ok(Body { n: None, ids: None })
        );
        assert_eq!(parse("{}"), Ok(Body { n: None, ids: None }));
        assert_eq!(
            parse(r#"{"n": -9223372036854775808}"#).unwrap().n,
            Some(i64::MIN)
        );
    }

    #[test]
    fn refuses_fractions_strings_and_out_of_range() {
        for bad in [
            r#"{"n": 1.5}"#,
            r#"{"n": "1"}"#,
            r#"{"n": 9223372036854775808}"#,
            r#"{"n": 9.3e18}"#,
            r#"{"n": -9223372036854775809}"#,
            r#"{"n": 9007199254740993.0}"#,
            r#"{"n": 1e400}"#,
            r#"{"n": true}"#,
            r#"{"ids": [1.5]}"#,
            r#"{"ids": 1}"#,
            r#"{"ids": ["1"]}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
