//! `herald graph ADMIN...`: who calls whom, from each service's `/deps`, as DOT and SVG.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use crate::cli::GraphArgs;

pub(crate) async fn run(args: GraphArgs) -> anyhow::Result<()> {
    let mut all = Vec::new();
    for admin in &args.admins {
        all.push(
            fetch_deps(admin)
                .await
                .with_context(|| format!("reading {admin}/deps"))?,
        );
    }
    // A called service is drawn as the node that serves it, when one of the endpoints does.
    let node_of: BTreeMap<String, String> = all
        .iter()
        .flat_map(|deps| {
            let node = name(deps);
            deps["serves"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str())
                .map(move |s| (s.to_owned(), node.clone()))
        })
        .collect();
    // (from, to) → calls; the callee's own count (its callers) wins over the caller's.
    let mut edges: BTreeMap<(String, String), u64> = BTreeMap::new();
    for deps in &all {
        let node = name(deps);
        for caller in deps["callers"].as_array().into_iter().flatten() {
            let calls: u64 = caller["methods"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(_, n)| n.as_u64())
                .sum();
            let from = caller["identity"].as_str().unwrap_or("unknown").to_owned();
            edges.insert((from, node.clone()), calls);
        }
    }
    for deps in &all {
        let node = name(deps);
        for callee in deps["callees"].as_array().into_iter().flatten() {
            let service = callee["service"].as_str().unwrap_or("unknown");
            let to = node_of
                .get(service)
                .cloned()
                .unwrap_or_else(|| service.to_owned());
            edges
                .entry((node.clone(), to))
                .or_insert(callee["calls"].as_u64().unwrap_or(0));
        }
    }
    let dot = to_dot(&edges);
    let dot_path = args.out.with_extension("dot");
    let svg_path = args.out.with_extension("svg");
    write(&dot_path, dot.as_bytes())?;
    write(&svg_path, to_svg(&dot)?.as_bytes())?;
    println!(
        "{} edge(s) between {} service(s): {} and {}",
        edges.len(),
        edges
            .keys()
            .flat_map(|(a, b)| [a, b])
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        dot_path.display(),
        svg_path.display()
    );
    Ok(())
}

/// A service's node name: its identity, else the first service it serves.
fn name(deps: &serde_json::Value) -> String {
    deps["identity"]
        .as_str()
        .or_else(|| deps["serves"][0].as_str())
        .unwrap_or("unknown")
        .to_owned()
}

fn to_dot(edges: &BTreeMap<(String, String), u64>) -> String {
    let mut dot = String::from("digraph herald {\n  rankdir=LR;\n  node [shape=box];\n");
    for ((from, to), calls) in edges {
        dot.push_str(&format!(
            "  \"{}\" -> \"{}\" [label=\"{calls} calls\"];\n",
            escape(from),
            escape(to)
        ));
    }
    dot.push_str("}\n");
    dot
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Lays the graph out and draws it, in pure Rust (no Graphviz needed).
fn to_svg(dot: &str) -> anyhow::Result<String> {
    use layout::backends::svg::SVGWriter;
    use layout::gv::{DotParser, GraphBuilder};
    let graph = DotParser::new(dot)
        .process()
        .map_err(|e| anyhow::anyhow!("cannot lay out the graph: {e}"))?;
    let mut builder = GraphBuilder::new();
    builder.visit_graph(&graph);
    let mut visual = builder.get();
    let mut svg = SVGWriter::new();
    visual.do_it(false, false, false, &mut svg);
    Ok(svg.finalize())
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// GET `{admin}/deps` over HTTP/1.1, on TCP (`http://host:port`) or a Unix socket (`unix:PATH`).
async fn fetch_deps(admin: &str) -> anyhow::Result<serde_json::Value> {
    let body = if let Some(path) = admin.strip_prefix("unix:") {
        let stream = tokio::net::UnixStream::connect(path)
            .await
            .with_context(|| format!("cannot connect to {path}"))?;
        get(TokioIo::new(stream), "/deps").await?
    } else {
        let authority = admin
            .strip_prefix("http://")
            .unwrap_or(admin)
            .trim_end_matches('/');
        if authority.contains('/') || authority.starts_with("https:") {
            bail!("expected http://HOST:PORT or unix:PATH, got {admin}");
        }
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .with_context(|| format!("cannot connect to {authority}"))?;
        get(TokioIo::new(stream), "/deps").await?
    };
    serde_json::from_slice(&body)
        .context("the answer is not JSON: is this a herald admin endpoint?")
}

async fn get<I>(io: I, path: &str) -> anyhow::Result<Bytes>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header("host", "admin")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        bail!("answered {}", response.status());
    }
    Ok(response.into_body().collect().await?.to_bytes())
}
