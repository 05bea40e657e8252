//! The OpenAPI 3.1 document of the JSON API, at `/api/v1/openapi.json`.
//!
//! Written out here rather than derived: the engine's types stay free of
//! HTTP-documentation dependencies, and the contract (SPEC.md section 4)
//! reads in one place. Tests check that every route is documented and that
//! real responses match these schemas.

use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use engine::{Arg, CommandName, MAX_AMOUNT_TEXT, MAX_FILENAME, UserId};

use crate::api::notifications::{MAX_MARK_READ, MAX_PAGE};
use crate::respond::json_response;

pub async fn document() -> Response {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    let bytes =
        BYTES.get_or_init(|| serde_json::to_vec_pretty(&spec()).expect("JSON value serializes"));
    json_response(StatusCode::OK, bytes.clone())
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn standard_errors() -> Value {
    json!({
        "400": error_response("Malformed request: bad JSON, unknown command, missing or unexpected field, invalid user id or symbol."),
        "401": error_response("No valid bearer token."),
        "403": error_response("The token may not act for this user, or only the supervisor may do this."),
        "413": error_response("The body is too large (a command is at most 16 KiB), as sent or as declared by Content-Length."),
        "431": error_response("The request's target and headers are too large (at most 16 KiB)."),
        "503": error_response("A dependency is down (database, quote service); nothing was changed; safe to retry."),
    })
}

fn with_errors(mut responses: Value, extra: &[(&str, &str)]) -> Value {
    let map = responses.as_object_mut().expect("object");
    for (code, value) in standard_errors().as_object().expect("object") {
        map.insert(code.clone(), value.clone());
    }
    for (code, description) in extra {
        map.insert((*code).to_owned(), error_response(description));
    }
    responses
}

/// The user the examples name: the course's one-user workload's trader.
pub const EXAMPLE_USER: &str = "oY01WVirLr";

/// A command body: one schema per command, with exactly the fields that
/// command takes (SPEC.md section 2). An absent field may also be `null`.
fn command_request() -> Value {
    let user = json!({"$ref": "#/components/schemas/UserId"});
    let symbol = json!({"type": "string", "pattern": "^[A-Za-z]{1,3}$", "description": "Upper-cased on input."});
    // What parses; a parsed amount may still break the rules (positive, at
    // most 1,000,000,000.00), which is a 422.
    let amount = json!({
        "type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$", "maxLength": MAX_AMOUNT_TEXT,
        "description": "Dollars with at most two decimals; the price for SET_*_TRIGGER.",
        "examples": ["100.00"],
    });
    let filename = json!({
        "type": ["string", "null"], "maxLength": MAX_FILENAME, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
        "description": "DUMPLOG only: recorded, never written by the server.",
    });
    let absent = json!({"type": "null"});
    let schema_of = |arg: Arg, schema: &Value| match arg {
        Arg::Required => schema.clone(),
        Arg::Optional => json!({"oneOf": [schema, {"type": "null"}]}),
        Arg::Absent => absent.clone(),
    };
    let one_of: Vec<Value> = CommandName::ALL
        .iter()
        .map(|name| {
            let shape = name.shape();
            let mut required = vec!["command"];
            for (field, arg) in [("user", shape.user), ("symbol", shape.symbol), ("amount", shape.amount)] {
                if arg == Arg::Required {
                    required.push(field);
                }
            }
            let filename = if *name == CommandName::DumpLog { filename.clone() } else { absent.clone() };
            json!({
                "title": name.as_str(),
                "type": "object", "additionalProperties": false, "required": required,
                "properties": {
                    "command": {"const": name.as_str(), "description": "Case-insensitive."},
                    "user": schema_of(shape.user, &user),
                    "symbol": schema_of(shape.symbol, &symbol),
                    "amount": schema_of(shape.amount, &amount),
                    "filename": filename,
                    "transaction_num": {"type": ["integer", "null"], "minimum": 1, "maximum": engine::transaction_num::MAX_CLIENT},
                },
            })
        })
        .collect();
    json!({"oneOf": one_of})
}

/// The whole document.
pub fn spec() -> Value {
    let money =
        json!({"type": "string", "pattern": "^-?[0-9]+\\.[0-9]{2}$", "examples": ["1234.50"]});
    let symbol = json!({"type": "string", "pattern": "^[A-Z]{1,3}$"});
    // "." and ".." are user ids, but no client can put them in a path: URL
    // normalisation turns `/users/..` into `/api/v1/`.
    let user_param = json!({"name": "user", "in": "path", "required": true, "schema": {
        "allOf": [{"$ref": "#/components/schemas/UserId"}, {"not": {"enum": [".", ".."]}}],
        "examples": [EXAMPLE_USER],
    }});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "DayTrader API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The SENG 468 day-trading commands over JSON. Money is a decimal string with two places. \
                Authenticate with `Authorization: Bearer <token>`: the supervisor token acts for anyone.",
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/commands": {"post": {
                "summary": "Run one command",
                "description": "`transaction_num` is the idempotency key: a command sent again with a number already \
                    executed for the user is not run again and answers its first outcome (with `X-Idempotent-Replay: true`). \
                    DUMPLOG answers with the XML audit log. A command without a number runs each time it is sent \
                    and is logged under a number the system chooses, above 2^53 − 1 (the largest a client may use).",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CommandRequest"}}}},
                "responses": with_errors(json!({
                    "200": {"description": "The command ran.", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/CommandResponse"}},
                        "application/xml": {"schema": {"type": "string"}},
                    }},
                }), &[
                    ("404", "Unknown user."),
                    ("409", "Nothing to act on: nothing pending, no trigger amount set; or the transaction number was first used by a web registration."),
                    ("415", "The body is not JSON."),
                    ("422", "A business rule: funds, holdings, amount."),
                ]),
            }},
            "/api/v1/users/{user}": {"get": {
                "summary": "A trader's summary",
                "parameters": [user_param.clone()],
                "responses": with_errors(json!({
                    "200": {"description": "The summary.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Summary"}}}},
                }), &[("404", "Unknown user.")]),
            }},
            "/api/v1/users/{user}/events": {"get": {
                "summary": "A trader's live events (Server-Sent Events)",
                "description": "A `text/event-stream` that stays open. Authorised by the trader's token, the supervisor's, \
                    or (with no Authorization header) the trader's web session cookie, which is how the pages' `EventSource` \
                    connects. Each event's `data:` is one JSON object (see `LiveEvent`): `account` after each of the \
                    trader's commands, `notification` for each new notification, `quote` for new prices of the symbols \
                    the trader holds or has triggers on. Account and notification events carry an `id:`; reconnecting \
                    with `Last-Event-ID` replays what was missed when the server still holds it (the last 64 events, \
                    kept 2 minutes after the last stream closed). A client must read the state afresh (summary, \
                    notifications) on every (re)connect. A comment line comes at least every 15 s. Events from any \
                    instance reach a stream on any instance within 1 s.",
                "parameters": [
                    user_param.clone(),
                    {"name": "Last-Event-ID", "in": "header", "required": false, "schema": {"type": "string", "pattern": "^[0-9]+\\.[0-9]+$"}},
                ],
                "responses": with_errors(json!({
                    "200": {"description": "The stream: `id:`, `data:` and comment lines.", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                }), &[
                    ("404", "Unknown user."),
                    ("429", "The trader holds the most streams allowed on this instance (`too_many_streams`)."),
                ]),
            }},
            "/api/v1/users/{user}/notifications": {"get": {
                "summary": "A trader's notifications, newest first",
                "description": "Triggers that fired or could not, orders that expired. Page with `before` (the previous page's `next_before`).",
                "parameters": [
                    user_param.clone(),
                    {"name": "before", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": i64::MAX}},
                    {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}},
                ],
                "responses": with_errors(json!({
                    "200": {"description": "One page.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NotificationPage"}}}},
                }), &[("404", "Unknown user.")]),
            }},
            "/api/v1/users/{user}/notifications/read": {"post": {
                "summary": "Mark notifications read",
                "parameters": [user_param.clone()],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": false,
                    "properties": {"ids": {
                        "type": ["array", "null"], "maxItems": MAX_MARK_READ,
                        "items": {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX},
                        "description": "All of the user's when absent or null.",
                    }},
                }}}},
                "responses": with_errors(json!({
                    "200": {"description": "How many changed.", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["marked"], "properties": {"marked": {"type": "integer"}},
                    }}}},
                }), &[("404", "Unknown user."), ("415", "The body is not JSON.")]),
            }},
            "/api/v1/users/{user}/history.csv": {"get": {
                "summary": "A trader's history as CSV, newest first",
                "description": "One record per command (and per trigger execution), after a header: `time,transaction_num,command,symbol,amount,outcome,shares,price,cash_after`. `time` is ISO 8601 in UTC with milliseconds; `command` is the command's name, or `BUY_TRIGGER_EXECUTED`, `SELL_TRIGGER_EXECUTED`, `BUY_TRIGGER_UNFILLED` for a trigger a new price fired (numbered by the command that armed it), `BUY_EXPIRED`, `SELL_EXPIRED` for an order the expiry task released (numbered by the command that placed it), or `REGISTER`; `amount` is normalised (`1000.00`) when it was an amount and as sent when not; `outcome` is `ok` or the refusal's code; `shares` and `price` are what a commit or trigger execution filled; `cash_after` is the cash after the step where the log knows it (empty for a trigger a new price fired). A cell starting with `=`, `+`, `-`, `@`, tab or carriage return is prefixed with `'`, so that a spreadsheet shows it rather than runs it. Streamed: memory does not grow with the history.",
                "parameters": [user_param.clone()],
                "responses": with_errors(json!({
                    "200": {"description": "The history, streamed.", "content": {"text/csv": {"schema": {"type": "string"}}}},
                }), &[("404", "Unknown user.")]),
            }},
            "/api/v1/quotes/{symbol}": {"get": {
                "summary": "The current price of a stock",
                "parameters": [{"name": "symbol", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z]{1,3}$"}}],
                "responses": with_errors(json!({
                    "200": {"description": "The price.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Quote"}}}},
                }), &[]),
            }},
            "/api/v1/quotes/{symbol}/history": {"get": {
                "summary": "The prices the system fetched for a stock, oldest first",
                "description": "Every price fetched from the quote service, with the time it was recorded; the newest 1,000 per symbol are kept. Costs no quote.",
                "parameters": [
                    {"name": "symbol", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z]{1,3}$"}},
                    {"name": "since", "in": "query", "required": false, "description": "Only points recorded after this time (Unix ms).", "schema": {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}},
                ],
                "responses": with_errors(json!({
                    "200": {"description": "The history.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PriceHistory"}}}},
                }), &[]),
            }},
            "/api/v1/log": {"get": {
                "summary": "DUMPLOG: the audit log as XML",
                "description": "Without `user`, the whole system's log (supervisor only). Recorded as a DUMPLOG command.",
                "parameters": [{"name": "user", "in": "query", "required": false, "schema": {"$ref": "#/components/schemas/UserId"}}],
                "responses": with_errors(json!({
                    "200": {"description": "The log, streamed.", "content": {"application/xml": {"schema": {"type": "string"}}}},
                }), &[("404", "Unknown user.")]),
            }},
            "/api/v1/openapi.json": {"get": {
                "summary": "This document", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}},
            }},
            "/healthz": {"get": {
                "summary": "Liveness", "security": [],
                "responses": {"200": {"description": "The process is up.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}},
            }},
            "/readyz": {"get": {
                "summary": "Readiness: the database answers and takes writes", "security": [],
                "responses": {
                    "200": {"description": "Ready.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}},
                    "503": {"description": "Not ready.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}},
                },
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics", "security": [],
                "responses": {"200": {"description": "Text exposition format.", "content": {"text/plain": {"schema": {"type": "string"}}}}},
            }},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Money": money,
                "Symbol": symbol,
                "UserId": {
                    "type": "string", "minLength": 1, "maxLength": UserId::MAX_LEN, "pattern": "^[A-Za-z0-9_.-]+$",
                    "description": "1 to 64 characters of letters, digits, '_', '.' and '-'.",
                    "examples": [EXAMPLE_USER],
                },
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                }}},
                "CommandRequest": command_request(),
                "CommandResponse": {
                    "type": "object", "required": ["transaction_num", "command", "result"],
                    "properties": {
                        "transaction_num": {"type": "integer"},
                        "command": {"type": "string"},
                        "user": {"type": "string"},
                        "result": {"type": "object", "description": "What the command did; its fields depend on the command."},
                        "cash": {"$ref": "#/components/schemas/Money"},
                        "reserved_cash": {"$ref": "#/components/schemas/Money"},
                    },
                },
                "Summary": {
                    "type": "object",
                    "required": ["user", "cash", "reserved_cash", "value", "realized_gain", "holdings", "pending_buys", "pending_sells", "buy_triggers", "sell_triggers", "history"],
                    "properties": {
                        "user": {"type": "string"},
                        "cash": {"$ref": "#/components/schemas/Money"},
                        "reserved_cash": {"$ref": "#/components/schemas/Money"},
                        "value": {"oneOf": [{"$ref": "#/components/schemas/Money"}, {"type": "null"}],
                            "description": "Cash + reserved cash + every holding (reserved shares included) at its price; null when a holding has no known price."},
                        "realized_gain": {"$ref": "#/components/schemas/Money"},
                        "holdings": {"type": "array", "items": {"$ref": "#/components/schemas/Holding"}},
                        "pending_buys": {"type": "array", "items": {"$ref": "#/components/schemas/PendingOrder"}},
                        "pending_sells": {"type": "array", "items": {"$ref": "#/components/schemas/PendingOrder"}},
                        "buy_triggers": {"type": "array", "items": {"$ref": "#/components/schemas/Trigger"}},
                        "sell_triggers": {"type": "array", "items": {"$ref": "#/components/schemas/Trigger"}},
                        "history": {"type": "array", "items": {"$ref": "#/components/schemas/HistoryItem"}},
                    },
                },
                "Holding": {
                    "type": "object",
                    "required": ["symbol", "shares", "reserved_shares", "average_price", "cost_basis", "price", "market_value", "unrealized_gain"],
                    "description": "Average cost: a sale of n of N shares removes n/N of the cost basis, rounded half up to the cent. price is the newest price the system fetched (null if none): then market_value and unrealized_gain are null too.",
                    "properties": {
                        "symbol": {"$ref": "#/components/schemas/Symbol"}, "shares": {"type": "integer"}, "reserved_shares": {"type": "integer"},
                        "average_price": {"oneOf": [{"$ref": "#/components/schemas/Money"}, {"type": "null"}]},
                        "cost_basis": {"$ref": "#/components/schemas/Money"},
                        "price": {"oneOf": [{"$ref": "#/components/schemas/Money"}, {"type": "null"}]},
                        "market_value": {"oneOf": [{"$ref": "#/components/schemas/Money"}, {"type": "null"}]},
                        "unrealized_gain": {"oneOf": [{"$ref": "#/components/schemas/Money"}, {"type": "null"}]},
                    },
                },
                "PriceHistory": {"type": "object", "required": ["symbol", "points"], "properties": {
                    "symbol": {"$ref": "#/components/schemas/Symbol"},
                    "points": {"type": "array", "items": {"type": "object", "required": ["at", "price"], "properties": {
                        "at": {"type": "integer", "description": "Unix ms."}, "price": {"$ref": "#/components/schemas/Money"},
                    }}},
                }},
                "PendingOrder": {"type": "object", "required": ["symbol", "shares", "price", "amount", "created_at_ms", "expires_at_ms"], "properties": {
                    "symbol": {"$ref": "#/components/schemas/Symbol"}, "shares": {"type": "integer"},
                    "price": {"$ref": "#/components/schemas/Money"}, "amount": {"$ref": "#/components/schemas/Money"},
                    "created_at_ms": {"type": "integer"}, "expires_at_ms": {"type": "integer"},
                }},
                "Trigger": {"type": "object", "required": ["symbol", "amount", "armed"], "properties": {
                    "symbol": {"$ref": "#/components/schemas/Symbol"}, "amount": {"$ref": "#/components/schemas/Money"},
                    "trigger_price": {"oneOf": [{"$ref": "#/components/schemas/Money"}, {"type": "null"}]},
                    "reserved_shares": {"type": "integer"}, "armed": {"type": "boolean"},
                }},
                "HistoryItem": {"type": "object", "required": ["transaction_num", "at_ms", "command", "outcome"], "properties": {
                    "transaction_num": {"type": "integer"}, "at_ms": {"type": "integer"},
                    "command": {"type": "string", "description": "The command; TRIGGER for triggers a new price fired, REGISTER for a registration on the pages, EXPIRY for pending orders that ran out with no command (stamped when they did)."},
                    "symbol": {"$ref": "#/components/schemas/Symbol"}, "amount": {"type": "string"},
                    "outcome": {"type": "string"}, "message": {"type": "string"},
                }},
                "Notification": {"type": "object", "required": ["id", "created_ms", "kind", "message", "txn", "read"], "properties": {
                    "id": {"type": "integer"}, "created_ms": {"type": "integer"},
                    "kind": {"type": "string", "enum": ["trigger_executed", "trigger_unfilled", "order_expired"]},
                    "message": {"type": "string"}, "txn": {"type": "integer"}, "read": {"type": "boolean"},
                }},
                "NotificationPage": {"type": "object", "required": ["notifications", "unread"], "properties": {
                    "notifications": {"type": "array", "items": {"$ref": "#/components/schemas/Notification"}},
                    "unread": {"type": "integer"},
                    "next_before": {"type": "integer"},
                }},
                "LiveEvent": {"description": "The `data:` of one event of `/api/v1/users/{user}/events`.", "oneOf": [
                    {"type": "object", "required": ["type", "transaction_num", "command", "outcome", "cash", "reserved_cash"], "properties": {
                        "type": {"const": "account"}, "transaction_num": {"type": "integer"}, "command": {"type": "string"},
                        "outcome": {"type": "string", "description": "`ok`, or the error code of the refusal."},
                        "cash": {"$ref": "#/components/schemas/Money"}, "reserved_cash": {"$ref": "#/components/schemas/Money"},
                    }},
                    {"allOf": [
                        {"type": "object", "required": ["type"], "properties": {"type": {"const": "notification"}}},
                        {"$ref": "#/components/schemas/Notification"},
                    ]},
                    {"type": "object", "required": ["type", "symbol", "price", "at"], "properties": {
                        "type": {"const": "quote"}, "symbol": {"$ref": "#/components/schemas/Symbol"},
                        "price": {"$ref": "#/components/schemas/Money"}, "at": {"type": "integer", "description": "When fetched, Unix ms."},
                    }},
                ]},
                "Quote": {"type": "object", "required": ["symbol", "price", "fetched_at_ms", "cached"], "properties": {
                    "symbol": {"$ref": "#/components/schemas/Symbol"}, "price": {"$ref": "#/components/schemas/Money"},
                    "fetched_at_ms": {"type": "integer"}, "cached": {"type": "boolean"},
                }},
                "Health": {"type": "object", "required": ["status", "instance"], "properties": {
                    "status": {"type": "string"}, "instance": {"type": "string"}, "checks": {"type": "object"},
                }},
            },
        },
    })
}
