//! `herald demo`: the example services on loopback, and a walk through what herald does.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use herald::client::Channel;
use herald::server::RunningServer;
use herald::{Context, Server};
use herald_example_cache::accounts::accounts_client::AccountsClient;
use herald_example_cache::accounts::accounts_server::AccountsServer;
use herald_example_cache::cache::cache_client::CacheClient;
use herald_example_cache::cache::cache_server::CacheServer;
use herald_example_cache::cache::{DumpRequest, GetRequest, StoreRequest};
use herald_example_cache::{AccountsService, CacheService};

use crate::cli::DemoArgs;

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    println!("herald demo: the Cache and Accounts services from the \"gRPC in production\" talk\n");
    let accounts = serve(AccountsServer::new(AccountsService::demo())).await?;
    let accounts_client = AccountsClient::new(channel(&accounts)?);
    let cache = serve(CacheServer::new(CacheService::new(accounts_client))).await?;
    println!(
        "  Accounts listening on {} (plaintext: mutual TLS is not wired into the demo yet)",
        accounts.local_addr()
    );
    println!(
        "  Cache    listening on {}, calling Accounts with each request's context",
        cache.local_addr()
    );

    let client = CacheClient::new(channel(&cache)?);
    walk_through(&client, &accounts).await?;

    if args.serve {
        println!("\nServing until Ctrl-C.");
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
    }
    cache.shutdown().await;
    accounts.shutdown().await;
    println!("\nDone: both servers drained and stopped.");
    Ok(())
}

async fn walk_through(cache: &CacheClient, accounts: &RunningServer) -> anyhow::Result<()> {
    let ctx = Context::background();

    step("1. Store, Get and a streamed Dump, as bob");
    for (key, value) in [("greeting", "hello"), ("farewell", "goodbye")] {
        let stored = cache.store(&ctx, store("tok-bob", key, value)).await?;
        println!(
            "   Store {key:?} → bob now holds {} key(s)",
            stored.keys_used
        );
    }
    let got = cache
        .get(
            &ctx,
            GetRequest {
                key: "greeting".into(),
            },
        )
        .await?;
    println!(
        "   Get \"greeting\" → {:?}",
        String::from_utf8_lossy(&got.value)
    );
    let mut dump = cache.dump(&ctx, DumpRequest {}).await?;
    let mut keys = Vec::new();
    while let Some(item) = dump.message().await? {
        keys.push(item.key);
    }
    println!("   Dump streams {} entries: {keys:?}", keys.len());

    step("2. App errors travel typed, with their gRPC code");
    let missing = cache
        .get(
            &ctx,
            GetRequest {
                key: "nothing-here".into(),
            },
        )
        .await
        .err()
        .context("expected a failure: absent key")?;
    println!(
        "   Get \"nothing-here\" → {} with app error {:?}",
        missing.code(),
        missing.app()
    );
    for key in ["a", "b", "c", "d"] {
        match cache.store(&ctx, store("tok-alice", key, "x")).await {
            Ok(r) => println!("   alice stores {key:?} → {} of 3 keys", r.keys_used),
            Err(e) => println!(
                "   alice stores {key:?} → {} with app error {:?}: {}",
                e.code(),
                e.app(),
                e.message()
            ),
        }
    }

    step("3. A dry run travels with the context: same answer, no side effect");
    let dry = cache
        .store(&ctx.clone().with_dry_run(), store("tok-bob", "draft", "x"))
        .await?;
    let after = cache
        .get(
            &ctx,
            GetRequest {
                key: "draft".into(),
            },
        )
        .await;
    println!(
        "   Store \"draft\" with herald-dry-run → keys_used {} (dry_run: {}); Get \"draft\" afterwards → {}",
        dry.keys_used,
        dry.dry_run,
        after.map_or_else(|e| e.code().to_string(), |_| "found".into())
    );

    step("4. Deadlines propagate: 100 ms for a Store whose account lookup takes 250 ms");
    let start = Instant::now();
    let slow = cache
        .store(
            &ctx.clone().with_timeout(Duration::from_millis(100)),
            store("tok-slow", "k", "v"),
        )
        .await
        .err()
        .context("expected a failure: too slow")?;
    println!(
        "   Store as tok-slow → {} after {} ms: Accounts got Cache's remaining budget and was cut at it",
        slow.code(),
        start.elapsed().as_millis()
    );
    let spent = ctx.clone().with_timeout(Duration::from_millis(1));
    tokio::time::sleep(Duration::from_millis(2)).await;
    let local = cache
        .get(
            &spent,
            GetRequest {
                key: "greeting".into(),
            },
        )
        .await
        .err()
        .context("expected a failure: spent")?;
    println!(
        "   A call whose budget is already spent → {} without being sent (local: {})",
        local.code(),
        local.is_local()
    );

    step("5. A downstream error returned unmapped becomes UNKNOWN at the API boundary");
    let suspended = cache
        .store(&ctx, store("tok-mallory", "k", "v"))
        .await
        .err()
        .context("expected a failure: suspended")?;
    println!(
        "   Store as mallory (suspended in Accounts) → {}: {}",
        suspended.code(),
        suspended.message()
    );
    let invalid = cache
        .store(&ctx, store("tok-nobody", "k", "v"))
        .await
        .err()
        .context("expected a failure: unknown token")?;
    println!(
        "   Store with an unknown token (mapped on purpose) → {} with app error {:?}",
        invalid.code(),
        invalid.app()
    );

    step("Server counters");
    let stats = accounts.stats();
    println!(
        "   Accounts: {} handler(s) cut at their deadline, {} request(s) expired on arrival, {} panic(s)",
        stats.deadline_exceeded_in_handler(),
        stats.expired_on_arrival(),
        stats.panics()
    );
    Ok(())
}

fn step(title: &str) {
    println!("\n{title}");
}

fn store(token: &str, key: &str, value: &str) -> StoreRequest {
    StoreRequest {
        account_token: token.into(),
        key: key.into(),
        value: value.as_bytes().to_vec(),
    }
}

async fn serve(service: impl herald::server::IntoService) -> anyhow::Result<RunningServer> {
    Server::builder()
        .insecure_plaintext()
        .add_service(service)
        .bind("127.0.0.1:0")
        .await
        .context("starting a demo service on 127.0.0.1")
}

fn channel(server: &RunningServer) -> anyhow::Result<Channel> {
    Ok(Channel::insecure_plaintext(server.local_addr())?)
}
