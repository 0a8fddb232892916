//! Reads back the QR codes cashdesk serves, as a phone's scanner would:
//! the SVG's dark modules are drawn into a greyscale bitmap and decoded
//! with `rqrr`, a decoder independent of the `qrcode` crate that rendered
//! them. So a test checks what the image says, not that two renderings of
//! the same text agree.
//!
//! The SVG reader understands exactly what cashdesk emits (a light
//! background and one `<path>` of axis-aligned rectangles written as
//! `M x y h w v h H x V y`) and panics on anything else, so a change in
//! the rendering shows up as a clear failure here rather than a wrong
//! decode.

/// The text encoded in a cashdesk QR SVG.
pub fn decode_svg(svg: &str) -> String {
    let (w, h) = dimensions(svg);
    let mut dark = vec![false; w * h];
    for (x0, y0, x1, y1) in rectangles(svg) {
        assert!(x1 <= w && y1 <= h, "rectangle outside the image");
        for y in y0..y1 {
            for x in x0..x1 {
                dark[y * w + x] = true;
            }
        }
    }
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(
            w,
            h,
            |x, y| {
                if dark[y * w + x] { 0 } else { 255 }
            },
        );
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code in the image");
    let (_, text) = grids[0].decode().expect("the QR code decodes");
    text
}

fn attr(tag: &str, name: &str) -> usize {
    let start = tag
        .find(&format!(" {name}=\""))
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + name.len()
        + 3;
    let rest = &tag[start..];
    rest[..rest.find('"').expect("closing quote")]
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn dimensions(svg: &str) -> (usize, usize) {
    let open = &svg[svg.find("<svg").expect("<svg")..];
    let tag = &open[..open.find('>').expect("end of <svg>")];
    (attr(tag, "width"), attr(tag, "height"))
}

/// `(x0, y0, x1, y1)` of every subpath of the one `<path d="…">`.
fn rectangles(svg: &str) -> Vec<(usize, usize, usize, usize)> {
    assert_eq!(svg.matches("<path").count(), 1, "one path: {svg}");
    let path = &svg[svg.find("<path").expect("<path")..];
    let d = &path[path.find(" d=\"").expect("d attribute") + 4..];
    let d = &d[..d.find('"').expect("end of d")];
    let mut out = Vec::new();
    for sub in d.split('M').filter(|s| !s.is_empty()) {
        // "x y h w v h H x V y"
        let mut nums = Vec::new();
        let mut ops = String::new();
        let mut cur = String::new();
        for c in sub.chars() {
            if c.is_ascii_digit() {
                cur.push(c);
            } else {
                if !cur.is_empty() {
                    nums.push(cur.parse::<usize>().expect("number"));
                    cur.clear();
                }
                if c != ' ' {
                    ops.push(c);
                }
            }
        }
        if !cur.is_empty() {
            nums.push(cur.parse::<usize>().expect("number"));
        }
        assert_eq!(ops, "hvHV", "an axis-aligned rectangle: M{sub}");
        let [x, y, w, h, x_back, y_back] = nums[..] else {
            panic!("six numbers in M{sub}");
        };
        assert_eq!((x_back, y_back), (x, y), "a closed rectangle: M{sub}");
        out.push((x, y, x + w, y + h));
    }
    assert!(!out.is_empty(), "no modules drawn");
    out
}

#[test]
fn decodes_what_the_server_renders() {
    for text in [
        "weixin://wxpay/bizpayurl?pr=abcdefg",
        "http://127.0.0.1:8080/cashier-desk-web/payment?token=0123456789abcdefghijklmnopqrstuv",
    ] {
        let svg = cashdesk_server::service::payments::render_qr_svg(text).expect("render");
        assert_eq!(decode_svg(&svg), text);
    }
}
