//! The admin token itself (`--admin-token`, `DEMO_ADMIN_TOKEN`): kept out of every log, checked at
//! start, compared in constant time. What it protects is `crate::admin`.

/// The token. Its `Debug` prints `***`, so no log of the settings can show it.
#[derive(Clone)]
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

/// clap's parser: takes any text, because clap quotes a value it refuses in its error and the
/// token must not be printed; [`AdminToken::check`] refuses an unusable one at start.
impl std::str::FromStr for AdminToken {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(AdminToken(text.to_owned()))
    }
}

impl AdminToken {
    /// Refuses a token no client could send in a header: empty, or with whitespace or control
    /// characters. The message never contains the token.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.0.is_empty() || self.0.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(
                "--admin-token / DEMO_ADMIN_TOKEN must be non-empty, without spaces or control \
                 characters (its value is not printed)"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// Whether `given` is the token. Compared in constant time: `==` stops at the first byte that
    /// differs, so how long a refusal takes would tell a client how many leading bytes it has
    /// right, and it could find the token a byte at a time. Only the length can show (slices of
    /// different lengths are refused at once), which tells nothing of a long random token.
    pub(crate) fn matches(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(given.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_only_itself_and_never_shows_in_debug() {
        let token = AdminToken("s3cret".to_owned());
        assert!(token.matches("s3cret"));
        for wrong in ["", "s3cre", "s3cret!", "S3CRET", "s3cres"] {
            assert!(!token.matches(wrong), "{wrong}");
        }
        assert!(!format!("{token:?}").contains("s3cret"));
        assert!(AdminToken(String::new()).check().is_err());
        assert!(AdminToken("two words".to_owned()).check().is_err());
        assert!(token.check().is_ok());
    }
}
