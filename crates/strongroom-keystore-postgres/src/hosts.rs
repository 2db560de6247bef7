//! libpq's multi-host connection URL, `postgres://user@h1:5432,h2:5432/db?...`: the servers of
//! one replicated database, of which one at a time is the primary. sqlx connects to one host;
//! this splits such a URL into one single-host URL per server, in the order given.
//! `target_session_attrs` is left out of each: with several hosts the store always looks for
//! the server that accepts writes (`read-write`), which is the only kind a keystore can use.

use std::borrow::Cow;

/// The single-host URLs of `url`; one when it names one host (or none, for sqlx's defaults).
pub(crate) fn split(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return vec![url.to_string()];
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // The user info ends at the authority's last '@' (a password may hold an encoded one).
    let (userinfo, hostlist) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let tail = without_session_attrs(tail);
    hostlist
        .split(',')
        .map(|host| format!("{scheme}://{userinfo}{host}{tail}"))
        .collect()
}

/// `tail` (path and query) without its `target_session_attrs` parameter.
fn without_session_attrs(tail: &str) -> Cow<'_, str> {
    let Some((path, query)) = tail.split_once('?') else {
        return Cow::Borrowed(tail);
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.starts_with("target_session_attrs="))
        .collect();
    if kept.is_empty() {
        Cow::Owned(path.to_string())
    } else {
        Cow::Owned(format!("{path}?{}", kept.join("&")))
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn one_host_stays_as_it_is() {
        for url in [
            "postgres://strongroom@127.0.0.1:5432/db",
            "postgres://u:p%40ss@db.example:6543/db?sslmode=require",
            "postgres:///db",
            "not a url",
        ] {
            assert_eq!(split(url), vec![url.to_string()]);
        }
    }

    #[test]
    fn several_hosts_give_one_url_each_with_the_same_user_database_and_options() {
        assert_eq!(
            split("postgres://u:p%40ss@10.0.0.1:5432,[::1]:5433,db3/keys?target_session_attrs=read-write&sslmode=verify-full"),
            vec![
                "postgres://u:p%40ss@10.0.0.1:5432/keys?sslmode=verify-full",
                "postgres://u:p%40ss@[::1]:5433/keys?sslmode=verify-full",
                "postgres://u:p%40ss@db3/keys?sslmode=verify-full",
            ]
        );
        assert_eq!(
            split("postgresql://h1:1,h2:2/db?target_session_attrs=read-write"),
            vec!["postgresql://h1:1/db", "postgresql://h2:2/db"]
        );
        assert_eq!(
            split("postgres://a@h1,h2?sslmode=disable"),
            vec![
                "postgres://a@h1?sslmode=disable",
                "postgres://a@h2?sslmode=disable"
            ]
        );
    }
}
