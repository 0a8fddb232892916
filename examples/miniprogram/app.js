// The shop backend (examples/shop) and the subscribe-message templates the
// buyer is asked for before paying (configured in the mini-program's
// console and in cashdesk, issue 17 §1). `userId` is the shop's user: a
// real app sets it after wx.login → its backend's code2Session.
App({
  globalData: {
    shopUrl: 'https://shop.example.com',
    templateIds: [],
    userId: 'demo-user',
  },
});
