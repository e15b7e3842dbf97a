// The browser side of the gRPC-Web test: calls the Cache example through connect-web's
// gRPC-Web transport (fetch, binary protobuf), with the message and service types built at run
// time from the Cache contract's FileDescriptorSet (no protoc, no generated code).
//
// Configuration, from the query string, else from the fragment (#server=...&descriptors=...:
// never sent to the page's server, so no URL length limit of its own; the Cache descriptors are
// ~28 KB in base64, more than Node's HTTP server takes in a request line), else from a JSON
// (default `config.json`, next to the page; `?config=URL` to name another):
//   server       the gRPC-Web base URL, e.g. http://127.0.0.1:40167
//   descriptors  the encoded FileDescriptorSet, base64 (standard or URL-safe alphabet)
//
// Checks: Get("greeting") answers "hello"; Get("nope") fails with NotFound (and the app error
// cache.CacheError/CACHE_ERROR_NOT_FOUND in its details); Dump streams at least greeting and
// farewell, in key order. The result, {ok, checks: [{name, ok, detail}], ...}, ends up in
// <pre id="result"> and on window.__result (set last, whatever happens: the driver waits for it;
// until then window.__partial holds the checks done so far).

import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

const CALL_TIMEOUT_MS = 5000;

async function loadConfig() {
  const query = new URLSearchParams(location.search);
  for (const params of [query, new URLSearchParams(location.hash.slice(1))]) {
    if (params.has("server") && params.has("descriptors")) {
      return { server: params.get("server"), descriptors: params.get("descriptors") };
    }
  }
  const url = query.get("config") ?? "config.json";
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) {
    throw new Error(`fetching ${url}: HTTP ${response.status}`);
  }
  return await response.json();
}

function base64Decode(text) {
  const standard = text.replace(/-/g, "+").replace(/_/g, "/").replace(/\s+/g, "");
  const binary = atob(standard);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) {
    bytes[i] = binary.charCodeAt(i);
  }
  return bytes;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

// google.rpc.ErrorInfo {string reason = 1; string domain = 2; map<string,string> metadata = 3},
// read with the wire-format reader: its schema is not in the Cache contract.
function decodeErrorInfo(bytes) {
  const reader = new BinaryReader(bytes);
  const info = { reason: "", domain: "" };
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) {
      info.reason = reader.string();
    } else if (field === 2 && wireType === WireType.LengthDelimited) {
      info.domain = reader.string();
    } else {
      reader.skip(wireType);
    }
  }
  return info;
}

function describeError(err) {
  const e = ConnectError.from(err);
  return {
    code: Code[e.code] ?? e.code,
    rawMessage: e.rawMessage,
    details: e.details.map((d) => ("type" in d ? d.type : d.desc.typeName)),
  };
}

async function run(result) {
  const check = (name, ok, detail) => {
    result.checks.push({ name, ok: Boolean(ok), detail });
    return ok;
  };

  const config = await loadConfig();
  result.server = config.server;

  const set = fromBinary(FileDescriptorSetSchema, base64Decode(config.descriptors));
  const registry = createFileRegistry(set);
  const service = registry.getService("cache.Cache");
  if (!check("descriptors define cache.Cache", service !== undefined, {
    files: set.file.map((f) => f.name),
  })) {
    return;
  }
  result.methods = service.methods.map((m) => `${m.name} (${m.methodKind})`);

  const transport = createGrpcWebTransport({ baseUrl: config.server });
  const client = createClient(service, transport);

  // Unary, success.
  try {
    let header;
    const response = await client.get(
      { key: "greeting" },
      { timeoutMs: CALL_TIMEOUT_MS, onHeader: (h) => (header = h) },
    );
    const value = utf8.decode(response.value);
    check("Get(greeting) == hello", response.key === "greeting" && value === "hello", {
      key: response.key,
      value,
      contentType: header?.get("content-type") ?? null,
    });
  } catch (err) {
    check("Get(greeting) == hello", false, { error: describeError(err) });
  }

  // Unary, app error. The server answers it trailers-only: grpc-status, grpc-message and
  // grpc-status-details-bin are HTTP headers of an empty body, which the page can read only
  // because the server lists them in Access-Control-Expose-Headers (without it: "missing
  // trailer", code Unknown).
  try {
    const response = await client.get({ key: "nope" }, { timeoutMs: CALL_TIMEOUT_MS });
    check("Get(nope) fails with NotFound", false, {
      unexpectedResponse: { key: response.key, value: utf8.decode(response.value) },
    });
  } catch (err) {
    const e = ConnectError.from(err);
    const described = describeError(e);
    check("Get(nope) fails with NotFound", e.code === Code.NotFound, described);
    const infos = e.details
      .filter((d) => "type" in d && d.type === "google.rpc.ErrorInfo")
      .map((d) => decodeErrorInfo(d.value));
    check(
      "Get(nope) carries the app error cache.CacheError/CACHE_ERROR_NOT_FOUND",
      infos.some((i) => i.domain === "cache.CacheError" && i.reason === "CACHE_ERROR_NOT_FOUND"),
      { errorInfos: infos },
    );
  }

  // Server streaming.
  try {
    const items = [];
    for await (const item of client.dump({}, { timeoutMs: CALL_TIMEOUT_MS })) {
      items.push({ key: item.key, value: utf8.decode(item.value) });
    }
    const keys = items.map((i) => i.key);
    const sorted = [...keys].sort();
    const byKey = Object.fromEntries(items.map((i) => [i.key, i.value]));
    check(
      "Dump streams greeting and farewell, in key order",
      byKey.greeting === "hello" &&
        byKey.farewell === "goodbye" &&
        keys.every((k, i) => k === sorted[i]) &&
        new Set(keys).size === keys.length,
      { items },
    );
  } catch (err) {
    check("Dump streams greeting and farewell, in key order", false, {
      error: describeError(err),
    });
  }
}

async function main() {
  const result = { ok: false, checks: [], userAgent: navigator.userAgent };
  window.__partial = result; // what the driver shows if the page never finishes
  try {
    await run(result);
  } catch (err) {
    result.error = String(err?.stack ?? err);
  }
  result.ok = result.error === undefined && result.checks.length > 0 &&
    result.checks.every((c) => c.ok);
  document.getElementById("result").textContent = JSON.stringify(result, null, 2);
  document.title = result.ok ? "PASS" : "FAIL";
  window.__result = result;
}

main();
