//! What a channel keeps per method it calls: the request path, parsed once, and the method's
//! circuit breaker. Made on the method's first call, then found by the contract's address
//! with one lock-free lookup per call.

use std::sync::Arc;

use http::uri::PathAndQuery;
use tokio::time::Instant;

use crate::client::breaker::Breaker;
use crate::contract::MethodContract;
use crate::cow_map::{AddressHash, CowMap};

/// The channel's methods, by contract address.
#[derive(Debug, Default)]
pub(crate) struct Methods {
    by_method: CowMap<usize, Method, AddressHash>,
}

/// One method, as a channel calls it. Cheap to clone: the path is a static string's bytes.
#[derive(Clone, Debug)]
pub(crate) struct Method {
    /// The HTTP/2 path: tonic takes it parsed, and parsing it checks every byte — per call,
    /// as tonic's own generated clients do, were it not kept here.
    pub(crate) path: PathAndQuery,
    /// The method's breaker, if its contract has one (the same for every call of it).
    pub(crate) breaker: Option<Arc<Breaker>>,
}

// === impl Methods ===

impl Methods {
    /// `method`, made on its first call.
    pub(crate) fn get(&self, method: &'static MethodContract) -> Method {
        let key = std::ptr::from_ref(method) as usize;
        self.by_method.get_or_insert_with(&key, || Method {
            path: PathAndQuery::from_static(method.path),
            breaker: Breaker::for_method(method, Instant::now()).map(Arc::new),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::breaker::BreakerState;
    use crate::client::breaker::tests::METHOD as WITH_BREAKER;
    use crate::contract::RpcKind;

    static PLAIN: MethodContract =
        MethodContract::bare("t.S", "Plain", "/t.S/Plain", RpcKind::Unary);

    #[tokio::test(start_paused = true)]
    async fn each_method_keeps_its_path_and_one_breaker() {
        let methods = Methods::default();
        let plain = methods.get(&PLAIN);
        assert_eq!(plain.path.as_str(), "/t.S/Plain");
        assert!(plain.breaker.is_none());

        let first = methods.get(&WITH_BREAKER);
        assert_eq!(first.path.as_str(), WITH_BREAKER.path);
        let breaker = first.breaker.expect("the contract has a breaker");
        // Four failures open it: every later lookup finds that same breaker, open.
        for _ in 0..4 {
            let (permit, _) = breaker.clone().acquire(Instant::now());
            let _ = permit
                .expect("closed")
                .record(crate::Code::Unavailable, Instant::now());
        }
        let again = methods.get(&WITH_BREAKER).breaker.expect("breaker");
        assert!(Arc::ptr_eq(&breaker, &again));
        assert_eq!(again.state(), BreakerState::Open);
    }
}
