//! Search, sort and filter of key lists, with Key Protect's grammar:
//!
//! * `search`: `[not:][exact:][alias:|name:]…[escape:]text` — case-insensitive substring
//!   over names and aliases (exact: whole value); a key id or alias also matches directly.
//! * `sort`: comma list of `id, state, extractable, imported, creationDate, lastUpdateDate,
//!   lastRotateDate, deletionDate, expirationDate`, `-` for descending.
//! * `filter`: space-separated `prop=value` terms: dates with `lt:`, `lte:`, `gt:`, `gte:` and
//!   a quoted RFC 3339 time or `none`; `extractable=true|false`; `state=1,2`. At most three
//!   terms per property.
//!
//! The search space is capped at 5,000 keys, as in Key Protect.

use crate::action::Action;
use std::cmp::Ordering;

use strongroom_keystore::{KeyFilter, KeyRecord, Page};
use strongroom_model::{KeyState, UnixMillis};

use crate::auth::Ctx;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::keys::effective_state;
use crate::Service;
use strongroom_model::Role;

/// Largest number of keys a search, sort or filter looks at.
pub const SEARCH_SPACE: u32 = 5000;

fn invalid(msg: impl Into<String>) -> ServiceError {
    ServiceError::new(ErrorKind::InvalidQueryParam, msg)
}

/// A parsed `search` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// The text.
    pub query: String,
    /// Look in names.
    pub name: bool,
    /// Look in aliases.
    pub alias: bool,
    /// Negate.
    pub not: bool,
    /// Whole-value match.
    pub exact: bool,
}

impl Search {
    /// Parses the search grammar.
    pub fn parse(s: &str) -> Result<Self> {
        let (mut not, mut exact, mut name, mut alias) = (false, false, false, false);
        let mut rest = s;
        loop {
            if let Some(r) = rest.strip_prefix("not:") {
                not = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("exact:") {
                exact = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("name:") {
                name = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alias:") {
                alias = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("escape:") {
                rest = r;
                break;
            } else {
                break;
            }
        }
        if rest.is_empty() {
            return Err(invalid("'search' needs text after its prefixes"));
        }
        if !name && !alias {
            name = true;
            alias = true;
        }
        Ok(Search {
            query: rest.to_string(),
            name,
            alias,
            not,
            exact,
        })
    }

    fn matches(&self, k: &KeyRecord) -> bool {
        let hit = |v: &str| {
            if self.exact {
                v == self.query
            } else {
                v.to_lowercase().contains(&self.query.to_lowercase())
            }
        };
        let found = (self.name && hit(&k.name)) || (self.alias && k.aliases.iter().any(|a| hit(a)));
        found != self.not
    }
}

pub use strongroom_model::SortField;

fn date_of(k: &KeyRecord, f: SortField) -> Option<UnixMillis> {
    match f {
        SortField::CreationDate => Some(k.created_at),
        SortField::LastUpdateDate => Some(k.updated_at),
        SortField::LastRotateDate => k.last_rotated_at,
        SortField::DeletionDate => k.deleted_at,
        SortField::ExpirationDate => k.expiration,
        _ => None,
    }
}

fn sort_field(s: &str) -> Option<SortField> {
    Some(match s {
        "id" => SortField::Id,
        "state" => SortField::State,
        "extractable" => SortField::Extractable,
        "imported" => SortField::Imported,
        "creationDate" => SortField::CreationDate,
        "lastUpdateDate" => SortField::LastUpdateDate,
        "lastRotateDate" => SortField::LastRotateDate,
        "deletionDate" => SortField::DeletionDate,
        "expirationDate" => SortField::ExpirationDate,
        _ => return None,
    })
}

/// Parses the `sort` parameter.
pub fn parse_sort(s: &str) -> Result<Vec<(SortField, bool)>> {
    s.split(',')
        .map(|p| {
            let (desc, name) = match p.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, p),
            };
            sort_field(name.trim())
                .map(|f| (f, desc))
                .ok_or_else(|| invalid(format!("'sort' cannot sort by '{name}'")))
        })
        .collect()
}

/// One `filter` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterTerm {
    /// A date comparison; `None` value means "the date is not set".
    Date(SortField, Option<(Cmp, UnixMillis)>),
    /// `extractable=`.
    Extractable(bool),
    /// `state=`.
    States(Vec<KeyState>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `lt:`
    Lt,
    /// `lte:`
    Lte,
    /// `gt:`
    Gt,
    /// `gte:`
    Gte,
    /// no operator: equal
    Eq,
}

/// Parses the `filter` parameter; `parse_time` reads an RFC 3339 time.
pub fn parse_filter(
    s: &str,
    parse_time: &dyn Fn(&str) -> Option<UnixMillis>,
) -> Result<Vec<FilterTerm>> {
    let mut terms = Vec::new();
    let mut counts = std::collections::HashMap::new();
    for term in s.split_whitespace() {
        let (prop, value) = term
            .split_once('=')
            .ok_or_else(|| invalid(format!("'filter' term '{term}' must be prop=value")))?;
        let n = counts.entry(prop.to_string()).or_insert(0);
        *n += 1;
        if *n > 3 {
            return Err(invalid(format!(
                "'filter' allows at most three terms for '{prop}'"
            )));
        }
        let t = match prop {
            "extractable" => FilterTerm::Extractable(match value {
                "true" => true,
                "false" => false,
                _ => return Err(invalid("'filter' extractable must be true or false")),
            }),
            "state" => FilterTerm::States(
                value
                    .split(',')
                    .map(|v| {
                        v.parse::<i64>()
                            .ok()
                            .and_then(KeyState::from_code)
                            .ok_or_else(|| {
                                invalid(format!("'filter' state '{v}' is not 0, 1, 2, 3 or 5"))
                            })
                    })
                    .collect::<Result<_>>()?,
            ),
            p => {
                let field = sort_field(p)
                    .filter(|f| date_of_is_date(*f))
                    .ok_or_else(|| invalid(format!("'filter' cannot filter on '{p}'")))?;
                let (cmp, v) = [
                    ("lte:", Cmp::Lte),
                    ("lt:", Cmp::Lt),
                    ("gte:", Cmp::Gte),
                    ("gt:", Cmp::Gt),
                ]
                .iter()
                .find_map(|(pfx, c)| value.strip_prefix(pfx).map(|r| (*c, r)))
                .unwrap_or((Cmp::Eq, value));
                if v == "none" {
                    FilterTerm::Date(field, None)
                } else {
                    let t = parse_time(v.trim_matches('"')).ok_or_else(|| {
                        invalid(format!(
                            "'filter' {p} needs an RFC 3339 time in double quotes or none"
                        ))
                    })?;
                    FilterTerm::Date(field, Some((cmp, t)))
                }
            }
        };
        terms.push(t);
    }
    Ok(terms)
}

fn date_of_is_date(f: SortField) -> bool {
    matches!(
        f,
        SortField::CreationDate
            | SortField::LastUpdateDate
            | SortField::LastRotateDate
            | SortField::DeletionDate
            | SortField::ExpirationDate
    )
}

fn term_matches(t: &FilterTerm, k: &KeyRecord) -> bool {
    match t {
        FilterTerm::Extractable(x) => k.kind.extractable() == *x,
        FilterTerm::States(s) => s.contains(&k.state),
        FilterTerm::Date(f, None) => date_of(k, *f).is_none(),
        FilterTerm::Date(f, Some((cmp, t))) => match date_of(k, *f) {
            None => false,
            Some(d) => match cmp {
                Cmp::Lt => d < *t,
                Cmp::Lte => d <= *t,
                Cmp::Gt => d > *t,
                Cmp::Gte => d >= *t,
                Cmp::Eq => d.0 / 1000 == t.0 / 1000,
            },
        },
    }
}

fn compare(a: &KeyRecord, b: &KeyRecord, f: SortField) -> Ordering {
    match f {
        SortField::Id => a.id.to_string().cmp(&b.id.to_string()),
        SortField::State => a.state.code().cmp(&b.state.code()),
        SortField::Extractable => a.kind.extractable().cmp(&b.kind.extractable()),
        SortField::Imported => a.imported.cmp(&b.imported),
        d => date_of(a, d).cmp(&date_of(b, d)),
    }
}

/// A list request with search, sort and filter.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Search.
    pub search: Option<Search>,
    /// Sort keys (field, descending).
    pub sort: Vec<(SortField, bool)>,
    /// Filter terms.
    pub filter: Vec<FilterTerm>,
}

/// What a searched list returns besides the keys.
#[derive(Debug, Clone, Default)]
pub struct SearchOutcome {
    /// Keys of the page.
    pub keys: Vec<crate::KeyMetadata>,
    /// Whether the search space was cut at 5,000 keys.
    pub incomplete: bool,
}

impl Service {
    /// Lists keys with search, sort and filter applied in the service.
    pub async fn search_keys(
        &self,
        ctx: &Ctx,
        base: &KeyFilter,
        q: &ListQuery,
        page: Page,
    ) -> Result<SearchOutcome> {
        let op = async {
            let mut base = self.within_rings(ctx, base)?;
            if q.search.is_none() && q.filter.is_empty() {
                // Only a sort: the keystore orders the whole list and reads one page, so the
                // order holds however many keys the instance has.
                let keys = self
                    .store
                    .list_keys_sorted(ctx.instance, &base, &q.sort, page)
                    .await?
                    .iter()
                    .map(|k| self.view(k))
                    .collect();
                return Ok(SearchOutcome {
                    keys,
                    incomplete: false,
                });
            }
            if q.filter.iter().any(|t| matches!(t, FilterTerm::States(_))) {
                base.states.clear();
            }
            let space = self
                .store
                .list_keys(
                    ctx.instance,
                    &base,
                    Page {
                        limit: SEARCH_SPACE + 1,
                        offset: 0,
                    },
                )
                .await?;
            let mut incomplete = false;
            let mut keys = space;
            if keys.len() as u32 > SEARCH_SPACE {
                keys.truncate(SEARCH_SPACE as usize);
                incomplete = true;
            }
            // A key id or alias given as the search text is looked up directly, first.
            let mut direct = None;
            if let Some(s) = &q.search {
                if let Ok(id) = self.resolve(ctx, &s.query).await {
                    direct = self.store.get_key(ctx.instance, id).await.ok();
                }
                if incomplete && direct.is_none() {
                    return Err(ServiceError::new(ErrorKind::SearchTooBroad, "The search space exceeds 5000 keys; narrow it with state, extractable or a key ring"));
                }
            }
            let now = self.clock.now();
            let mut keys: Vec<KeyRecord> = keys
                .into_iter()
                .filter(|k| q.search.as_ref().is_none_or(|s| s.matches(k)))
                .filter(|k| q.filter.iter().all(|t| term_matches(t, k)))
                .collect();
            let mut pinned = 0;
            if let Some(d) = direct {
                if !q.search.as_ref().is_some_and(|s| s.not) {
                    keys.retain(|k| k.id != d.id);
                    keys.insert(0, d);
                    pinned = 1;
                }
            }
            if !q.sort.is_empty() {
                let n = keys.len();
                let (_, rest) = keys.split_at_mut(pinned.min(n));
                rest.sort_by(|a, b| {
                    q.sort.iter().fold(Ordering::Equal, |o, (f, desc)| {
                        o.then_with(|| {
                            if *desc {
                                compare(b, a, *f)
                            } else {
                                compare(a, b, *f)
                            }
                        })
                    })
                });
            }
            let keys = keys
                .into_iter()
                .skip(page.offset as usize)
                .take(page.limit as usize)
                .map(|k| crate::KeyMetadata::of(&k, effective_state(&k, now)))
                .collect();
            Ok(SearchOutcome { keys, incomplete })
        };
        self.audited(ctx, Action::SecretsList, Role::Reader, None, op)
            .await
    }
}
