//! What the sandbox's WeChat users "received": every accepted subscribe
//! message, newest last, at most [`MAX_MESSAGES`] (the oldest go first).
//! Shown on a page, `GET /sandbox/wechat/subscribe/messages`, grouped by
//! user as a phone's service-notification list would show them, and as
//! JSON at `GET /sandbox/api/subscribe/messages` for tests. Both take
//! `appid`/`appId` and `openid` filters and `limit`.
//!
//! A message holds only what passed the value checks (the template's
//! keys, each a short value; the page at most [`MAX_PAGE`] bytes), so the
//! inbox's size is bounded by its count.

use std::collections::VecDeque;
use std::sync::Mutex;

use cashdesk_core::html::escape as esc;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The most messages kept.
pub const MAX_MESSAGES: usize = 10_000;
/// The longest `page` accepted (longer is 41030).
pub const MAX_PAGE: usize = 512;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    /// The `msgid` answered to the sender.
    pub msgid: u64,
    #[serde(serialize_with = "rfc3339")]
    pub at: DateTime<Utc>,
    pub app_id: String,
    pub openid: String,
    pub template_id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    pub miniprogram_state: String,
    pub lang: String,
    /// The template's keys in order: key, label, value.
    pub data: Vec<Field>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Field {
    pub key: String,
    pub label: String,
    pub value: String,
}

fn rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&cashdesk_core::time::to_rfc3339_cn(*t))
}

#[derive(Default)]
pub struct Inbox(Mutex<(u64, VecDeque<Received>)>);

impl Inbox {
    /// Keep `msg` and answer its `msgid`.
    pub fn push(&self, mut msg: Received) -> u64 {
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        inner.0 += 1;
        msg.msgid = 3_000_000_000_000_000_000 + inner.0;
        let id = msg.msgid;
        while inner.1.len() >= MAX_MESSAGES {
            inner.1.pop_front();
        }
        inner.1.push_back(msg);
        id
    }

    /// The newest `limit` messages matching the filters, newest first.
    pub fn list(&self, app_id: Option<&str>, openid: Option<&str>, limit: usize) -> Vec<Received> {
        let inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .1
            .iter()
            .rev()
            .filter(|m| app_id.is_none_or(|a| m.app_id == a))
            .filter(|m| openid.is_none_or(|o| m.openid == o))
            .take(limit)
            .cloned()
            .collect()
    }
}

/// The page's body: one section per user (newest message first), one
/// card per message. Everything shown is escaped.
pub fn page_body(messages: &[Received], filtered: bool) -> String {
    if messages.is_empty() {
        let hint = if filtered {
            "No message for this user yet."
        } else {
            "No subscribe message sent yet."
        };
        return format!(
            "<p class=\"msg\">服务通知 · Service notifications</p><p class=\"muted\">{hint}</p>"
        );
    }
    let mut users: Vec<(&str, &str)> = Vec::new();
    for m in messages {
        let u = (m.app_id.as_str(), m.openid.as_str());
        if !users.contains(&u) {
            users.push(u);
        }
    }
    let mut out = String::from("<p class=\"msg\">服务通知 · Service notifications</p>");
    for (app_id, openid) in users {
        out.push_str(&format!(
            "<section><h2 class=\"muted\">User {} · mini-program {}</h2>",
            esc(openid),
            esc(app_id)
        ));
        for m in messages
            .iter()
            .filter(|m| m.app_id == app_id && m.openid == openid)
        {
            out.push_str(&card(m));
        }
        out.push_str("</section>");
    }
    out
}

fn card(m: &Received) -> String {
    let rows: String = m
        .data
        .iter()
        .map(|f| {
            format!(
                "<div><dt>{}</dt><dd>{}</dd></div>",
                esc(&f.label),
                esc(&f.value)
            )
        })
        .collect();
    let page = match &m.page {
        Some(p) => format!(
            "<p class=\"muted\">Opens {} ({}) · 进入小程序查看</p>",
            esc(p),
            esc(&m.miniprogram_state)
        ),
        None => String::new(),
    };
    format!(
        "<article><p class=\"desc\"><b>{title}</b></p><p class=\"muted\">{at} · template {tpl} · {lang}</p>\
<dl class=\"rows\">{rows}</dl>{page}</article><hr>",
        title = esc(&m.title),
        at = esc(&cashdesk_core::time::to_cn_datetime(m.at)),
        tpl = esc(&m.template_id),
        lang = esc(&m.lang),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(openid: &str, value: &str) -> Received {
        Received {
            msgid: 0,
            at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            app_id: "wx1".into(),
            openid: openid.into(),
            template_id: "sbx_all_keys".into(),
            title: "t".into(),
            page: Some("pages/a?x=<b>".into()),
            miniprogram_state: "formal".into(),
            lang: "zh_CN".into(),
            data: vec![Field {
                key: "thing1".into(),
                label: "事物".into(),
                value: value.into(),
            }],
        }
    }

    #[test]
    fn the_inbox_is_bounded_and_filtered() {
        let inbox = Inbox::default();
        let first = inbox.push(msg("o1", "a"));
        for _ in 0..MAX_MESSAGES {
            inbox.push(msg("o2", "b"));
        }
        assert_eq!(inbox.list(None, None, usize::MAX).len(), MAX_MESSAGES);
        assert!(
            inbox.list(None, Some("o1"), 10).is_empty(),
            "the oldest went"
        );
        let newest = inbox.list(Some("wx1"), Some("o2"), 1);
        assert_eq!(newest[0].msgid, first + MAX_MESSAGES as u64);
        assert!(inbox.list(Some("wx2"), None, 10).is_empty());
    }

    #[test]
    fn the_page_escapes_everything() {
        let body = page_body(&[msg("<o1>", "<script>alert(1)</script>")], false);
        assert!(!body.contains("<script>") && !body.contains("<o1>") && !body.contains("x=<b>"));
        assert!(body.contains("&lt;script&gt;"));
    }
}
