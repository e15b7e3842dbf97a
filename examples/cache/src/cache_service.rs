//! Cache: entries owned by accounts, each account limited in how many keys it holds.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use futures_util::StreamExt;
use herald::{BoxStream, Context, Error, RequestStream};

use crate::accounts::accounts_client::AccountsClient;
use crate::accounts::{AccountsError, GetByTokenRequest};
use crate::cache::cache_server::Cache;
use crate::cache::{
    CacheError, DumpItem, DumpRequest, GetRequest, GetResponse, StoreManyResponse, StoreRequest,
    StoreResponse,
};

/// An in-memory cache that asks Accounts who is storing.
#[derive(Debug, Clone)]
pub struct CacheService {
    accounts: AccountsClient,
    entries: Arc<RwLock<BTreeMap<String, Entry>>>,
}

#[derive(Debug, Clone)]
struct Entry {
    owner: String,
    value: Vec<u8>,
}

impl CacheService {
    /// An empty cache checking stores with `accounts`.
    pub fn new(accounts: AccountsClient) -> Self {
        CacheService {
            accounts,
            entries: Arc::default(),
        }
    }

    /// Stores one entry for the account owning the request's token.
    async fn store_one(
        &self,
        ctx: &Context,
        request: StoreRequest,
    ) -> Result<StoreResponse, Error<CacheError>> {
        if request.key.is_empty() {
            return Err(Error::invalid_argument("key must not be empty"));
        }
        let lookup = GetByTokenRequest {
            token: request.account_token,
        };
        let account = match self.accounts.get_by_token(ctx, lookup).await {
            Ok(account) => account,
            // Mapped on purpose: an unknown token is this service's InvalidToken.
            Err(e) if e.app() == Some(AccountsError::UnknownToken) => {
                return Err(Error::app(
                    CacheError::InvalidToken,
                    "the account token is not valid",
                ));
            }
            // Out of time is out of time, whoever noticed first: passed on deliberately.
            Err(e) if e.is_deadline_exceeded() => return Err(Error::propagate(e)),
            // Anything else from Accounts is not Cache's to explain: returned as-is, the
            // caller sees UNKNOWN (Courier's rule at the API boundary).
            Err(e) => return Err(e.into()),
        };

        let mut entries = self.entries.write().expect("cache lock poisoned");
        let owned = entries.values().filter(|e| e.owner == account.id).count() as u32;
        let is_new = match entries.get(&request.key) {
            None => true,
            Some(existing) if existing.owner == account.id => false,
            Some(_) => {
                return Err(Error::new(
                    herald::Code::AlreadyExists,
                    "the key belongs to another account",
                ));
            }
        };
        let keys_used = owned + u32::from(is_new);
        if keys_used > account.max_cache_keys {
            return Err(Error::app(
                CacheError::KeyLimitExceeded,
                format!(
                    "account {} may hold {} keys",
                    account.id, account.max_cache_keys
                ),
            ));
        }
        if ctx.is_dry_run() {
            return Ok(StoreResponse {
                keys_used,
                dry_run: true,
            });
        }
        entries.insert(
            request.key,
            Entry {
                owner: account.id,
                value: request.value,
            },
        );
        Ok(StoreResponse {
            keys_used,
            dry_run: false,
        })
    }

    fn get_one(&self, request: GetRequest) -> Result<GetResponse, Error<CacheError>> {
        let entries = self.entries.read().expect("cache lock poisoned");
        match entries.get(&request.key) {
            Some(entry) => Ok(GetResponse {
                key: request.key,
                value: entry.value.clone(),
            }),
            None => Err(Error::app(
                CacheError::NotFound,
                format!("no entry for key {:?}", request.key),
            )),
        }
    }
}

impl Cache for CacheService {
    async fn store(
        &self,
        ctx: &Context,
        request: StoreRequest,
    ) -> Result<StoreResponse, Error<CacheError>> {
        self.store_one(ctx, request).await
    }

    async fn get(
        &self,
        _ctx: &Context,
        request: GetRequest,
    ) -> Result<GetResponse, Error<CacheError>> {
        self.get_one(request)
    }

    type DumpStream = BoxStream<DumpItem, CacheError>;

    async fn dump(
        &self,
        _ctx: &Context,
        _request: DumpRequest,
    ) -> Result<Self::DumpStream, Error<CacheError>> {
        let snapshot: Vec<_> = self
            .entries
            .read()
            .expect("cache lock poisoned")
            .iter()
            .map(|(key, entry)| {
                Ok(DumpItem {
                    key: key.clone(),
                    value: entry.value.clone(),
                })
            })
            .collect();
        Ok(futures_util::stream::iter(snapshot).boxed())
    }

    async fn store_many(
        &self,
        ctx: &Context,
        mut requests: RequestStream<StoreRequest>,
    ) -> Result<StoreManyResponse, Error<CacheError>> {
        let mut stored = 0;
        while let Some(request) = requests.message().await? {
            self.store_one(ctx, request).await?;
            stored += 1;
        }
        Ok(StoreManyResponse { stored })
    }

    type GetManyStream = BoxStream<GetResponse, CacheError>;

    async fn get_many(
        &self,
        _ctx: &Context,
        requests: RequestStream<GetRequest>,
    ) -> Result<Self::GetManyStream, Error<CacheError>> {
        let this = self.clone();
        Ok(requests
            .map(move |request| match request {
                Ok(request) => this.get_one(request),
                Err(broken) => Err(broken.into()),
            })
            .boxed())
    }
}
