//! Handlers take the request's context explicitly.
use herald::Error;
use herald_example_cache::accounts::accounts_server::Accounts;
use herald_example_cache::accounts::{Account, AccountsError, GetByTokenRequest};

struct Directory;

impl Accounts for Directory {
    async fn get_by_token(&self, _request: GetByTokenRequest) -> Result<Account, Error<AccountsError>> {
        Ok(Account::default())
    }
}

fn main() {}
