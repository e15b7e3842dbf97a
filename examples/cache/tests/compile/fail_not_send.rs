//! A handler's future must be Send: holding a non-Send value across an await is refused.
use std::rc::Rc;

use herald::{Context, Error};
use herald_example_cache::accounts::accounts_server::Accounts;
use herald_example_cache::accounts::{Account, AccountsError, GetByTokenRequest};

struct Directory;

impl Accounts for Directory {
    async fn get_by_token(&self, _ctx: &Context, _request: GetByTokenRequest) -> Result<Account, Error<AccountsError>> {
        let not_send = Rc::new(1);
        tokio::task::yield_now().await;
        let _ = not_send;
        Ok(Account::default())
    }
}

fn main() {}
