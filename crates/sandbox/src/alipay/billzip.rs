//! A small ZIP writer for Alipay's bill archive: deflated members whose
//! names are raw GBK bytes, without the UTF-8 flag (general-purpose bit
//! 11), as Alipay's archives are. The `zip` crate takes member names only
//! as `str` and flags every non-ASCII one as UTF-8, so it cannot write
//! such an archive; reading one works with it (`name_raw`), which is what
//! the tests do. No ZIP64: a member or archive of 4 GiB or more is refused
//! (a day's bill of the capped order book is far smaller).

use std::io::Write as _;

use chrono::{Datelike, NaiveDateTime, Timelike};

/// One member: its name (bytes as stored) and content.
pub struct Member {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// MS-DOS time and date of `t` (local time, 2-second steps, from 1980).
fn dos_time(t: NaiveDateTime) -> (u16, u16) {
    let time = ((t.hour() << 11) | (t.minute() << 5) | (t.second() / 2)) as u16;
    let year = (t.year() - 1980).clamp(0, 127) as u32;
    let date = ((year << 9) | (t.month() << 5) | t.day()) as u16;
    (time, date)
}

fn size(n: usize) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| "a bill archive member is too large".to_owned())
}

/// The archive of `members`, each deflated, all stamped `modified`.
pub fn write(members: &[Member], modified: NaiveDateTime) -> Result<Vec<u8>, String> {
    let (time, date) = dos_time(modified);
    let mut out = Vec::new();
    let mut central = Vec::new();
    for m in members {
        let mut crc = flate2::Crc::new();
        crc.update(&m.data);
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&m.data).map_err(|e| e.to_string())?;
        let packed = enc.finish().map_err(|e| e.to_string())?;
        let offset = size(out.len())?;
        let name_len = u16::try_from(m.name.len()).map_err(|_| "member name too long")?;
        // Fields shared by the local header and the central entry, from
        // "version needed" to "extra field length".
        let mut common = Vec::with_capacity(26);
        u16le(&mut common, 20); // version needed: deflate
        u16le(&mut common, 0); // flags: sizes known, names not UTF-8
        u16le(&mut common, 8); // deflate
        u16le(&mut common, time);
        u16le(&mut common, date);
        u32le(&mut common, crc.sum());
        u32le(&mut common, size(packed.len())?);
        u32le(&mut common, size(m.data.len())?);
        u16le(&mut common, name_len);
        u16le(&mut common, 0); // extra field length

        u32le(&mut out, 0x0403_4b50);
        out.extend_from_slice(&common);
        out.extend_from_slice(&m.name);
        out.extend_from_slice(&packed);

        u32le(&mut central, 0x0201_4b50);
        u16le(&mut central, 20); // made by: MS-DOS, 2.0
        central.extend_from_slice(&common);
        u16le(&mut central, 0); // comment length
        u16le(&mut central, 0); // disk
        u16le(&mut central, 0); // internal attributes
        u32le(&mut central, 0); // external attributes
        u32le(&mut central, offset);
        central.extend_from_slice(&m.name);
    }
    let cd_offset = size(out.len())?;
    let count = u16::try_from(members.len()).map_err(|_| "too many members")?;
    out.extend_from_slice(&central);
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, count);
    u16le(&mut out, count);
    u32le(&mut out, size(central.len())?);
    u32le(&mut out, cd_offset);
    u16le(&mut out, 0); // comment length
    Ok(out)
}
