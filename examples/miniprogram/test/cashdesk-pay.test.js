'use strict';
// node --test (Node 20, no dependencies): cashdesk-pay.js against a fake
// `wx` that records every call, and a fake clock.

const test = require('node:test');
const assert = require('node:assert/strict');
const { createPayer, CANCEL } = require('../cashdesk-pay.js');

const PAY_DATA = {
  appId: 'wxd678efh567hg6787',
  timeStamp: '1700000000',
  nonceStr: 'n0nce',
  package: 'prepay_id=wx201410272009395522657a690389285100',
  signType: 'HMAC-SHA256',
  paySign: 'A1B2C3',
};

/**
 * A fake wx: `subscribe` is 'accept' | 'reject' | 'fail'; `buy` the
 * {statusCode, data} of POST /buy-now; `payment` null (success) or the
 * fail object; `states` the order states GET /orders/:id answers in turn
 * (the last one repeats).
 */
function fakeWx({ subscribe = 'accept', buy, payment = null, states = ['PAID'] }) {
  const calls = [];
  let poll = 0;
  const wx = {
    requestSubscribeMessage(o) {
      calls.push(['subscribe', o.tmplIds]);
      if (subscribe === 'fail') return o.fail({ errMsg: 'requestSubscribeMessage:fail can only be invoked by user TAP gesture.' });
      const res = { errMsg: 'requestSubscribeMessage:ok' };
      for (const id of o.tmplIds) res[id] = subscribe === 'accept' ? 'accept' : 'reject';
      return o.success(res);
    },
    request(o) {
      calls.push(['request', o.method, o.url, o.data]);
      if (o.method === 'POST' && o.url.endsWith('/buy-now')) {
        return setImmediate(() => o.success(buy));
      }
      const m = /\/orders\/([^/]+)$/.exec(o.url);
      if (o.method === 'GET' && m) {
        const state = states[Math.min(poll, states.length - 1)];
        poll += 1;
        if (state === 'NETWORK') return setImmediate(() => o.fail({ errMsg: 'request:fail timeout' }));
        return setImmediate(() => o.success({ statusCode: 200, data: { orderId: decodeURIComponent(m[1]), state } }));
      }
      return o.fail({ errMsg: 'request:fail unexpected ' + o.url });
    },
    requestPayment(o) {
      const args = Object.assign({}, o);
      delete args.success;
      delete args.fail;
      calls.push(['requestPayment', args]);
      setImmediate(() => (payment ? o.fail(payment) : o.success({ errMsg: 'requestPayment:ok' })));
    },
  };
  return { wx, calls, polls: () => poll };
}

/** A clock that advances by each timer's delay at once. */
function fakeClock() {
  const clock = { t: 0, timers: [] };
  clock.setTimeout = (fn, ms) => {
    clock.timers.push(ms);
    clock.t += ms;
    setImmediate(fn);
  };
  clock.now = () => clock.t;
  return clock;
}

const bought = { statusCode: 200, data: { orderId: 'S01', state: 'PENDING', reused: false, payData: PAY_DATA } };

function payer(fake, clock, extra) {
  return createPayer(Object.assign({
    wx: fake.wx,
    shopUrl: 'https://shop.example.com/',
    templateIds: ['TPL_PAID', 'TPL_REFUND'],
    pollIntervalMs: 1000,
    pollTimeoutMs: 5000,
    setTimeout: clock.setTimeout,
    now: clock.now,
  }, extra));
}

const item = { userId: 'u1', goodsId: 'coffee', qty: 2 };

test('paid: subscribe first, buy, pay with the five fields, poll until PAID', async () => {
  const fake = fakeWx({ buy: bought, states: ['PENDING', 'NETWORK', 'PAID'] });
  const clock = fakeClock();
  const r = await payer(fake, clock).buyNow(item);
  assert.equal(r.outcome, 'paid');
  assert.equal(r.orderId, 'S01');
  assert.equal(r.order.state, 'PAID');
  assert.deepEqual(r.subscribe.accepted, ['TPL_PAID', 'TPL_REFUND']);
  assert.deepEqual(fake.calls[0], ['subscribe', ['TPL_PAID', 'TPL_REFUND']]);
  assert.deepEqual(fake.calls[1], ['request', 'POST', 'https://shop.example.com/buy-now', item]);
  const { appId, ...fields } = PAY_DATA;
  assert.ok(appId);
  assert.deepEqual(fake.calls[2], ['requestPayment', fields]);
  assert.equal(fake.polls(), 3);
  assert.deepEqual(fake.calls[3], ['request', 'GET', 'https://shop.example.com/orders/S01', undefined]);
  assert.deepEqual(clock.timers, [1000, 1000]);
});

test('cancelled: the buyer closes the payment sheet; no polling', async () => {
  const fake = fakeWx({ buy: bought, payment: { errMsg: CANCEL } });
  const r = await payer(fake, fakeClock()).buyNow(item);
  assert.equal(r.outcome, 'cancelled');
  assert.equal(r.errMsg, 'requestPayment:fail cancel');
  assert.equal(r.orderId, 'S01');
  assert.equal(fake.polls(), 0);
});

test('failed: requestPayment fails with another errMsg', async () => {
  const fake = fakeWx({ buy: bought, payment: { errMsg: 'requestPayment:fail 支付签名错误' } });
  const r = await payer(fake, fakeClock()).buyNow(item);
  assert.equal(r.outcome, 'failed');
  assert.equal(r.errMsg, 'requestPayment:fail 支付签名错误');
  assert.equal(fake.polls(), 0);
});

test('failed: the shop refuses buy-now; nothing is paid', async () => {
  const refused = { statusCode: 409, data: { code: 'PENDING_ORDER', message: 'order S00 waits', orderId: 'S00' } };
  const fake = fakeWx({ buy: refused });
  const r = await payer(fake, fakeClock()).buyNow(item);
  assert.equal(r.outcome, 'failed');
  assert.equal(r.orderId, 'S00');
  assert.match(r.errMsg, /HTTP 409 PENDING_ORDER: order S00 waits/);
  assert.ok(!fake.calls.some((c) => c[0] === 'requestPayment'));
});

test('failed: an answer without payData is not paid', async () => {
  const fake = fakeWx({ buy: { statusCode: 200, data: { orderId: 'S02', payData: null } } });
  const r = await payer(fake, fakeClock()).buyNow(item);
  assert.equal(r.outcome, 'failed');
  assert.match(r.errMsg, /no mini-program payData/);
  assert.ok(!fake.calls.some((c) => c[0] === 'requestPayment'));
});

test('failed: the order was closed while the buyer paid', async () => {
  const fake = fakeWx({ buy: bought, states: ['PENDING', 'CLOSED'] });
  const r = await payer(fake, fakeClock()).buyNow(item);
  assert.equal(r.outcome, 'failed');
  assert.equal(r.order.state, 'CLOSED');
});

test('timeout: paid in WeChat, not confirmed by the shop in time → pending', async () => {
  const fake = fakeWx({ buy: bought, states: ['PENDING'] });
  const clock = fakeClock();
  const r = await payer(fake, clock).buyNow(item);
  assert.equal(r.outcome, 'timeout');
  assert.match(r.errMsg, /pending/);
  assert.equal(r.orderId, 'S01');
  assert.equal(r.order.state, 'PENDING');
  // Bounded: every 1 s for 5 s.
  assert.equal(fake.polls(), 6);
  assert.ok(clock.t <= 5000, `waited ${clock.t} ms`);
});

test('subscribe refused or failing does not stop the payment', async () => {
  for (const subscribe of ['reject', 'fail']) {
    const fake = fakeWx({ subscribe, buy: bought });
    const r = await payer(fake, fakeClock()).buyNow(item);
    assert.equal(r.outcome, 'paid', subscribe);
    assert.deepEqual(r.subscribe.accepted, []);
    assert.deepEqual(r.subscribe.rejected, ['TPL_PAID', 'TPL_REFUND']);
    assert.equal(r.subscribe.errMsg === undefined, subscribe === 'reject');
  }
});

test('no template ids: no subscribe call', async () => {
  const fake = fakeWx({ buy: bought });
  const r = await payer(fake, fakeClock(), { templateIds: [] }).buyNow(item);
  assert.equal(r.outcome, 'paid');
  assert.ok(!fake.calls.some((c) => c[0] === 'subscribe'));
});
