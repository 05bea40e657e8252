//! A trader's command from a form: the same trading service as the JSON
//! API (so it is recorded in the audit log and idempotent by its
//! transaction number), the same error mapping, the same metrics.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use engine::{CommandName, CommandRequest, Reply, UserId};

use crate::error::ApiError;
use crate::service::{CommandOutcome, ServiceError};
use crate::state::AppState;
use crate::web::error::PageError;
use crate::web::format::dollars;
use crate::web::forms::FormState;
use crate::web::refused::refuse_form;
use crate::web::session::{Flash, Trader};

/// Runs `name` for `user` under the form's transaction number: the reply
/// and whether it is the first outcome of an earlier submission. A refusal
/// comes back as the API's error: its status, code and sentence.
async fn run(state: &AppState, user: &UserId, sent: &Sent<'_>) -> Result<(Reply, bool), ApiError> {
    let request = CommandRequest::new(
        sent.name,
        Some(user.as_str()),
        sent.symbol,
        sent.amount,
        None,
    )?;
    match state.trading.execute(request, Some(sent.txn)).await {
        Ok(CommandOutcome { result, replay, .. }) => match result {
            Ok(reply) => Ok((reply, replay)),
            Err(rejection) => Err(ApiError::from(rejection)),
        },
        // Only a transaction number reused across kinds of step gets here.
        Err(ServiceError::NumberReused(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "form_reused",
            "This form was already used for something else. Reload the page and try again.",
        )),
        Err(error) => Err(error.into()),
    }
}

/// A command as a form sent it.
pub struct Sent<'a> {
    pub name: CommandName,
    pub symbol: Option<&'a str>,
    pub amount: Option<&'a str>,
    /// The form's transaction number.
    pub txn: i64,
}

/// Runs a form's command and answers as every form does, with a redirect
/// to the form's page `then` (so that reloading it sends nothing again):
/// accepted, with what happened as a message there; refused, with the form
/// (called `form` on its page) kept to be shown again, the refusal next to
/// what caused it.
pub async fn act(
    state: &AppState,
    trader: &Trader,
    sent: Sent<'_>,
    then: &'static str,
    form: &str,
) -> Result<Response, PageError> {
    match run(state, &trader.user, &sent).await {
        Ok((reply, replay)) => {
            let said = describe(sent.name, &reply, replay);
            trader.session.flash(state, Flash::success(said)).await;
            Ok(Redirect::to(then).into_response())
        }
        Err(error) => {
            let symbol = sent.symbol.unwrap_or_default();
            let amount = sent.amount.unwrap_or_default();
            let refused = FormState::refused(symbol, amount, &error);
            refuse_form(state, &trader.session, then, form, error.status, &refused).await
        }
    }
}

/// What an accepted command did, in a sentence for the next page.
fn describe(name: CommandName, reply: &Reply, replay: bool) -> String {
    let said = match reply {
        Reply::Added(added) => format!("Added {} to your cash.", dollars(added.added)),
        Reply::Pending(order) => {
            let side = if name == CommandName::Buy {
                "buy"
            } else {
                "sell"
            };
            format!(
                "Your {side} of {} {} at {} ({}) is waiting: commit or cancel it within 60 seconds.",
                order.shares,
                order.symbol,
                dollars(order.price),
                dollars(order.amount)
            )
        }
        Reply::Settled(order) => {
            let what = match name {
                CommandName::CommitBuy => "Bought",
                CommandName::CommitSell => "Sold",
                CommandName::CancelBuy => "Cancelled the buy of",
                _ => "Cancelled the sell of",
            };
            format!(
                "{what} {} {} at {} ({}).",
                order.shares,
                order.symbol,
                dollars(order.price),
                dollars(order.amount)
            )
        }
        Reply::TriggerAmount(set) if name == CommandName::SetBuyAmount => format!(
            "{} is set aside to buy {}. Now choose the price to buy at.",
            dollars(set.amount),
            set.symbol
        ),
        Reply::TriggerAmount(set) => format!(
            "{} worth of {} will be sold. Now choose the price to sell at.",
            dollars(set.amount),
            set.symbol
        ),
        Reply::TriggerArmed(armed) => match &armed.executed {
            Some(run) => format!(
                "The {} trigger on {} fired at once: {} shares at {} ({}).",
                side_of(name),
                armed.symbol,
                run.shares,
                dollars(run.price),
                dollars(run.amount)
            ),
            None => format!(
                "The {} trigger on {} is armed at {} (the price is {} now).",
                side_of(name),
                armed.symbol,
                dollars(armed.trigger_price),
                dollars(armed.current_price)
            ),
        },
        Reply::TriggerCancelled(cancelled) if name == CommandName::CancelSetBuy => format!(
            "The buy trigger on {} is cancelled; {} is back in your cash.",
            cancelled.symbol,
            dollars(cancelled.released_cash)
        ),
        Reply::TriggerCancelled(cancelled) => format!(
            "The sell trigger on {} is cancelled; {} shares are back in your holdings.",
            cancelled.symbol, cancelled.released_shares
        ),
        Reply::Quote(_) | Reply::Summary(_) | Reply::DumpLog(_) => format!("{name} done."),
    };
    if replay {
        format!("{said} (This form had already been sent; it ran once.)")
    } else {
        said
    }
}

fn side_of(name: CommandName) -> &'static str {
    match name {
        CommandName::SetBuyTrigger => "buy",
        _ => "sell",
    }
}
