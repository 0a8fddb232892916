//! The window's local entries, kept compact. A busy config has a million
//! paid orders a day and the matching holds three days of them, so what
//! one entry costs decides the reconciliation's memory. As a
//! `HashMap<String, ReconOrder>` (a `ReconOrder` is 120 bytes and four
//! heap strings, and the map doubles when it is 7/8 full) plus a set of
//! the ids seen, a million orders took about 600 MB (docs/benchmarks.md,
//! "Reconciliation"). Here an entry is a fixed-size slot in one `Vec`, its
//! strings (its id, the channel's id, a refund's order id) lie end to end
//! in one `String`, apps and stores are interned, "seen" is one bit, and
//! the index is a hash table of 4-byte slot numbers: about 110 bytes an
//! order in all.
//!
//! [`ReconOrder`]s and [`ReconRefund`]s are rebuilt from a slot only where
//! a finding needs one (a handful a day).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};

use cashdesk_core::{AppId, Fen, OrderId, OrderState, RefundId, RefundState, StoreId};
use cashdesk_store::{ReconOrder, ReconRefund};
use chrono::{DateTime, Utc};
use hashbrown::HashTable;

/// A string kept in [`Text`]: its start (high 48 bits) and length (low
/// 16 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TextRef(u64);

impl TextRef {
    const NONE: TextRef = TextRef(u64::MAX);
}

/// Strings end to end.
#[derive(Default)]
struct Text(String);

impl Text {
    /// The longest string kept whole: ids are 27 bytes and the channels'
    /// ids under 100, so a longer one (none is) is cut, at a character
    /// boundary.
    const MAX_LEN: usize = u16::MAX as usize - 1;

    fn push(&mut self, s: &str) -> TextRef {
        let mut len = s.len().min(Self::MAX_LEN);
        while !s.is_char_boundary(len) {
            len -= 1;
        }
        let start = self.0.len() as u64;
        self.0.push_str(&s[..len]);
        TextRef((start << 16) | len as u64)
    }

    fn push_opt(&mut self, s: Option<&str>) -> TextRef {
        s.map_or(TextRef::NONE, |s| self.push(s))
    }

    fn get_opt(&self, r: TextRef) -> Option<&str> {
        if r == TextRef::NONE {
            return None;
        }
        let start = (r.0 >> 16) as usize;
        self.0.get(start..start + (r.0 & 0xffff) as usize)
    }

    fn get(&self, r: TextRef) -> &str {
        self.get_opt(r).unwrap_or_default()
    }
}

/// Values many entries share (a config's apps and stores), kept once;
/// [`Interned::NONE`] stands for no value.
struct Interned<T> {
    values: Vec<T>,
    ids: HashMap<T, u32>,
}

impl<T: Hash + Eq + Clone> Interned<T> {
    const NONE: u32 = u32::MAX;

    fn new() -> Self {
        Self {
            values: Vec::new(),
            ids: HashMap::new(),
        }
    }

    fn id(&mut self, v: Option<&T>) -> u32 {
        let Some(v) = v else { return Self::NONE };
        if let Some(id) = self.ids.get(v) {
            return *id;
        }
        // Far fewer than 2^32 distinct apps or stores.
        let id = self.values.len() as u32;
        self.values.push(v.clone());
        self.ids.insert(v.clone(), id);
        id
    }

    fn get(&self, id: u32) -> Option<&T> {
        self.values.get(id as usize)
    }
}

/// Slots by a string id, each with a "seen" bit.
struct ById<T> {
    text: Text,
    slots: Vec<(TextRef, T)>,
    seen: Vec<u64>,
    table: HashTable<u32>,
    hasher: RandomState,
}

impl<T> ById<T> {
    fn new() -> Self {
        Self {
            text: Text::default(),
            slots: Vec::new(),
            seen: Vec::new(),
            table: HashTable::new(),
            hasher: RandomState::new(),
        }
    }

    fn find(&self, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        self.table
            .find(hash, |&i| self.text.get(self.slots[i as usize].0) == id)
            .copied()
    }

    /// Adds the entry `id`, or replaces its value when it is there (the
    /// later of two wins, as a map's `insert`). `value` may keep strings
    /// in the same text.
    fn insert(&mut self, id: &str, value: impl FnOnce(&mut Text) -> T) {
        if let Some(i) = self.find(id) {
            self.slots[i as usize].1 = value(&mut self.text);
            return;
        }
        let key = self.text.push(id);
        let v = value(&mut self.text);
        // A window of 2^32 entries could not be held in memory anyway.
        let i = self.slots.len() as u32;
        self.slots.push((key, v));
        if self.seen.len() * 64 < self.slots.len() {
            self.seen.push(0);
        }
        let (text, slots, hasher) = (&self.text, &self.slots, &self.hasher);
        let hash = hasher.hash_one(text.get(key));
        self.table
            .insert_unique(hash, i, |&j| hasher.hash_one(text.get(slots[j as usize].0)));
    }

    fn id(&self, i: u32) -> &str {
        self.text.get(self.slots[i as usize].0)
    }

    fn value(&self, i: u32) -> &T {
        &self.slots[i as usize].1
    }

    fn mark_seen(&mut self, i: u32) {
        self.seen[i as usize / 64] |= 1 << (i % 64);
    }

    fn is_seen(&self, i: u32) -> bool {
        self.seen[i as usize / 64] & (1 << (i % 64)) != 0
    }

    fn all(&self) -> impl Iterator<Item = u32> + '_ {
        // As many as `insert` numbered.
        (0..self.slots.len()).map(|i| i as u32)
    }
}

/// What the matching keeps of a paid order.
struct Paid {
    amount: Fen,
    pay_time: DateTime<Utc>,
    transaction_id: TextRef,
    app: u32,
    store: u32,
    state: OrderState,
}

/// What the matching keeps of a successful refund.
struct Refunded {
    order_id: TextRef,
    amount: Fen,
    finished_at: DateTime<Utc>,
    channel_refund_id: TextRef,
    app: u32,
    store: u32,
    state: RefundState,
}

/// The window's paid orders and successful refunds, by id.
pub(super) struct Local {
    orders: ById<Paid>,
    refunds: ById<Refunded>,
    apps: Interned<AppId>,
    stores: Interned<StoreId>,
}

/// An order's slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OrderSlot(u32);

/// A refund's slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RefundSlot(u32);

/// Where a slot's line goes on the statement: its interned app and store.
pub(super) type Owner = (u32, u32);

impl Local {
    pub(super) fn new() -> Self {
        Self {
            orders: ById::new(),
            refunds: ById::new(),
            apps: Interned::new(),
            stores: Interned::new(),
        }
    }

    pub(super) fn add_order(&mut self, o: &ReconOrder) {
        let app = self.apps.id(Some(&o.app_id));
        let store = self.stores.id(o.store_id.as_ref());
        self.orders.insert(o.order_id.as_str(), |text| Paid {
            amount: o.amount,
            pay_time: o.pay_time,
            transaction_id: text.push_opt(o.transaction_id.as_deref()),
            app,
            store,
            state: o.state,
        });
    }

    pub(super) fn add_refund(&mut self, r: &ReconRefund) {
        let app = self.apps.id(Some(&r.app_id));
        let store = self.stores.id(r.store_id.as_ref());
        self.refunds.insert(r.refund_id.as_str(), |text| Refunded {
            order_id: text.push(r.order_id.as_str()),
            amount: r.amount,
            finished_at: r.finished_at,
            channel_refund_id: text.push_opt(r.channel_refund_id.as_deref()),
            app,
            store,
            state: r.state,
        });
    }

    pub(super) fn order(&self, id: &str) -> Option<OrderSlot> {
        self.orders.find(id).map(OrderSlot)
    }

    pub(super) fn refund(&self, id: &str) -> Option<RefundSlot> {
        self.refunds.find(id).map(RefundSlot)
    }

    pub(super) fn see_order(&mut self, s: OrderSlot) {
        self.orders.mark_seen(s.0);
    }

    pub(super) fn see_refund(&mut self, s: RefundSlot) {
        self.refunds.mark_seen(s.0);
    }

    pub(super) fn order_id(&self, s: OrderSlot) -> &str {
        self.orders.id(s.0)
    }

    pub(super) fn refund_id(&self, s: RefundSlot) -> &str {
        self.refunds.id(s.0)
    }

    pub(super) fn order_amount(&self, s: OrderSlot) -> Fen {
        self.orders.value(s.0).amount
    }

    pub(super) fn refund_amount(&self, s: RefundSlot) -> Fen {
        self.refunds.value(s.0).amount
    }

    pub(super) fn pay_time(&self, s: OrderSlot) -> DateTime<Utc> {
        self.orders.value(s.0).pay_time
    }

    pub(super) fn finished_at(&self, s: RefundSlot) -> DateTime<Utc> {
        self.refunds.value(s.0).finished_at
    }

    pub(super) fn order_owner(&self, s: OrderSlot) -> Owner {
        let p = self.orders.value(s.0);
        (p.app, p.store)
    }

    pub(super) fn refund_owner(&self, s: RefundSlot) -> Owner {
        let r = self.refunds.value(s.0);
        (r.app, r.store)
    }

    /// The app and store ids of an owner, as the statement keys them
    /// (`""`: no store).
    pub(super) fn owner_names(&self, (app, store): Owner) -> (&str, &str) {
        (
            self.apps.get(app).map_or("", AppId::as_str),
            self.stores.get(store).map_or("", StoreId::as_str),
        )
    }

    /// The order as the store gave it.
    pub(super) fn full_order(&self, s: OrderSlot) -> ReconOrder {
        let p = self.orders.value(s.0);
        ReconOrder {
            order_id: OrderId::parse(self.orders.id(s.0))
                .expect("kept from an OrderId, so it parses back"),
            app_id: self
                .apps
                .get(p.app)
                .cloned()
                .expect("every order has its app interned"),
            store_id: self.stores.get(p.store).cloned(),
            amount: p.amount,
            state: p.state,
            transaction_id: self
                .orders
                .text
                .get_opt(p.transaction_id)
                .map(str::to_owned),
            pay_time: p.pay_time,
        }
    }

    /// The refund as the store gave it.
    pub(super) fn full_refund(&self, s: RefundSlot) -> ReconRefund {
        let r = self.refunds.value(s.0);
        let text = &self.refunds.text;
        ReconRefund {
            refund_id: RefundId::parse(self.refunds.id(s.0))
                .expect("kept from a RefundId, so it parses back"),
            order_id: OrderId::parse(text.get(r.order_id))
                .expect("kept from an OrderId, so it parses back"),
            app_id: self
                .apps
                .get(r.app)
                .cloned()
                .expect("every refund has its app interned"),
            store_id: self.stores.get(r.store).cloned(),
            amount: r.amount,
            state: r.state,
            channel_refund_id: text.get_opt(r.channel_refund_id).map(str::to_owned),
            finished_at: r.finished_at,
        }
    }

    /// The orders no line has marked seen, in the order they were added.
    pub(super) fn unseen_orders(&self) -> impl Iterator<Item = OrderSlot> + '_ {
        self.orders
            .all()
            .filter(|&i| !self.orders.is_seen(i))
            .map(OrderSlot)
    }

    pub(super) fn unseen_refunds(&self) -> impl Iterator<Item = RefundSlot> + '_ {
        self.refunds
            .all()
            .filter(|&i| !self.refunds.is_seen(i))
            .map(RefundSlot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_keeps_strings_and_cuts_only_the_absurd() {
        let mut t = Text::default();
        let a = t.push("P01ARZ3NDEKTSV4RRFFQ69G5FAV");
        let none = t.push_opt(None);
        let empty = t.push("");
        let long = "界".repeat(30_000);
        let cut = t.push(&long);
        assert_eq!(t.get(a), "P01ARZ3NDEKTSV4RRFFQ69G5FAV");
        assert_eq!(t.get_opt(none), None);
        assert_eq!(t.get_opt(empty), Some(""));
        let kept = t.get(cut);
        assert!(kept.len() <= Text::MAX_LEN && long.starts_with(kept));
        assert_eq!(kept.chars().count(), Text::MAX_LEN / 3);
    }

    #[test]
    fn entries_are_found_replaced_and_seen_by_id() {
        let mut by: ById<i64> = ById::new();
        for i in 0..10_000 {
            by.insert(&format!("P{i:026}"), |_| i);
        }
        by.insert("P00000000000000000000000042", |_| -42);
        assert_eq!(by.slots.len(), 10_000);
        let i = by.find("P00000000000000000000000042").expect("there");
        assert_eq!(*by.value(i), -42);
        assert_eq!(by.find("P00000000000000000000010000"), None);
        assert!(!by.is_seen(i));
        by.mark_seen(i);
        assert!(by.is_seen(i));
        assert_eq!(by.all().filter(|&j| by.is_seen(j)).count(), 1);
        for j in by.all() {
            assert_eq!(by.find(by.id(j)), Some(j));
        }
    }
}
