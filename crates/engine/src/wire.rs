//! The JSON bodies both ends of the API agree on: the command a client
//! sends to `POST /api/v1/commands`, and the error every refusal answers
//! with. The server reads commands and writes errors; the replayer
//! (`loadgen`) writes commands and reads errors; both use these one
//! definitions, so they cannot drift apart.
//!
//! Text fields are `Cow`: the server borrows them from the request body
//! (no copy per field), a client borrows them from its own records.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::command::{CommandName, CommandRequest};
use crate::rejection::{RejectCode, Rejection};

/// A command as it travels over HTTP. Unknown fields are refused, so that
/// a misspelt field is an error rather than silently ignored; `amount` is
/// a decimal string, as JSON numbers are not exact. Absent fields are left
/// out when written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandBody<'a> {
    #[serde(borrow)]
    pub command: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub user: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub filename: Option<Cow<'a, str>>,
    /// A whole number; `3.0` is taken as 3, as JSON does not tell them apart.
    #[serde(
        default,
        deserialize_with = "crate::whole_number::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub transaction_num: Option<i64>,
}

impl<'a> CommandBody<'a> {
    /// Reads a body: one JSON object. serde would also take the fields as a
    /// JSON array (`["ADD", "u", null, "1.00"]`), which no client means and
    /// the API does not document, so anything but an object is refused.
    pub fn from_json(body: &'a [u8]) -> Result<CommandBody<'a>, String> {
        if !body.trim_ascii_start().starts_with(b"{") {
            return Err("a command is a JSON object".to_owned());
        }
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }

    /// The structurally valid command and its transaction number (the
    /// idempotency key, from 1 to [`crate::transaction_num::MAX_CLIENT`]
    /// when present). Every refusal here is
    /// [`crate::RejectKind::Malformed`]; the amount is checked later, by
    /// [`CommandRequest::command`], so that a refused amount is recorded.
    pub fn decode(&self) -> Result<(CommandRequest, Option<i64>), Rejection> {
        let name: CommandName = self.command.parse()?;
        let request = CommandRequest::new(
            name,
            self.user.as_deref(),
            self.symbol.as_deref(),
            self.amount.as_deref(),
            self.filename.as_deref(),
        )?;
        if self
            .transaction_num
            .is_some_and(|n| !crate::transaction_num::is_client_chosen(n))
        {
            return Err(Rejection::new(
                RejectCode::InvalidTransactionNum,
                format!(
                    "transaction_num must be a whole number from 1 to {}.",
                    crate::transaction_num::MAX_CLIENT
                ),
            ));
        }
        Ok((request, self.transaction_num))
    }
}

/// Every error the API answers: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody<'a> {
    #[serde(borrow)]
    pub error: ErrorDetail<'a>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail<'a> {
    /// Stable, for programs (`insufficient_funds`).
    #[serde(borrow)]
    pub code: Cow<'a, str>,
    /// A sentence, for people.
    #[serde(default, borrow)]
    pub message: Cow<'a, str>,
}

impl<'a> ErrorBody<'a> {
    pub fn new(code: &'a str, message: &'a str) -> ErrorBody<'a> {
        ErrorBody {
            error: ErrorDetail {
                code: Cow::Borrowed(code),
                message: Cow::Borrowed(message),
            },
        }
    }

    /// An error body as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain strings serialize")
    }

    /// The code of an answer's body, if it is an error body.
    pub fn code_of(body: &[u8]) -> Option<String> {
        serde_json::from_slice::<ErrorBody>(body)
            .ok()
            .map(|body| body.error.code.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(s))
    }

    #[test]
    fn a_body_decodes_into_a_request_and_its_transaction_number() {
        let body = CommandBody {
            command: "buy".into(),
            user: text("u"),
            symbol: text("abc"),
            amount: text("12.50"),
            transaction_num: Some(3),
            ..CommandBody::default()
        };
        let (request, txn) = body.decode().unwrap();
        assert_eq!(txn, Some(3));
        assert_eq!(request.symbol.unwrap().as_str(), "ABC");
        // Above 2^53 - 1 is the system's own range.
        for bad in [0, -1, i64::MIN, 1 << 53, i64::MAX] {
            let body = CommandBody {
                transaction_num: Some(bad),
                ..body.clone()
            };
            assert_eq!(
                body.decode().unwrap_err().code,
                RejectCode::InvalidTransactionNum
            );
        }
        let unknown = CommandBody {
            command: "STEAL".into(),
            ..CommandBody::default()
        };
        assert_eq!(
            unknown.decode().unwrap_err().code,
            RejectCode::UnknownCommand
        );
    }

    #[test]
    fn a_body_is_a_json_object_and_nothing_else() {
        let body = CommandBody::from_json(br#" {"command": "ADD", "user": "u", "amount": "1.00"}"#);
        assert_eq!(body.unwrap().amount.as_deref(), Some("1.00"));
        for bad in [
            &br#"["ADD", "u", null, "1.00"]"#[..],
            b"[]",
            b"null",
            b"\"ADD\"",
            b"",
            br#"{"command": "ADD", "amout": "1.00"}"#,
            br#"{"command": "ADD"} {}"#,
        ] {
            assert!(
                CommandBody::from_json(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_body_is_written_with_only_the_fields_it_has_and_reads_back() {
        let body = CommandBody {
            command: "COMMIT_BUY".into(),
            user: text("u\"1"),
            transaction_num: Some(4),
            ..CommandBody::default()
        };
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(
            json,
            r#"{"command":"COMMIT_BUY","user":"u\"1","transaction_num":4}"#
        );
        assert_eq!(CommandBody::from_json(json.as_bytes()).unwrap(), body);
    }

    #[test]
    fn an_error_body_round_trips_and_tells_its_code() {
        let json = ErrorBody::new("insufficient_funds", "no").to_json();
        assert_eq!(
            json,
            br#"{"error":{"code":"insufficient_funds","message":"no"}}"#
        );
        assert_eq!(
            ErrorBody::code_of(&json).as_deref(),
            Some("insufficient_funds")
        );
        assert_eq!(ErrorBody::code_of(br#"{"error":{"message":"no"}}"#), None);
        assert_eq!(ErrorBody::code_of(b"<html>"), None);
        assert_eq!(ErrorBody::code_of(b""), None);
    }
}
