//! AES-GCM (WeChat v3 notifications and certificates: 32-byte APIv3 key;
//! the official SDK tests also use 16-byte keys) and AES-256-ECB/PKCS7
//! (WeChat v2 refund notifications).
//!
//! GCM output and input are `ciphertext‖tag` (16-byte tag), the layout WeChat
//! base64-encodes. ECB is only here because WeChat v2 requires it; it has no
//! integrity, so callers must treat its plaintext as untrusted input.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyInit};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce};

use crate::CryptoError;

fn check_nonce(nonce: &[u8]) -> crate::Result<&Nonce<aes_gcm::aead::consts::U12>> {
    if nonce.len() != 12 {
        return Err(CryptoError::InvalidInput(format!(
            "AES-GCM nonce must be 12 bytes, got {}",
            nonce.len()
        )));
    }
    Ok(Nonce::from_slice(nonce))
}

fn bad_key(len: usize) -> CryptoError {
    CryptoError::InvalidKey(format!("AES-GCM key must be 16 or 32 bytes, got {len}"))
}

/// Decrypt `ciphertext‖tag` with a 16- or 32-byte key and a 12-byte nonce.
pub fn aes_gcm_decrypt(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> crate::Result<Vec<u8>> {
    let nonce = check_nonce(nonce)?;
    let payload = Payload {
        msg: ciphertext_and_tag,
        aad,
    };
    let out = match key.len() {
        16 => Aes128Gcm::new_from_slice(key)
            .map_err(|_| bad_key(key.len()))?
            .decrypt(nonce, payload),
        32 => Aes256Gcm::new_from_slice(key)
            .map_err(|_| bad_key(key.len()))?
            .decrypt(nonce, payload),
        n => return Err(bad_key(n)),
    };
    out.map_err(|_| CryptoError::Decrypt)
}

/// Encrypt to `ciphertext‖tag`.
pub fn aes_gcm_encrypt(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> crate::Result<Vec<u8>> {
    let nonce = check_nonce(nonce)?;
    let payload = Payload {
        msg: plaintext,
        aad,
    };
    let out = match key.len() {
        16 => Aes128Gcm::new_from_slice(key)
            .map_err(|_| bad_key(key.len()))?
            .encrypt(nonce, payload),
        32 => Aes256Gcm::new_from_slice(key)
            .map_err(|_| bad_key(key.len()))?
            .encrypt(nonce, payload),
        n => return Err(bad_key(n)),
    };
    out.map_err(|_| CryptoError::InvalidInput("plaintext too long for AES-GCM".into()))
}

pub fn aes256_ecb_pkcs7_encrypt(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    ecb::Encryptor::<aes::Aes256>::new(key.into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext)
}

pub fn aes256_ecb_pkcs7_decrypt(key: &[u8; 32], ciphertext: &[u8]) -> crate::Result<Vec<u8>> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
        return Err(CryptoError::InvalidInput(format!(
            "AES-ECB ciphertext must be a non-empty multiple of 16 bytes, got {}",
            ciphertext.len()
        )));
    }
    ecb::Decryptor::<aes::Aes256>::new(key.into())
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .map_err(|_| CryptoError::Decrypt)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    use super::*;

    /// PROTOCOLS.md "WeChat Pay API v3": the APIv3 key vector.
    const V3_KEY: &[u8] = b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
    const V3_NONCE: &[u8] = b"uluk4a9R25RW";
    const V3_AAD: &[u8] = b"associatedData";
    const V3_CT: &str = "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=";

    #[test]
    fn wechat_v3_vector() {
        let ct = aes_gcm_encrypt(V3_KEY, V3_NONCE, V3_AAD, b"message").unwrap();
        assert_eq!(STANDARD.encode(&ct), V3_CT);
        let pt =
            aes_gcm_decrypt(V3_KEY, V3_NONCE, V3_AAD, &STANDARD.decode(V3_CT).unwrap()).unwrap();
        assert_eq!(pt, b"message");
    }

    #[test]
    fn wechat_sdk_16_byte_key_vector() {
        // PROTOCOLS.md: the official SDK tests' AES-128-GCM case.
        let ct = STANDARD
            .decode("FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC")
            .unwrap();
        let pt = aes_gcm_decrypt(
            b"testAPIv3Key0000",
            b"wCq51qZv4Yfg",
            b"Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8",
            &ct,
        )
        .unwrap();
        assert_eq!(pt, b"Hello World");
    }

    #[test]
    fn gcm_rejects_anything_changed() {
        let ct = STANDARD.decode(V3_CT).unwrap();
        let decrypt =
            |key: &[u8], nonce: &[u8], aad: &[u8], ct: &[u8]| aes_gcm_decrypt(key, nonce, aad, ct);
        let mut wrong_key = V3_KEY.to_vec();
        wrong_key[0] ^= 1;
        assert!(matches!(
            decrypt(&wrong_key, V3_NONCE, V3_AAD, &ct),
            Err(CryptoError::Decrypt)
        ));
        assert!(matches!(
            decrypt(V3_KEY, b"uluk4a9R25RX", V3_AAD, &ct),
            Err(CryptoError::Decrypt)
        ));
        assert!(matches!(
            decrypt(V3_KEY, V3_NONCE, b"", &ct),
            Err(CryptoError::Decrypt)
        ));
        for i in [0, ct.len() - 1] {
            // First ciphertext byte, last tag byte.
            let mut tampered = ct.clone();
            tampered[i] ^= 0x01;
            assert!(matches!(
                decrypt(V3_KEY, V3_NONCE, V3_AAD, &tampered),
                Err(CryptoError::Decrypt)
            ));
        }
        assert!(matches!(
            decrypt(V3_KEY, V3_NONCE, V3_AAD, &ct[..15]),
            Err(CryptoError::Decrypt)
        ));
        assert!(matches!(
            decrypt(V3_KEY, V3_NONCE, V3_AAD, &[]),
            Err(CryptoError::Decrypt)
        ));
    }

    #[test]
    fn gcm_rejects_bad_key_and_nonce_sizes() {
        for key in [&[0u8; 24][..], &[0u8; 0][..], &[0u8; 31][..]] {
            assert!(matches!(
                aes_gcm_encrypt(key, V3_NONCE, b"", b"x"),
                Err(CryptoError::InvalidKey(_))
            ));
            assert!(matches!(
                aes_gcm_decrypt(key, V3_NONCE, b"", &[0; 17]),
                Err(CryptoError::InvalidKey(_))
            ));
        }
        for nonce in [&b"short"[..], &[0u8; 13][..], &[][..]] {
            assert!(matches!(
                aes_gcm_encrypt(V3_KEY, nonce, b"", b"x"),
                Err(CryptoError::InvalidInput(_))
            ));
            assert!(matches!(
                aes_gcm_decrypt(V3_KEY, nonce, b"", &[0; 17]),
                Err(CryptoError::InvalidInput(_))
            ));
        }
    }

    #[test]
    fn ecb_fips_197_vector() {
        // FIPS-197 appendix C.3 (AES-256); PKCS7 then adds a whole block of 0x10.
        let key: [u8; 32] =
            hex::decode("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
                .unwrap()
                .try_into()
                .unwrap();
        let pt = hex::decode("00112233445566778899aabbccddeeff").unwrap();
        let ct = aes256_ecb_pkcs7_encrypt(&key, &pt);
        assert_eq!(ct.len(), 32);
        assert_eq!(hex::encode(&ct[..16]), "8ea2b7ca516745bfeafc49904b496089");
        assert_eq!(aes256_ecb_pkcs7_decrypt(&key, &ct).unwrap(), pt);
    }

    #[test]
    fn ecb_rejects_bad_lengths_and_padding() {
        let key = [7u8; 32];
        assert!(matches!(
            aes256_ecb_pkcs7_decrypt(&key, &[]),
            Err(CryptoError::InvalidInput(_))
        ));
        assert!(matches!(
            aes256_ecb_pkcs7_decrypt(&key, &[0; 17]),
            Err(CryptoError::InvalidInput(_))
        ));
        // A block whose plaintext ends in 0x00 is not PKCS7.
        let bad = ecb::Encryptor::<aes::Aes256>::new(&key.into())
            .encrypt_padded_vec_mut::<aes::cipher::block_padding::NoPadding>(&[0u8; 16]);
        assert!(matches!(
            aes256_ecb_pkcs7_decrypt(&key, &bad),
            Err(CryptoError::Decrypt)
        ));
    }

    proptest! {
        #[test]
        fn gcm_round_trip(
            long_key in any::<bool>(),
            key in proptest::collection::vec(any::<u8>(), 32),
            nonce in proptest::collection::vec(any::<u8>(), 12),
            aad in proptest::collection::vec(any::<u8>(), 0..64),
            pt in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let key = if long_key { &key[..] } else { &key[..16] };
            let ct = aes_gcm_encrypt(key, &nonce, &aad, &pt).unwrap();
            prop_assert_eq!(ct.len(), pt.len() + 16);
            prop_assert_eq!(aes_gcm_decrypt(key, &nonce, &aad, &ct).unwrap(), pt);
            let mut other_aad = aad.clone();
            other_aad.push(0);
            prop_assert!(aes_gcm_decrypt(key, &nonce, &other_aad, &ct).is_err());
        }

        #[test]
        fn ecb_round_trip(key in any::<[u8; 32]>(), pt in proptest::collection::vec(any::<u8>(), 0..512)) {
            let ct = aes256_ecb_pkcs7_encrypt(&key, &pt);
            prop_assert_eq!(ct.len(), (pt.len() / 16 + 1) * 16);
            prop_assert_eq!(aes256_ecb_pkcs7_decrypt(&key, &ct).unwrap(), pt);
        }
    }
}
