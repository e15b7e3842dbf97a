#!/usr/bin/env node
'use strict';
/*
The @grpc/grpc-js interop client for herald: gRPC's interop test cases, on grpc-js (pure
JavaScript, Node's http2), against a grpc.testing.TestService server. interop/python/client.py's
twin: same options, same output, same cases with the same expectations (client.py SKIPs
client_compressed_streaming; grpc-js can express it, so here it runs).

    client.js --port N [--cases all | a,b,c]                   # plaintext
    client.js --port N --tls --cert C --key K --ca CA [--server-name localhost]
    client.js --port N --soak 1000                             # 1000 large_unary calls

Prints one line per case, "PASS name", "FAIL name: reason" or "SKIP name: reason" (a case
grpc-js cannot express; never counted as passed), then "N passed, M failed[, K skipped]".
With --soak the calls are counted instead: a FAIL line per failed call (the first 20), then
"N passed, M failed". Exit code 0 only when nothing failed. Every call has a deadline
(--timeout, 10 s by default), so every case ends.

Compression in grpc-js is a channel option (grpc.default_compression_algorithm), not a call
option: a call that must compress goes on a channel of its own to the same server, which gzips
every message except the writes flagged NoCompress. Of its own, because a grpc-js channel stops
compressing once a response carried a grpc-accept-encoding it misreads: it splits the header at
"," without trimming, so gRPC's C core's "identity, deflate, gzip" reads as lacking "gzip", and
every later call of that channel goes uncompressed. Whether a response came compressed is seen
as common.js describes (installCompressionProbe).
*/

const {
  grpc,
  methods,
  TEST_SERVICE,
  UNIMPLEMENTED_SERVICE,
  COMPRESSABLE,
  ECHO_INITIAL,
  ECHO_TRAILING,
  NO_COMPRESS,
  COMMON_OPTIONS,
  installCompressionProbe,
  decoder,
  readFile,
  zeros,
  pyRepr,
  pyTuple,
  codeName,
  parseArgs,
} = require('./common');

const Code = grpc.status;

/** The case failed; the message says why. */
class Failure extends Error {}

/** grpc-js cannot express the case; the message says why. */
class Skipped extends Error {}

function check(condition, reason) {
  if (!condition) throw new Failure(reason);
}

/** An RPC that ended with a status other than OK, as grpc-js reports it (a ServiceError). */
function isRpcError(e) {
  return e instanceof Error && typeof e.code === 'number' && 'details' in e && 'metadata' in e;
}

/** A method of the server: its path and how its messages are (de)serialized. Responses
 * come back as {message, compressed} (common.js decoder). */
function method(service, name) {
  const m = methods(service)[name];
  return { path: m.path, serialize: m.requestSerialize, deserialize: decoder(m.responseDeserialize) };
}

/** The response stream of a call, read one message at a time: next() resolves with the next
 * response, or null once the stream ended, and rejects with the call's error. */
class Responses {
  constructor(call) {
    this.queue = [];
    this.waiting = null;
    this.ended = false;
    this.error = null;
    call.on('data', (m) => {
      this.queue.push(m);
      this.wake();
    });
    call.on('end', () => {
      this.ended = true;
      this.wake();
    });
    call.on('error', (e) => {
      this.error = e;
      this.wake();
    });
  }

  wake() {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w();
    }
  }

  async next() {
    for (;;) {
      if (this.queue.length) return this.queue.shift();
      if (this.error) throw this.error;
      if (this.ended) return null;
      await new Promise((resolve) => {
        this.waiting = resolve;
      });
    }
  }

  /** All the remaining responses, until the stream ends. */
  async all() {
    const out = [];
    for (let r = await this.next(); r !== null; r = await this.next()) out.push(r);
    return out;
  }
}

/** What every call carries: a deadline, the metadata, the initial metadata and status it
 * ends with (status resolves with {code, details, metadata} however the call ended). */
function watch(call) {
  const watched = { call, initial: null };
  call.on('metadata', (md) => {
    watched.initial = md;
  });
  call.on('error', () => {}); // reported through status / Responses; never an unhandled 'error'
  watched.status = new Promise((resolve) => call.on('status', resolve));
  return watched;
}

class Peer {
  /** `plain`: the channel of the calls that send uncompressed; `gzipClient()`: a new channel
   * that gzips every request message (see the head of this file for why one per call). */
  constructor(plain, gzipClient, timeout) {
    this.plain = plain;
    this.gzipClient = gzipClient;
    this.timeout = timeout;
    this.calls = new Set(); // calls of the current case, cancelled when it ends
    this.gzipClients = []; // channels of the current case's compressed calls, closed when it ends
    this.emptyCall = method(TEST_SERVICE, 'EmptyCall');
    this.unaryCall = method(TEST_SERVICE, 'UnaryCall');
    this.streamingOutputCall = method(TEST_SERVICE, 'StreamingOutputCall');
    this.streamingInputCall = method(TEST_SERVICE, 'StreamingInputCall');
    this.fullDuplexCall = method(TEST_SERVICE, 'FullDuplexCall');
    this.unimplementedCall = method(TEST_SERVICE, 'UnimplementedCall');
    this.unimplementedService = method(UNIMPLEMENTED_SERVICE, 'UnimplementedCall');
  }

  options(o = {}) {
    const timeout = o.timeout === undefined ? this.timeout : o.timeout;
    return [o.metadata || new grpc.Metadata(), { deadline: Date.now() + timeout * 1000 }];
  }

  client(o = {}) {
    if (!o.compress) return this.plain;
    const client = this.gzipClient();
    this.gzipClients.push(client);
    return client;
  }

  track(call) {
    this.calls.add(call);
    return watch(call);
  }

  /** One request, one response: resolves with {message, compressed, initial, trailing},
   * rejects with the ServiceError. o: {timeout, metadata, compress}. */
  unary(m, request, o = {}) {
    return new Promise((resolve, reject) => {
      let error = null;
      let response = null;
      const call = this.client(o).makeUnaryRequest(m.path, m.serialize, m.deserialize, request, ...this.options(o), (e, r) => {
        error = e;
        response = r;
      });
      const w = this.track(call);
      // 'status' comes right after the callback, with the trailing metadata.
      w.status.then((status) => {
        if (error) reject(error);
        else resolve({ ...response, initial: w.initial, trailing: status.metadata });
      });
    });
  }

  /** A server-streaming call: {call, responses: Responses, status}. */
  serverStream(m, request, o = {}) {
    const call = this.client(o).makeServerStreamRequest(m.path, m.serialize, m.deserialize, request, ...this.options(o));
    const w = this.track(call);
    w.responses = new Responses(call);
    return w;
  }

  /** A client-streaming call: {call, result: Promise of the response, status}; write with
   * call.write(message[, flags]), half-close with call.end(). */
  clientStream(m, o = {}) {
    let settle;
    const result = new Promise((resolve, reject) => {
      settle = (e, r) => (e ? reject(e) : resolve(r));
    });
    result.catch(() => {}); // awaited by the case, or not at all
    const call = this.client(o).makeClientStreamRequest(m.path, m.serialize, m.deserialize, ...this.options(o), (e, r) => settle(e, r));
    const w = this.track(call);
    w.result = result;
    return w;
  }

  /** A bidirectional call: {call, responses: Responses, status}. */
  duplex(m, o = {}) {
    const call = this.client(o).makeBidiStreamRequest(m.path, m.serialize, m.deserialize, ...this.options(o));
    const w = this.track(call);
    w.responses = new Responses(call);
    return w;
  }

  /** End whatever the case left open (a case that failed half-way). */
  cancelAll() {
    for (const call of this.calls) call.cancel();
    this.calls.clear();
    for (const client of this.gzipClients.splice(0)) client.close();
  }
}

/** `fn` must fail with `code` (and, if given, exactly these details). */
async function expectError(fn, code, details) {
  try {
    await fn();
  } catch (e) {
    if (!isRpcError(e)) throw e;
    check(e.code === code, `ended with ${codeName(e.code)} ${pyRepr(e.details)}, want ${codeName(code)}`);
    if (details !== undefined) check(e.details === details, `status message ${pyRepr(e.details)}, want ${pyRepr(details)}`);
    return;
  }
  throw new Failure(`succeeded, want ${codeName(code)}`);
}

function checkPayload(payload, size) {
  const p = payload || { type: COMPRESSABLE, body: Buffer.alloc(0) }; // absent: an empty Payload
  const body = p.body || Buffer.alloc(0);
  check(p.type === COMPRESSABLE, `payload type ${p.type}, want COMPRESSABLE`);
  check(body.length === size, `payload of ${body.length} bytes, want ${size}`);
  check(body.every((b) => b === 0), 'payload body is not all zeros');
}

/** The request of large_unary: 271828 bytes up, 314159 bytes down. */
function largeRequest(fields = {}) {
  return { response_type: COMPRESSABLE, response_size: 314159, payload: zeros(271828), ...fields };
}

function outputRequest(sizes, payload = 0, fields = {}) {
  return {
    response_type: COMPRESSABLE,
    response_parameters: sizes.map((size) => ({ size })),
    payload: zeros(payload),
    ...fields,
  };
}

async function nextResponse(responses) {
  const response = await responses.next();
  check(response !== null, 'the response stream ended early');
  return response;
}

function payloadSize(response) {
  return response.message.payload && response.message.payload.body ? response.message.payload.body.length : 0;
}

// The cases, in the order of gRPC's interop test description (and of client.py). Each throws
// Failure, Skipped or a ServiceError, or returns when it passed.

const CASES = {};

CASES.empty_unary = async (p) => {
  const response = await p.unary(p.emptyCall, {});
  check(Object.keys(response.message).length === 0, 'the response is not empty');
};

CASES.large_unary = async (p) => {
  const response = await p.unary(p.unaryCall, largeRequest());
  checkPayload(response.message.payload, 314159);
};

CASES.client_compressed_unary = async (p) => {
  // The probe: an uncompressed request claiming to be compressed must be refused.
  const claim = largeRequest({ expect_compressed: { value: true } });
  await expectError(() => p.unary(p.unaryCall, claim), Code.INVALID_ARGUMENT);
  for (const compressed of [true, false]) {
    const request = largeRequest({ expect_compressed: { value: compressed } });
    const response = await p.unary(p.unaryCall, request, { compress: compressed });
    checkPayload(response.message.payload, 314159);
  }
};

CASES.server_compressed_unary = async (p) => {
  if (p.probeError) throw new Skipped(p.probeError);
  for (const compressed of [true, false]) {
    const request = largeRequest({ response_compressed: { value: compressed } });
    const response = await p.unary(p.unaryCall, request);
    checkPayload(response.message.payload, 314159);
    check(
      response.compressed === compressed,
      `response_compressed=${pyRepr(compressed)} but the response came ${response.compressed ? '' : 'un'}compressed`,
    );
  }
};

CASES.client_streaming = async (p) => {
  const { call, result } = p.clientStream(p.streamingInputCall);
  for (const n of [27182, 8, 1828, 45904]) call.write({ payload: zeros(n) });
  call.end();
  const size = (await result).message.aggregated_payload_size;
  check(size === 74922, `aggregated_payload_size ${size}, want 74922`);
};

// client.py SKIPs this one (grpcio compresses all or none of a call's requests); grpc-js can
// leave out single writes (WriteFlags.NoCompress), so here it runs as the interop description
// has it.
CASES.client_compressed_streaming = async (p) => {
  // The probe: an uncompressed request claiming to be compressed must be refused.
  await expectError(async () => {
    const { call, result } = p.clientStream(p.streamingInputCall);
    call.write({ payload: zeros(27182), expect_compressed: { value: true } });
    call.end();
    await result;
  }, Code.INVALID_ARGUMENT);
  const { call, result } = p.clientStream(p.streamingInputCall, { compress: true });
  call.write({ payload: zeros(27182), expect_compressed: { value: true } });
  call.write({ payload: zeros(45904), expect_compressed: { value: false } }, NO_COMPRESS);
  call.end();
  const size = (await result).message.aggregated_payload_size;
  check(size === 73086, `aggregated_payload_size ${size}, want 73086`);
};

CASES.server_streaming = async (p) => {
  const sizes = [31415, 9, 2653, 58979];
  const responses = await p.serverStream(p.streamingOutputCall, outputRequest(sizes)).responses.all();
  const got = responses.map(payloadSize);
  check(JSON.stringify(got) === JSON.stringify(sizes), `response sizes ${pyRepr(got)}, want ${pyRepr(sizes)}`);
  responses.forEach((r, i) => checkPayload(r.message.payload, sizes[i]));
};

CASES.server_compressed_streaming = async (p) => {
  if (p.probeError) throw new Skipped(p.probeError);
  const request = {
    response_type: COMPRESSABLE,
    response_parameters: [
      { size: 31415, compressed: { value: true } },
      { size: 92653, compressed: { value: false } },
    ],
  };
  const responses = await p.serverStream(p.streamingOutputCall, request).responses.all();
  const got = responses.map((r) => [payloadSize(r), r.compressed]);
  const want = [
    [31415, true],
    [92653, false],
  ];
  const show = (pairs) => `[${pairs.map((pair) => pyTuple(...pair)).join(', ')}]`;
  check(JSON.stringify(got) === JSON.stringify(want), `(size, compressed) ${show(got)}, want ${show(want)}`);
};

CASES.ping_pong = async (p) => {
  const { call, responses } = p.duplex(p.fullDuplexCall);
  const ups = [27182, 8, 1828, 45904];
  const downs = [31415, 9, 2653, 58979];
  for (let i = 0; i < ups.length; i++) {
    call.write(outputRequest([downs[i]], ups[i]));
    checkPayload((await nextResponse(responses)).message.payload, downs[i]);
  }
  call.end();
  check((await responses.next()) === null, 'a response more than asked for');
};

CASES.empty_stream = async (p) => {
  const { call, responses } = p.duplex(p.fullDuplexCall);
  call.end();
  const got = await responses.all();
  check(got.length === 0, `${got.length} responses, want none`);
};

CASES.custom_metadata = async (p) => {
  const initial = [ECHO_INITIAL, 'test_initial_metadata_value'];
  const trailing = [ECHO_TRAILING, Buffer.from([0xab, 0xab, 0xab])];
  const metadata = () => {
    const md = new grpc.Metadata();
    md.add(...initial);
    md.add(...trailing);
    return md;
  };
  const pairs = (md) => Object.entries(md ? md.toJSON() : {}).flatMap(([k, vs]) => vs.map((v) => [k, v]));
  const has = (md, [key, value]) => pairs(md).some(([k, v]) => k === key && (Buffer.isBuffer(value) ? Buffer.isBuffer(v) && value.equals(v) : v === value));
  const show = (md) => `[${pairs(md).map((pair) => pyTuple(...pair)).join(', ')}]`;
  const checkEcho = (gotInitial, gotTrailing, what) => {
    check(has(gotInitial, initial), `${what}: initial metadata ${show(gotInitial)} lacks ${pyTuple(...initial)}`);
    check(has(gotTrailing, trailing), `${what}: trailing metadata ${show(gotTrailing)} lacks ${pyTuple(...trailing)}`);
  };

  const response = await p.unary(p.unaryCall, largeRequest(), { metadata: metadata() });
  checkPayload(response.message.payload, 314159);
  checkEcho(response.initial, response.trailing, 'UnaryCall');

  const w = p.duplex(p.fullDuplexCall, { metadata: metadata() });
  w.call.write(outputRequest([314159], 271828));
  checkPayload((await nextResponse(w.responses)).message.payload, 314159);
  w.call.end();
  check((await w.responses.next()) === null, 'a response more than asked for');
  const status = await w.status;
  checkEcho(w.initial, status.metadata, 'FullDuplexCall');
};

async function statusCase(p, message, duplex) {
  const status = { code: 2, message }; // 2 is UNKNOWN
  await expectError(() => p.unary(p.unaryCall, { response_status: status }), Code.UNKNOWN, message);
  if (!duplex) return;
  await expectError(
    async () => {
      const { call, responses } = p.duplex(p.fullDuplexCall);
      call.write({ response_status: status });
      call.end();
      await responses.all();
    },
    Code.UNKNOWN,
    message,
  );
}

CASES.status_code_and_message = (p) => statusCase(p, 'test status message', true);

CASES.special_status_message = (p) =>
  statusCase(p, '\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1f608}\t\n', false);

CASES.unimplemented_method = (p) => expectError(() => p.unary(p.unimplementedCall, {}), Code.UNIMPLEMENTED);

CASES.unimplemented_service = (p) => expectError(() => p.unary(p.unimplementedService, {}), Code.UNIMPLEMENTED);

CASES.cancel_after_begin = async (p) => {
  const w = p.clientStream(p.streamingInputCall);
  w.call.cancel();
  const { code } = await w.status;
  check(code === Code.CANCELLED, `ended with ${codeName(code)}, want CANCELLED`);
};

CASES.cancel_after_first_response = async (p) => {
  const w = p.duplex(p.fullDuplexCall);
  w.call.write(outputRequest([31415], 27182));
  checkPayload((await nextResponse(w.responses)).message.payload, 31415);
  w.call.cancel();
  const { code } = await w.status;
  check(code === Code.CANCELLED, `ended with ${codeName(code)}, want CANCELLED`);
};

CASES.timeout_on_sleeping_server = (p) =>
  expectError(async () => {
    const { call, responses } = p.duplex(p.fullDuplexCall, { timeout: 0.001 });
    call.write(outputRequest([], 27182));
    await responses.all();
  }, Code.DEADLINE_EXCEEDED);

/** A one-line reason for a FAIL line. */
function reasonOf(e) {
  let reason;
  if (isRpcError(e)) reason = `RPC ended with ${codeName(e.code)} ${pyRepr(e.details)}`;
  else if (e instanceof Failure) reason = e.message;
  else reason = `${(e && e.constructor && e.constructor.name) || typeof e}: ${e && e.message !== undefined ? e.message : String(e)}`;
  return reason.replace(/\r/g, '\\r').replace(/\n/g, '\\n');
}

async function runCases(p, names) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const name of names) {
    try {
      await CASES[name](p);
      passed += 1;
      console.log(`PASS ${name}`);
    } catch (e) {
      if (e instanceof Skipped) {
        skipped += 1;
        console.log(`SKIP ${name}: ${e.message}`);
      } else {
        failed += 1;
        console.log(`FAIL ${name}: ${reasonOf(e)}`);
      }
    } finally {
      p.cancelAll();
    }
  }
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  return failed;
}

/** `calls` large_unary calls on one channel, one after another; counts the failures. */
async function runSoak(p, calls, shown = 20) {
  let failed = 0;
  const latencies = [];
  for (let i = 0; i < calls; i++) {
    const start = process.hrtime.bigint();
    try {
      await CASES.large_unary(p);
    } catch (e) {
      failed += 1;
      if (failed <= shown) console.log(`FAIL large_unary#${i}: ${reasonOf(e)}`);
    } finally {
      p.cancelAll();
    }
    latencies.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  if (latencies.length) {
    const ms = latencies.map((x) => x * 1000).sort((a, b) => a - b);
    const n = ms.length;
    const median = n % 2 ? ms[(n - 1) / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
    const p99 = ms[Math.min(n - 1, Math.floor(n * 0.99))];
    const total = latencies.reduce((a, b) => a + b, 0);
    const hidden = failed > shown ? `; ${failed - shown} more failures not shown` : '';
    process.stderr.write(
      `soak: ${calls} calls in ${total.toFixed(2)} s; ms p50 ${median.toFixed(2)} p99 ${p99.toFixed(2)} max ${ms[n - 1].toFixed(2)}${hidden}\n`,
    );
  }
  console.log(`${calls - failed} passed, ${failed} failed`);
  return failed;
}

function parse(argv) {
  const summary = 'The @grpc/grpc-js interop client for herald (see the head of client.js).';
  const { args, fail } = parseArgs(
    'client.js',
    summary,
    {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'int', required: true },
      cases: { type: 'string', default: 'all', help: `'all' or a comma-separated list of: ${Object.keys(CASES).join(', ')}` },
      tls: { type: 'flag', help: 'mutual TLS (requires --cert --key --ca)' },
      cert: { type: 'string', help: 'PEM certificate chain of the client' },
      key: { type: 'string', help: 'PEM private key of the client' },
      ca: { type: 'string', help: 'PEM CA certificates the server certificate must chain to' },
      'server-name': {
        type: 'string',
        default: 'localhost',
        help: 'name the server certificate must carry (DNS or IP SAN); sent as SNI (default: localhost)',
      },
      timeout: { type: 'float', default: 10.0, help: 'deadline of each call, seconds (default 10)' },
      soak: { type: 'int', metavar: 'N', help: 'instead of the cases: N large_unary calls' },
    },
    argv,
  );
  if (args.tls && !(args.cert && args.key && args.ca)) fail('--tls needs --cert, --key and --ca');
  const names =
    args.cases === 'all'
      ? Object.keys(CASES)
      : args.cases
          .split(',')
          .map((n) => n.trim())
          .filter((n) => n);
  const unknown = names.filter((n) => !Object.prototype.hasOwnProperty.call(CASES, n));
  if (unknown.length || !names.length) fail(`unknown cases ${pyRepr(unknown)}; known: ${Object.keys(CASES).join(', ')}`);
  args.names = names;
  return args;
}

async function main(argv) {
  const args = parse(argv);
  const target = `${args.host}:${args.port}`;
  const options = { ...COMMON_OPTIONS };
  let credentials;
  if (args.tls) {
    credentials = grpc.credentials.createSsl(readFile(args.ca), readFile(args.key), readFile(args.cert));
    // Check the server's certificate against --server-name rather than the address (and send
    // it as SNI).
    options['grpc.ssl_target_name_override'] = args['server-name'];
    options['grpc.default_authority'] = args['server-name'];
  } else {
    credentials = grpc.credentials.createInsecure();
  }
  const plain = new grpc.Client(target, credentials, options);
  const gzipOptions = { ...options, 'grpc.default_compression_algorithm': grpc.compressionAlgorithms.gzip };
  const peer = new Peer(plain, () => new grpc.Client(target, credentials, gzipOptions), args.timeout);
  peer.probeError = installCompressionProbe('client');
  let failed;
  try {
    failed = args.soak !== undefined ? await runSoak(peer, args.soak) : await runCases(peer, args.names);
  } finally {
    peer.cancelAll();
    plain.close();
  }
  return failed === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`client.js: ${(e && e.stack) || e}\n`);
    process.exit(1);
  },
);
