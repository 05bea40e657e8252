//! Quote lookup. The card with a symbol's price is the same for every
//! trader, so it is cached by time (shared, for a few seconds) rather than
//! by anyone's account version.

use std::time::Duration;

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use engine::Symbol;
use serde::Deserialize;
use store::Reads;

use crate::error::ApiError;
use crate::state::AppState;
use crate::web::charts::{line_chart, price_series};
use crate::web::chrome::Chrome;
use crate::web::error::PageError;
use crate::web::format::{dollars, utc};
use crate::web::forms::{Field, FormState};
use crate::web::page_cache;
use crate::web::session::Trader;
use crate::web::templates::{Fragment, html};

/// How long a quote card is shared: short against the quote's own 60 s,
/// so that a new price shows soon after the quote cache has one.
const CARD_TTL: Duration = Duration::from_secs(10);

#[derive(Template)]
#[template(path = "quote.html")]
struct QuotePage {
    chrome: Chrome,
    form: FormState,
    card: Option<Fragment>,
}

#[derive(Template)]
#[template(path = "fragments/quote.html")]
struct QuoteCard {
    symbol: String,
    price: String,
    as_of: String,
    /// The symbol's price history, when it has two points or more.
    chart: Option<Fragment>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteQuery {
    symbol: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    trader: Trader,
    query: Result<Query<QuoteQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    let chrome = Chrome::trader(&state, &trader, "quote").await?;
    let typed = query.symbol.unwrap_or_default().trim().to_owned();
    let mut page = QuotePage {
        chrome,
        form: FormState::with_symbol(typed.clone()),
        card: None,
    };
    if typed.is_empty() {
        return html(StatusCode::OK, &page);
    }
    let symbol = match Symbol::parse(&typed) {
        Ok(symbol) => symbol,
        Err(error) => {
            page.form = FormState::invalid(&typed, "", Field::Symbol, &error.to_string());
            return html(StatusCode::BAD_REQUEST, &page);
        }
    };
    let key = format!("page:quote:{symbol}");
    let card = page_cache::fragment(
        &state.cache,
        "quote",
        &key,
        CARD_TTL,
        trader.live_refresh,
        || async {
            let quote = state
                .trading
                .quote(symbol, &trader.user, Some(trader.user.clone()))
                .await
                .map_err(ApiError::from)?;
            // Read after the quote, whose fetch (if it made one) is in it.
            let history = state.trading.reader().price_history(symbol, None).await?;
            let title = format!("Price of {symbol}");
            Fragment::render(&QuoteCard {
                symbol: symbol.to_string(),
                price: dollars(quote.price),
                as_of: utc(quote.fetched_at_ms),
                chart: line_chart(
                    "price-chart",
                    &title,
                    &price_series(&history, (state.clock)()),
                )?,
            })
        },
    )
    .await;
    match card {
        Ok(card) => {
            page.form.symbol = symbol.to_string();
            page.card = Some(card);
            html(StatusCode::OK, &page)
        }
        // The quote service is down: said next to the symbol asked for.
        Err(PageError::Page {
            status, message, ..
        }) => {
            page.form = FormState::invalid(&typed, "", Field::Form, &message);
            html(status, &page)
        }
        Err(other) => Err(other),
    }
}
