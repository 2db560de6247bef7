//! A sorted key list holds its order past the 5,000 keys a search looks through: the
//! keystore sorts, and the service reads one page.

use super::*;

#[tokio::test]
async fn a_sort_alone_orders_every_key_not_the_first_five_thousand() {
    let f = fixture().await;
    let i = f.instance().await;
    // 5,100 keys written in one batch, created one millisecond apart, so that the newest
    // ones are not among the first 5,000 by id.
    let n = SEARCH_SPACE as i64 + 100;
    let mut batch = Vec::new();
    let mut newest_first = Vec::new();
    for k in 0..n {
        let (mut rec, v) = strongroom_keystore::conformance::key(i, &format!("bulk-{k}"));
        rec.created_at = UnixMillis(1_700_000_000_000 + k);
        newest_first.push(rec.id);
        batch.push((rec, vec![v]));
    }
    newest_first.reverse();
    f.store.restore_keys(&batch).await.unwrap();
    let ctx = f.ctx(i, &[Role::Reader]).await;
    let all_states = KeyFilter::default();
    let newest = ListQuery {
        sort: vec![(SortField::CreationDate, true)],
        ..ListQuery::default()
    };
    for offset in [0_u32, 2_500, 5_075] {
        let page = Page { limit: 25, offset };
        let out = f
            .svc
            .search_keys(&ctx, &all_states, &newest, page)
            .await
            .unwrap();
        assert!(!out.incomplete);
        let got: Vec<_> = out.keys.iter().map(|k| k.id).collect();
        let from = offset as usize;
        let to = (from + 25).min(newest_first.len());
        assert_eq!(got, newest_first[from..to].to_vec(), "page at {offset}");
    }
    // A search still looks through at most 5,000 keys, and says so.
    let q = ListQuery {
        search: Some(Search::parse("bulk-1").unwrap()),
        sort: vec![(SortField::CreationDate, true)],
        ..ListQuery::default()
    };
    let e = f
        .svc
        .search_keys(
            &ctx,
            &all_states,
            &q,
            Page {
                limit: 25,
                offset: 0,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::SearchTooBroad);
}
