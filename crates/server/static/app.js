// DayTrader's only script. The pages work without it: they show the
// seconds an order has left when rendered, and what changed since when
// reloaded. With it:
// - the countdowns of pending orders tick, on the server's clock, and a
//   Commit button is disabled once its order has run out;
// - a signed-in trader's page keeps itself up to date: it holds the
//   trader's event stream (GET /api/v1/users/{user}/events) and, on each
//   event, fetches itself again and puts in place the parts marked
//   `data-live` (balances, pending orders, holdings, the unread badge...).
//   The server renders them, so this script knows nothing of money or of
//   how a card looks. The fetch carries the X-DayTrader-Live header, so
//   that the server neither uses up a one-time message nor answers with a
//   cached price (see crates/server/src/web/live.rs).
(function () {
  "use strict";

  // ---- Countdowns ----

  // How far the browser's clock is from the server's.
  var skew = 0;

  function setServerNow(doc) {
    var serverNow = Number(doc.body.getAttribute("data-server-now"));
    skew = isFinite(serverNow) && serverNow > 0 ? serverNow - Date.now() : 0;
  }

  function tick() {
    var now = Date.now() + skew;
    var clocks = document.querySelectorAll(".countdown[data-expires-at]");
    for (var i = 0; i < clocks.length; i++) {
      var left = Math.ceil((Number(clocks[i].getAttribute("data-expires-at")) - now) / 1000);
      if (left > 0) {
        clocks[i].textContent = left + " s left";
      } else {
        clocks[i].textContent = "expired";
        clocks[i].classList.add("expired");
      }
    }
    var buttons = document.querySelectorAll("button[data-expires-at]");
    for (var j = 0; j < buttons.length; j++) {
      if (Number(buttons[j].getAttribute("data-expires-at")) <= now) {
        buttons[j].disabled = true;
        buttons[j].title = "This order has expired";
      }
    }
  }

  setServerNow(document);
  tick();
  // Always: a pending order may appear on the page without a reload.
  window.setInterval(tick, 1000);

  // ---- Live updates ----

  var user = document.body.getAttribute("data-live-user");
  if (!user || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var streamUrl = "/api/v1/users/" + encodeURIComponent(user) + "/events";
  // Events come in bursts (a command's account event, then the
  // notification it caused): one fetch answers them all.
  var GATHER_MS = 150;
  // After the browser gives up on the stream (an HTTP error rather than a
  // dropped connection, which EventSource retries by itself).
  var RETRY_FIRST_MS = 1000;
  var RETRY_LAST_MS = 60000;

  var source = null;
  var retryMs = RETRY_FIRST_MS;
  var stopped = false;
  var timer = null;
  var fetching = false;
  var fetchAgain = false;
  // A part was left alone because the trader was at it: bring it up to
  // date once they leave it.
  var leftBehind = false;

  // A part is not replaced under the trader's hands: while it holds the
  // focus, a field they changed, or a refusal they may not have read yet.
  function busy(part) {
    var active = document.activeElement;
    if (active && active !== document.body && part.contains(active)) {
      leftBehind = true;
      return true;
    }
    var fields = part.querySelectorAll("input, textarea");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].type !== "hidden" && fields[i].value !== fields[i].defaultValue) {
        leftBehind = true;
        return true;
      }
    }
    return part.querySelector("[role=alert], .field-error") !== null;
  }

  function stop() {
    stopped = true;
    if (source) {
      source.close();
    }
  }

  // What a part shows, less what differs on every render or every second
  // (a form's fresh transaction number, a countdown's text): a part whose
  // content did not change is left as it is, under the trader's pointer.
  function shown(part) {
    var copy = part.cloneNode(true);
    var i;
    var hidden = copy.querySelectorAll("input[type=hidden]");
    for (i = 0; i < hidden.length; i++) {
      hidden[i].removeAttribute("value");
    }
    var clocks = copy.querySelectorAll(".countdown");
    for (i = 0; i < clocks.length; i++) {
      clocks[i].textContent = "";
      clocks[i].classList.remove("expired");
    }
    var buttons = copy.querySelectorAll("button[data-expires-at]");
    for (i = 0; i < buttons.length; i++) {
      buttons[i].removeAttribute("disabled");
      buttons[i].removeAttribute("title");
    }
    return copy.outerHTML;
  }

  function swap(doc) {
    if (!doc.body || doc.body.getAttribute("data-live-user") !== user) {
      // Signed out, or in as someone else, in another tab: this page is no
      // longer theirs to update.
      stop();
      return;
    }
    leftBehind = false;
    var parts = document.querySelectorAll("[data-live]");
    for (var i = 0; i < parts.length; i++) {
      var name = parts[i].getAttribute("data-live");
      var fresh = doc.querySelector('[data-live="' + name + '"]');
      if (fresh && shown(fresh) !== shown(parts[i]) && !busy(parts[i])) {
        parts[i].parentNode.replaceChild(document.importNode(fresh, true), parts[i]);
      }
    }
    setServerNow(doc);
    tick();
  }

  function load() {
    timer = null;
    if (fetching) {
      fetchAgain = true;
      return;
    }
    fetching = true;
    window
      .fetch(window.location.href, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { "X-DayTrader-Live": "1" },
      })
      .then(function (response) {
        // A redirect is to the sign-in page; an error page has no parts.
        if (response.redirected || !response.ok) {
          if (response.redirected) {
            stop();
          }
          return null;
        }
        return response.text();
      })
      .then(function (html) {
        if (html !== null) {
          swap(new window.DOMParser().parseFromString(html, "text/html"));
        }
      })
      .catch(function () {
        // The network failed: the next event, or the stream's reconnection,
        // tries again.
      })
      .then(function () {
        fetching = false;
        if (fetchAgain) {
          fetchAgain = false;
          refresh();
        }
      });
  }

  function refresh() {
    if (!stopped && timer === null) {
      timer = window.setTimeout(load, GATHER_MS);
    }
  }

  // Whether the page shows the price of `symbol` in a part that updates.
  function showsPrice(symbol) {
    var priced = document.querySelectorAll("[data-live] [data-price-of]");
    for (var i = 0; i < priced.length; i++) {
      if (priced[i].getAttribute("data-price-of") === symbol) {
        return true;
      }
    }
    return false;
  }

  function onEvent(message) {
    var event;
    try {
      event = JSON.parse(message.data);
    } catch (error) {
      return;
    }
    // A price matters only where it is shown; anything else (a command's
    // outcome, a notification) may change any part.
    if (event && event.type === "quote" && !showsPrice(event.symbol)) {
      return;
    }
    refresh();
  }

  function connect() {
    if (stopped) {
      return;
    }
    source = new window.EventSource(streamUrl);
    // On every (re)connection: events may have been missed meanwhile.
    source.onopen = function () {
      retryMs = RETRY_FIRST_MS;
      refresh();
    };
    source.onmessage = onEvent;
    ["account", "notification", "quote"].forEach(function (type) {
      source.addEventListener(type, onEvent);
    });
    source.onerror = function () {
      if (source.readyState === window.EventSource.CLOSED) {
        window.setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, RETRY_LAST_MS);
      }
    };
  }

  document.addEventListener("focusout", function () {
    if (leftBehind) {
      refresh();
    }
  });
  connect();
})();
