/**
 * cashdesk-pay.js: buy-now and pay from a WeChat mini-program, against a
 * shop backend like examples/shop and a cashdesk gateway behind it.
 *
 *   const { createPayer } = require('./cashdesk-pay.js');
 *   const payer = createPayer({ wx, shopUrl: 'https://shop.example.com',
 *     templateIds: ['<PAY_SUCCESS template id>'] });
 *   // in a tap handler (WeChat allows requestSubscribeMessage only there):
 *   const result = await payer.buyNow({ userId, goodsId: 'coffee', qty: 1 });
 *
 * buyNow does, in this order:
 *  1. wx.requestSubscribeMessage for the configured template ids, first
 *     because WeChat wants it straight from the user's tap; a refusal or a
 *     failure is recorded in `result.subscribe` and payment goes on;
 *  2. POST <shopUrl>/buy-now {userId, goodsId, qty} with wx.request; the
 *     shop answers its order and cashdesk's `payData` for the mini-program
 *     (timeStamp, nonceStr, package "prepay_id=…", signType, paySign);
 *  3. wx.requestPayment with those five fields;
 *  4. GET <shopUrl>/orders/<orderId> every `pollIntervalMs` until the shop
 *     has settled the order from cashdesk's signed notification, for at
 *     most `pollTimeoutMs`.
 *
 * It resolves (never rejects) with `{outcome, orderId, order, errMsg,
 * subscribe}`, `outcome` one of:
 *  - 'paid'      the shop's order is PAID;
 *  - 'cancelled' the buyer closed the payment sheet (`requestPayment:fail cancel`);
 *  - 'failed'    buy-now or requestPayment failed (`errMsg` says why), or
 *                the order was closed;
 *  - 'timeout'   WeChat said paid but the shop had not seen the payment
 *                within `pollTimeoutMs`: show "payment pending" and let the
 *                order page check again later; do not ask the buyer to pay
 *                again.
 *
 * `wx`, `setTimeout` and `now` are injectable for tests (test/).
 */
'use strict';

const CANCEL = 'requestPayment:fail cancel';

/** Calls a wx.* API that takes success/fail callbacks, as a promise. */
function call(wxApi, options) {
  return new Promise((resolve, reject) => {
    try {
      wxApi(Object.assign({}, options, { success: resolve, fail: reject }));
    } catch (e) {
      reject(e);
    }
  });
}

function errMsgOf(e) {
  if (e && typeof e.errMsg === 'string') return e.errMsg;
  if (e && typeof e.message === 'string') return e.message;
  return String(e);
}

function createPayer(options) {
  const o = options || {};
  const wx = o.wx;
  if (!wx) throw new Error('createPayer: wx is required');
  if (!o.shopUrl) throw new Error('createPayer: shopUrl is required');
  const shopUrl = String(o.shopUrl).replace(/\/+$/, '');
  const templateIds = Array.isArray(o.templateIds) ? o.templateIds.filter(Boolean) : [];
  const pollIntervalMs = o.pollIntervalMs > 0 ? o.pollIntervalMs : 1500;
  const pollTimeoutMs = o.pollTimeoutMs > 0 ? o.pollTimeoutMs : 30000;
  const setTimer = o.setTimeout || setTimeout;
  const now = o.now || (() => Date.now());
  const header = Object.assign({ 'content-type': 'application/json' }, o.header || {});

  const sleep = (ms) => new Promise((resolve) => setTimer(resolve, ms));

  /** Step 1. Never fails: `{requested, accepted, rejected, errMsg?}`. */
  async function subscribe() {
    const result = { requested: templateIds.slice(), accepted: [], rejected: [] };
    if (templateIds.length === 0 || typeof wx.requestSubscribeMessage !== 'function') {
      return result;
    }
    try {
      const res = await call(wx.requestSubscribeMessage, { tmplIds: templateIds });
      for (const id of templateIds) {
        (res && res[id] === 'accept' ? result.accepted : result.rejected).push(id);
      }
    } catch (e) {
      result.rejected = templateIds.slice();
      result.errMsg = errMsgOf(e);
    }
    return result;
  }

  /** A JSON request to the shop: `{statusCode, data}`. */
  function request(method, path, data) {
    return call(wx.request, { url: shopUrl + path, method, data, header, dataType: 'json' });
  }

  /** Step 4: the order, once PAID or CLOSED, else after the timeout. */
  async function poll(orderId) {
    const deadline = now() + pollTimeoutMs;
    let last = null;
    for (;;) {
      try {
        const res = await request('GET', '/orders/' + encodeURIComponent(orderId));
        if (res.statusCode === 200 && res.data) {
          last = res.data;
          if (last.state === 'PAID' || last.state === 'CLOSED') return last;
        }
      } catch (e) {
        // A network hiccup: keep polling until the deadline.
      }
      if (now() + pollIntervalMs > deadline) return last;
      await sleep(pollIntervalMs);
    }
  }

  async function buyNow(item) {
    const subscribeResult = await subscribe();
    const done = (outcome, extra) =>
      Object.assign({ outcome, orderId: null, order: null, errMsg: null, subscribe: subscribeResult }, extra);

    let bought;
    try {
      const res = await request('POST', '/buy-now', {
        userId: item.userId,
        goodsId: item.goodsId,
        qty: item.qty,
      });
      if (res.statusCode !== 200 || !res.data) {
        const d = res.data || {};
        return done('failed', {
          orderId: d.orderId || null,
          errMsg: 'buy-now: HTTP ' + res.statusCode + (d.code ? ' ' + d.code : '') + (d.message ? ': ' + d.message : ''),
        });
      }
      bought = res.data;
    } catch (e) {
      return done('failed', { errMsg: 'buy-now: ' + errMsgOf(e) });
    }
    const orderId = bought.orderId;
    const p = bought.payData;
    if (!p || !p.package || !p.paySign) {
      return done('failed', { orderId, order: bought, errMsg: 'buy-now: no mini-program payData' });
    }

    try {
      await call(wx.requestPayment, {
        timeStamp: String(p.timeStamp),
        nonceStr: p.nonceStr,
        package: p.package,
        signType: p.signType,
        paySign: p.paySign,
      });
    } catch (e) {
      const errMsg = errMsgOf(e);
      return done(errMsg === CANCEL ? 'cancelled' : 'failed', { orderId, order: bought, errMsg });
    }

    const order = await poll(orderId);
    if (order && order.state === 'PAID') return done('paid', { orderId, order });
    if (order && order.state === 'CLOSED') {
      return done('failed', { orderId, order, errMsg: 'the order was closed' });
    }
    return done('timeout', {
      orderId,
      order: order || bought,
      errMsg: 'payment pending: the shop has not confirmed it yet',
    });
  }

  return { buyNow, subscribe, poll };
}

module.exports = { createPayer, CANCEL };
