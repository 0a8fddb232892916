// cashdesk cashier page: countdown, payment status polling, WeChat JSAPI.
// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  var pad = function (n) { return (n < 10 ? "0" : "") + n; };
  var cd = document.getElementById("countdown");
  if (cd) {
    var end = Number(cd.getAttribute("data-expire-ms"));
    var gone = cd.getAttribute("data-expired-url");
    var timer = null;
    var tick = function () {
      var s = Math.max(0, Math.floor((end - Date.now()) / 1000));
      var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
      cd.textContent = (h ? h + ":" + pad(m) : String(m)) + ":" + pad(s % 60);
      if (s <= 0) {
        if (timer) { clearInterval(timer); }
        if (gone) { location.href = gone; }
      }
    };
    tick();
    timer = setInterval(tick, 1000);
  }
  var poll = document.querySelector("[data-status-url]");
  if (poll) {
    var url = poll.getAttribute("data-status-url");
    var check = function () {
      fetch(url, { cache: "no-store", credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (j) {
          if (j && j.final && j.resultUrl) { location.href = j.resultUrl; }
          else { setTimeout(check, 2000); }
        })
        .catch(function () { setTimeout(check, 4000); });
    };
    setTimeout(check, 1500);
  }
  var js = document.getElementById("jsapi");
  if (js) {
    var data = JSON.parse(js.getAttribute("data-pay"));
    var msg = document.getElementById("jsapi-msg");
    var invoke = function () {
      window.WeixinJSBridge.invoke("getBrandWCPayRequest", data, function (r) {
        var e = r && r.err_msg;
        if (e === "get_brand_wcpay_request:ok") {
          location.href = js.getAttribute("data-result-url");
        } else if (msg) {
          msg.textContent = js.getAttribute(e === "get_brand_wcpay_request:cancel" ? "data-cancel" : "data-fail");
        }
      });
    };
    if (window.WeixinJSBridge) { invoke(); }
    else { document.addEventListener("WeixinJSBridgeReady", invoke, false); }
  }
})();
