//! Hash and HMAC helpers.

pub fn md5(data: &[u8]) -> [u8; 16] {
    todo!("{data:?}")
}
pub fn md5_hex(data: &[u8]) -> String {
    todo!("{data:?}")
}
pub fn sha256(data: &[u8]) -> [u8; 32] {
    todo!("{data:?}")
}
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    todo!("{key:?}{msg:?}")
}
