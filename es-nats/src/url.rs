//! NATS URLs with credentials: split off, so that only bare addresses reach the client's connection logs.

/// Credentials found in a NATS URL.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// `nats://user:password@host`.
    UserPassword(String, String),
    /// `nats://token@host`.
    Token(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UserPassword(user, _) => write!(f, "UserPassword({user:?}, <redacted>)"),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// Splits `urls` (one URL or several separated by commas) into the addresses without user information, and the
/// credentials of the first URL that carries some.
pub(crate) fn split_credentials(urls: &str) -> (String, Option<Credentials>) {
    let mut credentials = None;
    let bare: Vec<String> = urls
        .split(',')
        .map(|url| {
            let url = url.trim();
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let Some(at) = rest[..authority_end].rfind('@') else {
                return url.to_owned();
            };
            let userinfo = &rest[..at];
            if credentials.is_none() {
                credentials = Some(match userinfo.split_once(':') {
                    Some((user, password)) => {
                        Credentials::UserPassword(user.to_owned(), password.to_owned())
                    }
                    None => Credentials::Token(userinfo.to_owned()),
                });
            }
            let host = &rest[at + 1..];
            match scheme {
                "" => host.to_owned(),
                scheme => format!("{scheme}://{host}"),
            }
        })
        .collect();
    (bare.join(","), credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_from_every_address() {
        let (bare, credentials) = split_credentials(
            "nats://app:s3cret@127.0.0.1:4222, nats://app:s3cret@127.0.0.2:4222/x",
        );
        assert_eq!(bare, "nats://127.0.0.1:4222,nats://127.0.0.2:4222/x");
        assert_eq!(
            credentials,
            Some(Credentials::UserPassword("app".into(), "s3cret".into()))
        );
        assert!(!format!("{credentials:?}").contains("s3cret"));
        let (bare, credentials) = split_credentials("tls://tok3n@host:4222");
        assert_eq!(bare, "tls://host:4222");
        assert_eq!(credentials, Some(Credentials::Token("tok3n".into())));
        assert_eq!(
            split_credentials("127.0.0.1:4222"),
            ("127.0.0.1:4222".into(), None)
        );
    }
}
