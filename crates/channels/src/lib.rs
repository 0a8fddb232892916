//! Payment channel adapters: the `Channel` trait and one module per channel
//! (WeChat Pay v2/v3, Alipay, Lakala), each with its wire types. Adapters
//! never touch the database. Filled in by the channel issues.
