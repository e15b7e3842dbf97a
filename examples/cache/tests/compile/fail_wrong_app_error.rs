//! A handler must return its own service's app error, not another service's.
use herald::{Context, Error};
use herald_example_cache::accounts::accounts_server::Accounts;
use herald_example_cache::accounts::{Account, GetByTokenRequest};
use herald_example_cache::cache::CacheError;

struct Directory;

impl Accounts for Directory {
    async fn get_by_token(&self, _ctx: &Context, _request: GetByTokenRequest) -> Result<Account, Error<CacheError>> {
        Err(Error::app(CacheError::NotFound, "wrong enum"))
    }
}

fn main() {}
