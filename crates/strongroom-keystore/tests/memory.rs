//! The shared keystore conformance suite against the in-memory keystore, so that tests
//! which use it in place of a database see what a database would answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use strongroom_keystore::{KeyStore, MemoryStore};

async fn fresh() -> Arc<dyn KeyStore> {
    Arc::new(MemoryStore::new())
}

strongroom_keystore::conformance_tests!(fresh());
