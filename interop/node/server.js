#!/usr/bin/env node
'use strict';
/*
The @grpc/grpc-js interop server for herald: grpc.testing.TestService as gRPC's interop test
description specifies it, on grpc-js (pure JavaScript, Node's http2). interop/python/server.py's
twin: same options, same behaviour, except where grpc-js cannot (below).

    server.js --port 0                                      # plaintext
    server.js --port 0 --tls --cert C --key K --ca CA       # mutual TLS, client certs required

Binds 127.0.0.1 only; prints "LISTENING <port>" on stdout once it accepts calls. SIGTERM or
SIGINT stops it (calls in flight get 1 s), with exit code 0.

What a call can ask of it:
  - metadata x-grpc-test-echo-initial is echoed as initial metadata, and
    x-grpc-test-echo-trailing-bin as trailing metadata (also on calls that fail);
  - response_status (code != 0) ends the call with that code and message, before any response;
  - response_size / response_parameters (size, interval_us) shape the responses: zero bytes;
  - expect_compressed, when set, must match how the request message came, else INVALID_ARGUMENT
    (how it came is seen as common.js describes: installCompressionProbe).
  - response_compressed / ResponseParameters.compressed are NOT honoured: a grpc-js server
    cannot compress responses (it always answers grpc-encoding identity, every message with
    the compressed flag 0), so every response goes uncompressed, as server.py does with a
    message that asks for compression in a call that started uncompressed. Clients that check
    (server_compressed_unary, server_compressed_streaming) report the response came
    uncompressed.
UnimplementedCall and UnimplementedService are not implemented: they end with UNIMPLEMENTED.
*/

const {
  grpc,
  methods,
  TEST_SERVICE,
  COMPRESSABLE,
  ECHO_INITIAL,
  ECHO_TRAILING,
  COMMON_OPTIONS,
  installCompressionProbe,
  decoder,
  readFile,
  zeros,
  pyRepr,
  parseArgs,
} = require('./common');

const Status = grpc.status;

/** Ends a call with a status other than OK (thrown by Call.abort, caught by the handler). */
class Abort extends Error {
  constructor(code, details) {
    super(details);
    this.code = code;
    this.details = details;
  }
}

/** The request messages of a streaming call, one at a time: next() resolves with
 * {message, compressed}, or null once the client half-closed or the call ended. */
class Requests {
  constructor(call) {
    this.queue = [];
    this.waiting = null;
    this.done = false;
    call.on('data', (m) => {
      this.queue.push(m);
      this.wake();
    });
    const finish = () => {
      this.done = true;
      this.wake();
    };
    call.on('end', finish);
    call.on('cancelled', finish);
    call.on('error', finish);
    call.on('close', finish);
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
      if (this.done) return null;
      await new Promise((resolve) => {
        this.waiting = resolve;
      });
    }
  }
}

/** What every method does with its call: echo metadata, fail on request. */
class Call {
  constructor(call) {
    this.call = call;
    this.initial = new grpc.Metadata();
    this.trailing = new grpc.Metadata();
    const values = (key) => (call.metadata ? call.metadata.get(key) : []);
    for (const v of values(ECHO_INITIAL)) this.initial.add(ECHO_INITIAL, v);
    for (const v of values(ECHO_TRAILING)) this.trailing.add(ECHO_TRAILING, v);
    this.hasInitial = values(ECHO_INITIAL).length > 0;
    this.started = false;
    this.ended = false; // the call was cancelled (by the client, or its deadline)
    this.onEnd = [];
    call.on('cancelled', () => {
      this.ended = true;
      for (const f of this.onEnd.splice(0)) f();
    });
  }

  /** Before the first response: send the echoed initial metadata. Later calls do nothing. */
  start() {
    if (this.started) return;
    this.started = true;
    if (this.hasInitial) this.call.sendMetadata(this.initial);
  }

  abort(code, message) {
    this.start();
    throw new Abort(code, message);
  }

  /** The status a failed call ends with, trailing metadata included. */
  statusOf(e) {
    if (e instanceof Abort) return { code: e.code, details: e.details, metadata: this.trailing };
    process.stderr.write(`server.js: handler error: ${(e && e.stack) || e}\n`);
    return { code: Status.UNKNOWN, details: `server.js: ${(e && e.message) || e}`, metadata: this.trailing };
  }

  /** The checks common to all requests: payload type, expected compression, sizes. */
  checkRequest(request, compressed) {
    if ('response_type' in request && request.response_type !== COMPRESSABLE) {
      this.abort(Status.INVALID_ARGUMENT, 'unknown response_type');
    }
    if (compressed !== undefined && request.expect_compressed) {
      const want = Boolean(request.expect_compressed.value);
      if (want !== compressed) {
        const how = compressed ? 'compressed' : 'uncompressed';
        this.abort(Status.INVALID_ARGUMENT, `expect_compressed is ${pyRepr(want)} but the request came ${how}`);
      }
    }
    const sizes = (request.response_parameters || []).map((p) => p.size);
    sizes.push(request.response_size || 0);
    if (Math.min(...sizes) < 0) this.abort(Status.INVALID_ARGUMENT, 'negative response size');
  }

  /** End the call with request.response_status, if it has one that is not OK. */
  failIfAsked(request) {
    const status = request.response_status;
    if (status && status.code !== 0) {
      // Codes gRPC does not define cannot be sent: UNKNOWN instead, as server.py does.
      const code = Number.isInteger(status.code) && status.code > 0 && status.code <= 16 ? status.code : Status.UNKNOWN;
      this.abort(code, status.message);
    }
  }

  /** Wait `ms`; resolves true when the call ended meanwhile. */
  wait(ms) {
    if (this.ended) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.onEnd = this.onEnd.filter((f) => f !== done);
        resolve(false);
      }, ms);
      this.onEnd.push(done);
    });
  }

  /** Write the responses one StreamingOutputCallRequest asks for, paced by interval_us.
   * (ResponseParameters.compressed: see the head of this file.) */
  async respond(request) {
    this.checkRequest(request);
    this.failIfAsked(request);
    this.start();
    for (const p of request.response_parameters || []) {
      if (p.interval_us > 0 && (await this.wait(p.interval_us / 1000))) return; // ended meanwhile
      if (this.ended) return;
      this.call.write({ payload: zeros(p.size) });
    }
  }
}

// The methods of grpc.testing.TestService, in grpc-js's handler shapes. Requests arrive as
// {message, compressed} (common.js decoder).

/** A unary or client-streaming method: `fn(c, call)` returns the response or throws. */
function withCallback(fn) {
  return (call, callback) => {
    const c = new Call(call);
    Promise.resolve()
      .then(() => fn(c, call))
      .then(
        (response) => callback(null, response, c.trailing),
        (e) => callback(c.statusOf(e)),
      );
  };
}

/** A server-streaming or bidirectional method: `fn(c, call)` writes the responses. */
function streaming(fn) {
  return (call) => {
    const c = new Call(call);
    Promise.resolve()
      .then(() => fn(c, call))
      .then(
        () => {
          if (c.ended) return;
          c.start(); // echo initial metadata even when there was nothing to answer
          call.end(c.trailing);
        },
        (e) => {
          if (!c.ended) call.emit('error', c.statusOf(e)); // grpc-js: ends the call with it
        },
      );
  };
}

const implementation = {
  EmptyCall: withCallback((c) => {
    c.start();
    return {};
  }),

  UnaryCall: withCallback((c, call) => {
    const { message: request, compressed } = call.request;
    c.checkRequest(request, compressed);
    c.failIfAsked(request);
    c.start(); // response_compressed: see the head of this file
    return { payload: zeros(request.response_size) };
  }),

  StreamingOutputCall: streaming((c, call) => c.respond(call.request.message)),

  StreamingInputCall: withCallback(async (c, call) => {
    const requests = new Requests(call);
    let total = 0;
    for (let r = await requests.next(); r !== null; r = await requests.next()) {
      c.checkRequest(r.message, r.compressed);
      total += r.message.payload && r.message.payload.body ? r.message.payload.body.length : 0;
    }
    c.start();
    return { aggregated_payload_size: total };
  }),

  FullDuplexCall: streaming(async (c, call) => {
    const requests = new Requests(call);
    for (let r = await requests.next(); r !== null; r = await requests.next()) {
      await c.respond(r.message);
    }
  }),

  HalfDuplexCall: streaming(async (c, call) => {
    const requests = new Requests(call);
    const buffered = []; // until the client half-closes
    for (let r = await requests.next(); r !== null; r = await requests.next()) buffered.push(r.message);
    for (const request of buffered) await c.respond(request);
  }),
};

/** TestService's definition with deserializers that see compression. Methods without an
 * implementation (UnimplementedCall), and services not added, end with UNIMPLEMENTED. */
function service() {
  const definition = {};
  for (const [name, m] of Object.entries(methods(TEST_SERVICE))) {
    definition[name] = { ...m, requestDeserialize: decoder(m.requestDeserialize) };
  }
  return definition;
}

function parse(argv) {
  const { args, fail } = parseArgs(
    'server.js',
    'The @grpc/grpc-js interop server for herald (see the head of server.js).',
    {
      port: { type: 'int', required: true, help: 'port on 127.0.0.1; 0 picks a free one' },
      tls: { type: 'flag', help: 'mutual TLS (requires --cert --key --ca)' },
      cert: { type: 'string', help: 'PEM certificate chain of the server' },
      key: { type: 'string', help: 'PEM private key of the server' },
      ca: { type: 'string', help: 'PEM CA certificates that client certificates must chain to' },
    },
    argv,
  );
  if (args.tls && !(args.cert && args.key && args.ca)) fail('--tls needs --cert, --key and --ca');
  return args;
}

function main(argv) {
  const args = parse(argv);
  const probeError = installCompressionProbe('server');
  if (probeError) {
    process.stderr.write(`server.js: ${probeError}: expect_compressed cannot be checked\n`);
    process.exit(1);
  }
  const server = new grpc.Server({ ...COMMON_OPTIONS });
  server.addService(service(), implementation);
  const address = `127.0.0.1:${args.port}`;
  let credentials;
  try {
    credentials = args.tls
      ? grpc.ServerCredentials.createSsl(readFile(args.ca), [{ private_key: readFile(args.key), cert_chain: readFile(args.cert) }], true)
      : grpc.ServerCredentials.createInsecure();
  } catch (e) {
    process.stderr.write(`server.js: cannot listen on ${address}: ${e.message}\n`);
    process.exit(1);
  }

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => {
      server.forceShutdown();
      setImmediate(() => process.exit(0));
    }, 1000);
    server.tryShutdown(() => {
      clearTimeout(force);
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  server.bindAsync(address, credentials, (err, port) => {
    if (err) {
      process.stderr.write(`server.js: cannot listen on ${address}: ${err.message}\n`);
      process.exit(1);
    }
    process.stdout.write(`LISTENING ${port}\n`);
  });
}

main(process.argv.slice(2));
