//! The Redis URL: checked part by part, and masked wherever it is printed.

use super::error::ConfigError;

/// Checks a Redis URL piece by piece so the error can say which part is wrong.
pub(crate) fn validate_redis_url(url: &str) -> Result<(), ConfigError> {
    let masked = mask_credentials(url);
    let bad = |part: &'static str, problem: String| ConfigError::InvalidRedisUrl {
        url: masked.clone(),
        part,
        problem,
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad(
            "scheme",
            "is missing: expected redis://host:port/db".into(),
        ));
    };
    match scheme {
        "redis" | "rediss" | "valkey" | "valkeys" => {}
        "unix" | "redis+unix" => return Ok(()),
        other => {
            return Err(bad(
                "scheme",
                format!("{other:?} is not supported: use redis://, rediss:// or unix://"),
            ))
        }
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let Some((h, tail)) = v6.split_once(']') else {
            return Err(bad("host", "has an unclosed '[' in an IPv6 address".into()));
        };
        (h, tail.strip_prefix(':'))
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(bad("host", "is empty".into()));
    }
    if let Some(p) = port.filter(|p| p.parse::<u16>().ok().is_none_or(|p| p == 0)) {
        return Err(bad(
            "port",
            format!("{p:?} is not a number from 1 to 65535"),
        ));
    }
    let db = path.split('?').next().unwrap_or_default();
    if !db.is_empty() && db.parse::<u16>().is_err() {
        return Err(bad("database", format!("{db:?} is not a database number")));
    }
    Ok(())
}

/// Whether the URL names a database (a path after the authority).
pub(crate) fn url_names_database(url: &str) -> bool {
    !url_database_part(url).is_empty()
}

/// The database part of a URL's path as written (`"4"` in `redis://h:1/4?x`); empty when it names
/// none.
pub(crate) fn url_database_part(url: &str) -> &str {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .and_then(|(_, path)| path.split('?').next())
        .unwrap_or_default()
}

/// The URL with its user and password replaced by `***`, for messages and logs.
pub(crate) fn mask_credentials(url: &str) -> String {
    mask(url, false)
}

/// The URL with only its password replaced by `***` (the user name stays, so an operator can tell
/// which ACL user connects).
pub(crate) fn mask_password(url: &str) -> String {
    mask(url, true)
}

/// Masks a URL's credentials however it is written: after `scheme:` and any number of slashes
/// (`redis://`, `redis:/`, `unix:///`), up to the last `@` before the query; and the values of
/// `pass` and `password` query parameters (`unix:///run/redis.sock?pass=…`). A lone user part is
/// taken for a password, as Redis clients read `redis://secret@host`.
fn mask(url: &str, keep_user: bool) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (url, None),
    };
    let head = match (before_query.find(':'), before_query.rfind('@')) {
        (Some(colon), Some(at)) if at > colon => {
            let slashes = before_query[colon + 1..]
                .bytes()
                .take_while(|b| *b == b'/')
                .count();
            let start = colon + 1 + slashes;
            let credentials = &before_query[start..at];
            let shown = match credentials.split_once(':') {
                Some((user, _)) if keep_user => format!("{user}:***"),
                _ => "***".to_owned(),
            };
            format!("{}{shown}{}", &before_query[..start], &before_query[at..])
        }
        _ => before_query.to_owned(),
    };
    let Some(query) = query else { return head };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _))
                if key.eq_ignore_ascii_case("pass") || key.eq_ignore_ascii_case("password") =>
            {
                format!("{key}=***")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{head}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_of_writing_a_password_is_masked() {
        for (url, masked) in [
            ("redis://:secret@host:6379", "redis://***@host:6379"),
            ("redis:/:secret@host", "redis:/***@host"),
            ("rediss://user:se@cret@host/2", "rediss://***@host/2"),
            ("redis://secret@host", "redis://***@host"),
            (
                "unix:///run/redis.sock?db=2&pass=secret",
                "unix:///run/redis.sock?db=2&pass=***",
            ),
            (
                "redis+unix:///run/redis.sock?PASSWORD=secret",
                "redis+unix:///run/redis.sock?PASSWORD=***",
            ),
            ("redis://host:6379", "redis://host:6379"),
        ] {
            assert_eq!(mask_credentials(url), masked, "{url}");
            assert!(!mask_password(url).contains("secret"), "{url}");
        }
        assert_eq!(
            mask_password("redis://user:secret@host?password=x"),
            "redis://user:***@host?password=***"
        );
    }

    #[test]
    fn malformed_redis_urls_say_which_part_is_wrong() {
        let cases = [
            ("127.0.0.1:6379", "scheme"),
            ("http://127.0.0.1:6379", "scheme"),
            ("redis://:6379", "host"),
            ("redis://127.0.0.1:port", "port"),
            ("redis://127.0.0.1:70000", "port"),
            ("redis://127.0.0.1:6379/cache", "database"),
        ];
        for (url, part) in cases {
            let msg = validate_redis_url(url).expect_err(url).to_string();
            assert!(msg.contains(part), "{url}: {msg}");
        }
        assert!(validate_redis_url("redis://user:secret@host:6379/2").is_ok());
        let msg = validate_redis_url("redis://user:secret@host:x/2")
            .expect_err("port")
            .to_string();
        assert!(!msg.contains("secret"), "password must be masked: {msg}");
    }

    #[test]
    fn database_in_url_is_detected() {
        assert!(url_names_database("redis://h:1/4"));
        assert!(!url_names_database("redis://h:1"));
        assert!(!url_names_database("redis://h:1/"));
    }
}
