// DayTrader's only script: live countdowns of pending orders. The pages
// work without it (they show the seconds left when rendered); with it the
// seconds tick, on the server's clock, and a Commit button is disabled
// once its order has run out.
(function () {
  "use strict";
  var serverNow = Number(document.body.getAttribute("data-server-now"));
  // How far the browser's clock is from the server's.
  var skew = isFinite(serverNow) && serverNow > 0 ? serverNow - Date.now() : 0;

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

  tick();
  if (document.querySelector("[data-expires-at]")) {
    window.setInterval(tick, 1000);
  }
})();
