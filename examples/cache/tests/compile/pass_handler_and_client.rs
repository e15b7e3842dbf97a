//! A handler written as an `async fn`, served, and called through the typed client.
use herald::{Context, Error};
use herald_example_cache::accounts::accounts_client::AccountsClient;
use herald_example_cache::accounts::accounts_server::{Accounts, AccountsServer};
use herald_example_cache::accounts::{Account, AccountsError, GetByTokenRequest};

struct Directory;

impl Accounts for Directory {
    async fn get_by_token(&self, _ctx: &Context, request: GetByTokenRequest) -> Result<Account, Error<AccountsError>> {
        if request.token.is_empty() {
            return Err(Error::app(AccountsError::UnknownToken, "empty token"));
        }
        Ok(Account::default())
    }
}

async fn use_it(client: AccountsClient) -> Result<(), herald::Error<AccountsError>> {
    let _server = herald::Server::builder().insecure_plaintext().add_service(AccountsServer::new(Directory));
    let account = client.get_by_token(&Context::background(), GetByTokenRequest::default()).await?;
    let _: Account = account;
    Ok(())
}

fn main() {
    let _ = use_it;
}
