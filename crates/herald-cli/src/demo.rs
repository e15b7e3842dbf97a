//! `herald demo`: the example services on loopback, and a walk through what herald does.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use herald::client::Channel;
use herald::limits::Limits;
use herald::server::RunningServer;
use herald::tls::{ClientTls, DevCa, KeyAlgorithm, ServerTls, TlsFiles, TrustDomain};
use herald::{Context, Server};
use herald_example_cache::accounts::GetByTokenRequest;
use herald_example_cache::accounts::accounts_client::AccountsClient;
use herald_example_cache::accounts::accounts_server::AccountsServer;
use herald_example_cache::cache::cache_client::CacheClient;
use herald_example_cache::cache::cache_server::CacheServer;
use herald_example_cache::cache::{DumpRequest, GetRequest, StoreRequest};
use herald_example_cache::{AccountsService, CacheService};

use crate::certs;
use crate::cli::DemoArgs;

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    println!("herald demo: the Cache and Accounts services from the \"gRPC in production\" talk\n");
    let dir = &args.state_dir;
    let ca = certs::init_ca(dir, "herald.local", KeyAlgorithm::EcdsaP256, true)?;
    for identity in [
        "accounts",
        "cache",
        "user.demo",
        "user.batch",
        "user.intruder",
    ] {
        certs::issue_files(&ca, dir, identity, KeyAlgorithm::EcdsaP256)?;
    }
    let td = ca.trust_domain().clone();
    println!(
        "  A development CA for trust domain {td} and certificates for accounts, cache and user.demo in {}",
        dir.display()
    );

    let accounts_limits = dir.join("accounts-limits.yaml");
    let cache_limits = dir.join("cache-limits.yaml");
    std::fs::write(&accounts_limits, ACCOUNTS_LIMITS)?;
    std::fs::write(&cache_limits, CACHE_LIMITS)?;
    println!(
        "  Limits files (ACLs, rates, admission; reloaded live): {} and {}",
        accounts_limits.display(),
        cache_limits.display()
    );

    let accounts_tls = ServerTls::from_files(TlsFiles::in_dir(dir, "accounts"), td.clone())?;
    let accounts = serve(
        accounts_tls,
        &accounts_limits,
        AccountsServer::new(AccountsService::demo()),
        false,
    )
    .await?;
    // Cache is a client of Accounts with its own identity, and accepts only Accounts there.
    let as_cache = ClientTls::from_files(TlsFiles::in_dir(dir, "cache"), td.clone())?;
    let accounts_client =
        AccountsClient::new(Channel::tls(accounts.local_addr(), &as_cache, "accounts")?);
    let cache_tls = ServerTls::from_files(TlsFiles::in_dir(dir, "cache"), td.clone())?;
    let cache = serve(
        cache_tls,
        &cache_limits,
        CacheServer::new(CacheService::new(accounts_client)),
        true,
    )
    .await?;
    println!(
        "  Accounts listening on {} (mutual TLS, identity \"accounts\")",
        accounts.local_addr()
    );
    println!(
        "  Cache    listening on {} (mutual TLS, identity \"cache\"), calling Accounts as \"cache\"",
        cache.local_addr()
    );

    let me = ClientTls::from_files(TlsFiles::in_dir(dir, "user.demo"), td.clone())?;
    let client = CacheClient::new(Channel::tls(cache.local_addr(), &me, "cache")?);
    walk_through(&client, &cache, &me, &ca).await?;
    limits_walk_through(dir, &cache, &cache_limits, &td).await?;
    bridge_walk_through(&cache, &me).await?;
    print_counters(&accounts, &cache);

    if args.serve {
        let described = describe(dir, &accounts, &cache)?;
        let path = dir.join("demo.json");
        std::fs::write(&path, described)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!(
            "\nServing until Ctrl-C or SIGTERM; addresses and client certificate paths are in {}.",
            path.display()
        );
        herald::server::termination_signal()
            .await
            .context("waiting for a termination signal")?;
        println!("\nStopping: health NOT_SERVING, GOAWAY, calls in flight finish (grace 30 s).");
    }
    // Cache first: the calls it is finishing may still need Accounts.
    cache.drain(Duration::from_millis(100)).await;
    accounts.drain(Duration::ZERO).await;
    println!("\nDone: both servers drained and stopped.");
    Ok(())
}

/// `demo.json`: what another tool needs to call the running demo.
fn describe(dir: &Path, accounts: &RunningServer, cache: &RunningServer) -> anyhow::Result<String> {
    let dir = std::path::absolute(dir)?;
    let path = |name: &str| dir.join(name).display().to_string();
    let json = serde_json::json!({
        "trust_domain": "herald.local",
        "services": {
            "accounts": { "address": accounts.local_addr().to_string(), "identity": "accounts" },
            "cache": {
                "address": cache.local_addr().to_string(),
                "identity": "cache",
                "legacy_bridge": cache.bridge_addr().map(|a| a.to_string()),
            },
        },
        "client": { "identity": "user.demo", "cert": path("user.demo.pem"), "key": path("user.demo.key"), "ca": path("ca.pem") },
    });
    Ok(serde_json::to_string_pretty(&json)?)
}

async fn walk_through(
    cache: &CacheClient,
    cache_server: &RunningServer,
    me: &ClientTls,
    ca: &DevCa,
) -> anyhow::Result<()> {
    let ctx = Context::background();

    step("0. Mutual TLS: both sides prove who they are");
    let stranger_ca = DevCa::generate(ca.trust_domain().clone(), KeyAlgorithm::EcdsaP256)?;
    let forged = stranger_ca.issue("user.demo", KeyAlgorithm::EcdsaP256)?;
    let stranger = ClientTls::from_pem(
        &forged.cert_pem,
        &forged.key_pem,
        ca.cert_pem(),
        ca.trust_domain().clone(),
    )?;
    let refused = CacheClient::new(Channel::tls(cache_server.local_addr(), &stranger, "cache")?)
        .get(
            &ctx,
            GetRequest {
                key: "greeting".into(),
            },
        )
        .await
        .err()
        .context("expected a failure: certificate from another CA")?;
    println!(
        "   A caller whose certificate comes from another CA → {}: {}",
        refused.code(),
        refused.message()
    );
    let confused = AccountsClient::new(Channel::tls(cache_server.local_addr(), me, "accounts")?)
        .get_by_token(
            &ctx,
            GetByTokenRequest {
                token: "tok-bob".into(),
            },
        )
        .await
        .err()
        .context("expected a failure: wrong server identity")?;
    println!(
        "   A client that means to call accounts but reaches cache → {}: {}",
        confused.code(),
        confused.message()
    );

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

    Ok(())
}

/// The limits in action: an ACL refusal, a rate limit, and a live reload.
async fn limits_walk_through(
    dir: &Path,
    cache: &RunningServer,
    limits: &Path,
    td: &TrustDomain,
) -> anyhow::Result<()> {
    let ctx = Context::background();
    let as_identity = |identity: &str| -> anyhow::Result<CacheClient> {
        let tls = ClientTls::from_files(TlsFiles::in_dir(dir, identity), td.clone())?;
        Ok(CacheClient::new(Channel::tls(
            cache.local_addr(),
            &tls,
            "cache",
        )?))
    };
    let get = GetRequest {
        key: "greeting".into(),
    };

    step("6. ACLs: the caller's identity decides, before the request is decoded");
    let intruder = as_identity("user.intruder")?;
    let denied = intruder
        .get(&ctx, get.clone())
        .await
        .err()
        .context("expected a failure: not in the ACL")?;
    println!(
        "   user.intruder (valid certificate, named nowhere in the ACL) → {}: {}",
        denied.code(),
        denied.message()
    );

    step("7. Rate limits per caller: user.batch may make 5 calls a second");
    let batch = as_identity("user.batch")?;
    let (mut ok, mut limited, mut pushback) = (0, 0, String::new());
    for _ in 0..10 {
        match batch.get(&ctx, get.clone()).await {
            Ok(_) => ok += 1,
            Err(e) if e.code() == herald::Code::ResourceExhausted => {
                limited += 1;
                pushback = e.message().to_owned();
            }
            Err(e) => return Err(e.into()),
        }
    }
    println!(
        "   10 calls at once → {ok} served, {limited} RESOURCE_EXHAUSTED (\"{pushback}\", with grpc-retry-pushback-ms)"
    );

    step("8. A live reload: the limits file changes, the server follows within a second");
    std::fs::write(
        limits,
        CACHE_LIMITS.replace("user.batch: 5", "user.batch: -1\n        user.intruder: -1"),
    )?;
    let reloaded = wait_for_reload(cache, 1).await;
    let allowed = intruder.get(&ctx, get.clone()).await;
    println!(
        "   cache-limits.yaml now lets user.intruder in → reload applied: {reloaded}; user.intruder's Get → {}",
        allowed.map_or_else(|e| e.code().to_string(), |_| "OK".into())
    );
    std::fs::write(
        limits,
        "limits:\n  cache.Cache:\n    default:\n      max_concurency: 3\n",
    )?;
    wait_for_failed_reload(cache, 1).await;
    let status = cache.limits_status();
    println!(
        "   A broken file (a typo) → refused, the previous limits stay: {}",
        status.last_error.unwrap_or_default()
    );
    let still = intruder.get(&ctx, get).await;
    println!(
        "   user.intruder's Get after the bad edit → {}",
        still.map_or_else(|e| e.code().to_string(), |_| "OK".into())
    );
    Ok(())
}

async fn wait_for_reload(server: &RunningServer, reloads: u64) -> bool {
    for _ in 0..40 {
        if server.limits_status().reloads >= reloads {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn wait_for_failed_reload(server: &RunningServer, failures: u64) {
    for _ in 0..40 {
        if server.limits_status().failures >= failures {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn print_counters(accounts: &RunningServer, cache_server: &RunningServer) {
    step("Server counters");
    for (name, server) in [("Accounts", accounts), ("Cache", cache_server)] {
        let stats = server.stats();
        let handshakes = stats.handshakes();
        println!(
            "   {name}: TLS handshakes {} full, {} resumed, {} refused; {} handler(s) cut at their deadline, {} expired on arrival, {} panic(s)",
            handshakes.full(),
            handshakes.resumed(),
            handshakes.failed(),
            stats.deadline_exceeded_in_handler(),
            stats.expired_on_arrival(),
            stats.panics()
        );
    }
}

/// Accounts lets Cache in, and nobody else.
const ACCOUNTS_LIMITS: &str = "\
limits:
  accounts.Accounts:
    default:
      max_concurrency: 64
      queue_timeout_ms: 200
      rate_acls:
        cache: -1
";

/// Cache: the demo user unlimited, a batch user rate-limited, every other identity denied.
const CACHE_LIMITS: &str = "\
limits:
  cache.Cache:
    default:
      max_concurrency: 32
      queue_timeout_ms: 500
      queue: lifo
      rate_acls:
        user.demo: -1
        user.batch: 5
        authenticated: 0
        unauthenticated: 0
    methods:
      Dump: { max_concurrency: 2 }
";

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

async fn serve(
    tls: ServerTls,
    limits: &Path,
    service: impl herald::server::IntoService,
    bridge: bool,
) -> anyhow::Result<RunningServer> {
    let mut builder = Server::builder()
        .tls(tls)
        .limits(Limits::from_file(limits)?);
    if bridge {
        builder = builder.legacy_bridge(([127, 0, 0, 1], 0).into());
    }
    builder
        .add_service(service)
        .bind("127.0.0.1:0")
        .await
        .context("starting a demo service on 127.0.0.1")
}

/// Courier's migration path: the legacy bridge serves the same handler; a client moves
/// between it and gRPC by changing one line.
async fn bridge_walk_through(cache: &RunningServer, me: &ClientTls) -> anyhow::Result<()> {
    let Some(bridge) = cache.bridge_addr() else {
        return Ok(());
    };
    step("9. Migration: the legacy HTTP/1.1 bridge serves the same handler, one line apart");
    let request = GetRequest {
        key: "greeting".into(),
    };
    let ctx = Context::background();
    let over_grpc = CacheClient::new(Channel::tls(cache.local_addr(), me, "cache")?)
        .get(&ctx, request.clone())
        .await?;
    let over_bridge = CacheClient::new(Channel::legacy_bridge(bridge, me, "cache")?)
        .get(&ctx, request)
        .await?;
    println!(
        "   Channel::tls(..)           → Get \"greeting\" = {:?}",
        String::from_utf8_lossy(&over_grpc.value)
    );
    println!(
        "   Channel::legacy_bridge(..) → Get \"greeting\" = {:?} (POST /cache.Cache/Get on {bridge}, HTTP/1.1)",
        String::from_utf8_lossy(&over_bridge.value)
    );
    println!(
        "   Legacy calls are counted apart (herald_bridge_requests), so their end can be proven."
    );
    Ok(())
}
