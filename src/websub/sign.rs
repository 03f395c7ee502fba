//! The hub's two uses of cryptography: `X-Hub-Signature` values (HMAC-SHA256 of a delivered body
//! with the subscriber's secret, WebSub §7.1) and the random single-use `hub.challenge` of a
//! verification (§5.3, §8.2). Both from ring, which rustls already builds on.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// The `X-Hub-Signature` header value for `body` signed with `secret`: `sha256=<hex>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    format!("sha256={}", hex(hmac::sign(&key, body).as_ref()))
}

/// A fresh challenge: 32 random bytes as 64 hex digits.
pub fn challenge() -> String {
    let mut bytes = [0u8; 32];
    // The system's random source failing is not something to serve on: it is fatal everywhere.
    SystemRandom::new().fill(&mut bytes).expect("the system random source works");
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_known_answers() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 4231 test case 1.
        assert_eq!(
            signature(&"\x0b".repeat(20), b"Hi There"),
            "sha256=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        let long = "k".repeat(199);
        assert_ne!(signature(&long, b"x"), signature(&long[..198], b"x"));
        assert_ne!(signature("a", b"body"), signature("a", b"body "));
    }

    #[test]
    fn challenges_are_fresh_hex() {
        let (a, b) = (challenge(), challenge());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
