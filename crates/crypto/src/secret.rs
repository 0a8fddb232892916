//! [`Secret`]: the one type that carries API keys, app keys and PEM private
//! keys through the program. It exists so that a secret can never reach a log
//! line or an error message by accident (`Debug` and `Display` print `***`),
//! lingers in memory no longer than needed (zeroed on drop), and is compared
//! in constant time, length included ([`Secret::matches`]).

use std::fmt;

use zeroize::Zeroizing;

/// A secret string (API key, app key, PEM private key). `Debug` and
/// `Display` print `***`; memory is zeroed on drop; `==` is
/// [`Secret::matches`].
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(Zeroizing::new(s.into()))
    }

    /// The secret itself. Call sites are the places a secret is used.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this secret, in time that depends on neither
    /// ([`crate::ct_eq_secret`]): a caller guessing a bearer token learns
    /// not even its length.
    pub fn matches(&self, given: &[u8]) -> bool {
        crate::ct_eq_secret(given, self.0.as_bytes())
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other.0.as_bytes())
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let s = Secret::new("192006250b4c09247ec02edce69f6a2d");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(***))");
        assert_eq!(s.expose(), "192006250b4c09247ec02edce69f6a2d");
    }

    #[test]
    fn equality() {
        assert_eq!(Secret::from("abc"), Secret::from("abc".to_string()));
        assert_ne!(Secret::from("abc"), Secret::from("abd"));
        assert_ne!(Secret::from("abc"), Secret::from("abcd"));
        assert_eq!(Secret::default(), Secret::from(""));
    }
}
