//! Server-side SVG charts for the console's dashboard: pure functions
//! from figures to an SVG string, inlined into the page.
//!
//! Why inline SVG made here, not a chart library: the console serves no
//! script it does not need and no outside asset, under a CSP of
//! `default-src 'none'; img-src 'self' data:; style-src 'self'`. So a
//! chart has no `<script>`, no event handler attribute, no `<style>`
//! element and no `style` attribute (both are inline styles the CSP
//! refuses); it is drawn with presentation attributes (`fill`,
//! `font-size`, …), which are not CSS, and carries classes
//! (`chart`, `bar`, `axis`, `label`) the console's stylesheet may theme.
//! Every text that comes from data (labels, captions, the title) is
//! escaped ([`cashdesk_core::html::escape`]). The `viewBox` is fixed
//! ([`WIDTH`] × [`HEIGHT`]); the chart scales to its container, so it
//! reads on a 375 px phone as on a desktop. Each bar has a `<title>`
//! (shown on hover, read by screen readers) with its caption.

use cashdesk_core::html::escape;
use cashdesk_store::DayStats;

/// The chart's coordinate space.
pub const WIDTH: u32 = 600;
pub const HEIGHT: u32 = 240;

const LEFT: f64 = 8.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 28.0;
/// At most this many x labels are written (every n-th day otherwise).
const MAX_LABELS: usize = 8;

/// One bar: its x label, its value (negative values are drawn as 0) and
/// the caption of its tooltip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub label: String,
    pub value: i64,
    pub caption: String,
}

/// A bar chart of `bars`, left to right, scaled to the largest value; the
/// title names the chart (`aria-label` and the top-left text) and
/// `max_text` labels the top gridline (e.g. the largest amount in yuan).
pub fn bar_chart(title: &str, bars: &[Bar], max_text: &str) -> String {
    let (w, h) = (f64::from(WIDTH), f64::from(HEIGHT));
    let plot_w = w - LEFT - RIGHT;
    let plot_h = h - TOP - BOTTOM;
    let base = TOP + plot_h;
    let max = bars.iter().map(|b| b.value.max(0)).max().unwrap_or(0);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{t}" preserveAspectRatio="xMidYMid meet"><text class="label" x="{LEFT}" y="14" font-size="12" fill="currentColor">{t}</text>"#,
        t = escape(title)
    );
    // The top gridline (the largest value) and the base line.
    svg.push_str(&format!(
        r##"<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{x2}" y2="{TOP}" stroke="#ccc" stroke-dasharray="3 3"/><text class="label" x="{x2}" y="{ty}" font-size="11" text-anchor="end" fill="currentColor">{m}</text><line class="axis" x1="{LEFT}" y1="{base}" x2="{x2}" y2="{base}" stroke="#999"/>"##,
        x2 = LEFT + plot_w,
        ty = TOP - 4.0,
        m = escape(max_text),
    ));
    if bars.is_empty() {
        svg.push_str("</svg>");
        return svg;
    }
    let slot = plot_w / bars.len() as f64;
    let bar_w = (slot * 0.7).max(1.0);
    let every = bars.len().div_ceil(MAX_LABELS).max(1);
    for (i, b) in bars.iter().enumerate() {
        let value = b.value.max(0);
        let bh = if max > 0 {
            plot_h * value as f64 / max as f64
        } else {
            0.0
        };
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        svg.push_str(&format!(
            r##"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{bh:.1}" fill="#2f7d5b"><title>{c}</title></rect>"##,
            y = base - bh,
            c = escape(&b.caption),
        ));
        // The last bar is always labelled (today), then every n-th back.
        if (bars.len() - 1 - i).is_multiple_of(every) {
            svg.push_str(&format!(
                r#"<text class="label" x="{cx:.1}" y="{ly}" font-size="11" text-anchor="middle" fill="currentColor">{l}</text>"#,
                cx = x + bar_w / 2.0,
                ly = h - 10.0,
                l = escape(&b.label),
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The per-day paid amount (fen) as bars: `MM-DD` labels, captions with
/// the amount in yuan and the paid and made order counts.
pub fn paid_amount_bars(days: &[DayStats]) -> Vec<Bar> {
    days.iter()
        .map(|d| Bar {
            label: d.day.format("%m-%d").to_string(),
            value: d.line.paid_amount.get(),
            caption: format!(
                "{}: ¥{} · {}/{} paid",
                d.day.format("%Y-%m-%d"),
                d.line.paid_amount.to_yuan(),
                d.line.paid,
                d.line.orders
            ),
        })
        .collect()
}

/// The per-day order count as bars.
pub fn order_count_bars(days: &[DayStats]) -> Vec<Bar> {
    days.iter()
        .map(|d| Bar {
            label: d.day.format("%m-%d").to_string(),
            value: i64::try_from(d.line.orders).unwrap_or(i64::MAX),
            caption: format!(
                "{}: {} orders, {} paid",
                d.day.format("%Y-%m-%d"),
                d.line.orders,
                d.line.paid
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use cashdesk_core::Fen;
    use cashdesk_store::StatsLine;
    use chrono::NaiveDate;

    use super::*;

    fn bar(label: &str, value: i64) -> Bar {
        Bar {
            label: label.into(),
            value,
            caption: format!("{label}: {value}"),
        }
    }

    /// The `height` of every bar, in order.
    fn heights(svg: &str) -> Vec<f64> {
        svg.split("<rect ")
            .skip(1)
            .map(|r| {
                let h = r.split("height=\"").nth(1).unwrap();
                h[..h.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn bars_scale_to_the_largest_value() {
        let svg = bar_chart(
            "Volume",
            &[bar("a", 50), bar("b", 100), bar("c", 0)],
            "¥1.00",
        );
        let plot = f64::from(HEIGHT) - TOP - BOTTOM;
        assert_eq!(heights(&svg), [plot / 2.0, plot, 0.0]);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains(r#"viewBox="0 0 600 240""#));
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn negative_and_all_zero_values_draw_flat_bars() {
        let svg = bar_chart("x", &[bar("a", -5), bar("b", 0)], "0");
        assert_eq!(heights(&svg), [0.0, 0.0]);
        let empty = bar_chart("x", &[], "0");
        assert!(heights(&empty).is_empty());
        assert!(empty.ends_with("</svg>"));
    }

    #[test]
    fn every_text_from_data_is_escaped() {
        let evil = Bar {
            label: "<script>alert(1)</script>".into(),
            value: 1,
            caption: "\"><img src=x onerror=alert(1)>".into(),
        };
        let svg = bar_chart("a<b & \"c\"", &[evil], "<max>");
        assert!(!svg.contains("<script"), "{svg}");
        assert!(!svg.contains("<img"), "{svg}");
        assert!(!svg.contains("<max>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("a&lt;b &amp; &quot;c&quot;"));
    }

    #[test]
    fn nothing_the_csp_would_refuse() {
        let bars: Vec<Bar> = (0..30).map(|i| bar(&format!("d{i}"), i)).collect();
        let svg = bar_chart("30 days", &bars, "29");
        let lower = svg.to_ascii_lowercase();
        for banned in [
            "<script",
            "<style",
            "style=",
            " on",
            "href",
            "url(",
            "<foreignobject",
        ] {
            assert!(!lower.contains(banned), "{banned} in {svg}");
        }
    }

    #[test]
    fn long_series_label_only_some_days_but_always_the_last() {
        let bars: Vec<Bar> = (0..30).map(|i| bar(&format!("d{i:02}"), 1)).collect();
        let svg = bar_chart("x", &bars, "1");
        let labels = svg.matches("text-anchor=\"middle\"").count();
        assert!(labels <= MAX_LABELS, "{labels}");
        assert!(svg.contains(">d29</text>"));
        let week: Vec<Bar> = (0..7).map(|i| bar(&format!("w{i}"), 1)).collect();
        assert_eq!(
            bar_chart("x", &week, "1")
                .matches("text-anchor=\"middle\"")
                .count(),
            7
        );
    }

    #[test]
    fn day_series_become_bars() {
        let days = [DayStats {
            day: NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(),
            line: StatsLine {
                orders: 4,
                paid: 3,
                paid_amount: Fen::from_stored(1234),
                ..StatsLine::default()
            },
        }];
        let paid = paid_amount_bars(&days);
        assert_eq!(paid[0].label, "05-01");
        assert_eq!(paid[0].value, 1234);
        assert_eq!(paid[0].caption, "2024-05-01: ¥12.34 · 3/4 paid");
        assert_eq!(order_count_bars(&days)[0].value, 4);
    }
}
