//! Accounts: token → account, with each account's key limit.

use std::collections::HashMap;
use std::time::Duration;

use herald::{Context, Error};

use crate::accounts::accounts_server::Accounts;
use crate::accounts::{Account, AccountsError, GetByTokenRequest};

/// An in-memory accounts directory.
#[derive(Debug, Default)]
pub struct AccountsService {
    by_token: HashMap<String, (Account, bool)>,
    latency: HashMap<String, Duration>,
}

impl AccountsService {
    /// The demo's accounts: `tok-alice` (3 keys), `tok-bob` (100 keys), `tok-mallory`
    /// (suspended) and `tok-slow`, whose lookups take 250 ms (to show deadlines at work).
    pub fn demo() -> Self {
        AccountsService::default()
            .with_account("tok-alice", "alice", 3)
            .with_account("tok-bob", "bob", 100)
            .with_suspended("tok-mallory", "mallory")
            .with_account("tok-slow", "slow", 100)
            .with_latency("tok-slow", Duration::from_millis(250))
    }

    /// Makes lookups of `token` take `latency`.
    #[must_use]
    pub fn with_latency(mut self, token: &str, latency: Duration) -> Self {
        self.latency.insert(token.to_owned(), latency);
        self
    }

    /// Adds an account owning `token`, allowed `max_cache_keys` keys.
    #[must_use]
    pub fn with_account(mut self, token: &str, name: &str, max_cache_keys: u32) -> Self {
        let account = Account {
            id: format!("acct-{name}"),
            name: name.to_owned(),
            max_cache_keys,
        };
        self.by_token.insert(token.to_owned(), (account, false));
        self
    }

    /// Adds a suspended account owning `token`.
    #[must_use]
    pub fn with_suspended(mut self, token: &str, name: &str) -> Self {
        let account = Account {
            id: format!("acct-{name}"),
            name: name.to_owned(),
            max_cache_keys: 0,
        };
        self.by_token.insert(token.to_owned(), (account, true));
        self
    }
}

impl Accounts for AccountsService {
    async fn get_by_token(
        &self,
        _ctx: &Context,
        request: GetByTokenRequest,
    ) -> Result<Account, Error<AccountsError>> {
        if let Some(latency) = self.latency.get(&request.token) {
            tokio::time::sleep(*latency).await;
        }
        match self.by_token.get(&request.token) {
            None => Err(Error::app(
                AccountsError::UnknownToken,
                "no account owns this token",
            )),
            Some((account, true)) => Err(Error::app(
                AccountsError::Suspended,
                format!("account {} is suspended", account.id),
            )),
            Some((account, false)) => Ok(account.clone()),
        }
    }
}
