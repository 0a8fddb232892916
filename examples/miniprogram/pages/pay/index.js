// One button: buy the goods now and pay in WeChat (cashdesk-pay.js does
// the subscribe request, the shop call, wx.requestPayment and the polling).
const { createPayer } = require('../../cashdesk-pay.js');

const MESSAGES = {
  paid: 'Paid, thank you',
  cancelled: 'Payment cancelled; the order waits for you',
  failed: 'Payment failed',
  timeout: 'Payment pending: we will confirm it shortly',
};

Page({
  data: { goodsId: 'coffee', goodsName: 'Coffee', qty: 1, busy: false, message: '', orderId: '' },

  onLoad(query) {
    if (query.goodsId) this.setData({ goodsId: query.goodsId, goodsName: query.goodsId });
    const app = getApp();
    this.payer = createPayer({
      wx,
      shopUrl: app.globalData.shopUrl,
      templateIds: app.globalData.templateIds,
    });
  },

  // Must stay a direct tap handler: WeChat only shows the subscribe
  // dialog from a user's tap, and buyNow asks for it first.
  async onBuy() {
    if (this.data.busy) return;
    this.setData({ busy: true, message: '' });
    const r = await this.payer.buyNow({
      userId: getApp().globalData.userId,
      goodsId: this.data.goodsId,
      qty: this.data.qty,
    });
    const detail = r.outcome === 'failed' && r.errMsg ? ': ' + r.errMsg : '';
    this.setData({ busy: false, orderId: r.orderId || '', message: MESSAGES[r.outcome] + detail });
  },
});
