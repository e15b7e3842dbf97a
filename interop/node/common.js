'use strict';
// What server.js and client.js share: the messages of interop/proto (loaded at run time by
// @grpc/proto-loader, no protoc), message decoding that sees per-message compression, channel /
// server options, TLS file loading, and a little of Python's formatting, so that the output of
// these peers reads like that of interop/python's.

const fs = require('fs');
const path = require('path');

let grpc;
let protoLoader;
try {
  grpc = require('@grpc/grpc-js');
  protoLoader = require('@grpc/proto-loader');
} catch (e) {
  process.stderr.write(`${path.join(__dirname, 'node_modules')} is incomplete (${e.message}): run interop/node/setup first\n`);
  process.exit(1);
}

const PROTO_ROOT = path.resolve(__dirname, '..', 'proto');

// keepCase: the fields keep the names of the .proto (response_size, expect_compressed...), as
// in Python. defaults: absent scalars read as their default; absent message fields
// (expect_compressed, response_status...) read as null, which is how "has field" is told.
// Enums stay numbers, bytes are Buffers.
const packageDefinition = protoLoader.loadSync(['grpc/testing/test.proto'], {
  includeDirs: [PROTO_ROOT],
  keepCase: true,
  defaults: true,
  oneofs: true,
});

const TEST_SERVICE = 'grpc.testing.TestService';
const UNIMPLEMENTED_SERVICE = 'grpc.testing.UnimplementedService';
const COMPRESSABLE = 0;

// Metadata the interop server echoes back: the first as initial, the second as trailing metadata.
const ECHO_INITIAL = 'x-grpc-test-echo-initial';
const ECHO_TRAILING = 'x-grpc-test-echo-trailing-bin';

// grpc-js WriteFlags.NoCompress (not exported by @grpc/grpc-js): a write with this flag goes
// uncompressed on a call that otherwise compresses.
const NO_COMPRESS = 2;

/** The methods of `service` as proto-loader describes them: path, requestSerialize... */
function methods(service) {
  const definition = packageDefinition[service];
  if (!definition) throw new Error(`${service} is not in ${PROTO_ROOT}`);
  return definition;
}

// --- Seeing per-message compression --------------------------------------------------------
//
// grpc-js decompresses every message before the deserializer sees it and tells no one whether
// it came compressed (the compressed flag of the message's 5-byte frame header), and unlike
// gRPC's C core (interop/python/common.py) it has no option to hand over the wire bytes. So the
// two places where grpc-js reads that flag are wrapped, without changing what they do: the
// decompressed buffer they return, which is the very object handed to the deserializer next, is
// remembered in a WeakSet when its frame said "compressed". Both are internals of grpc-js
// (pinned by package-lock.json); if they move, installCompressionProbe() says so and the peers
// report it instead of guessing.
//   client: CompressionFilter.receiveMessage (build/src/compression-filter.js), per response
//   server: BaseServerInterceptingCall.decompressMessage (build/src/server-interceptors.js)

const cameCompressed = new WeakSet();

function markIfCompressed(framed, result) {
  const compressed = Buffer.isBuffer(framed) && framed.length > 0 && framed[0] === 1;
  if (!compressed) return result;
  return Promise.resolve(result).then((buffer) => {
    if (buffer && typeof buffer === 'object') cameCompressed.add(buffer);
    return buffer;
  });
}

let probeState = null;

/** Install the compression probe for `side` ('client' | 'server'); returns null when it is
 * installed, or a sentence saying why it cannot be. */
function installCompressionProbe(side) {
  if (probeState && probeState.side === side) return probeState.error;
  let error = null;
  try {
    if (side === 'client') {
      const { CompressionFilter } = require('@grpc/grpc-js/build/src/compression-filter');
      const proto = CompressionFilter && CompressionFilter.prototype;
      if (!proto || typeof proto.receiveMessage !== 'function') throw new Error('CompressionFilter.receiveMessage not found');
      const original = proto.receiveMessage;
      proto.receiveMessage = async function receiveMessage(message) {
        const framed = await message;
        return markIfCompressed(framed, original.call(this, Promise.resolve(framed)));
      };
    } else {
      const { BaseServerInterceptingCall } = require('@grpc/grpc-js/build/src/server-interceptors');
      const proto = BaseServerInterceptingCall && BaseServerInterceptingCall.prototype;
      if (!proto || typeof proto.decompressMessage !== 'function') throw new Error('BaseServerInterceptingCall.decompressMessage not found');
      const original = proto.decompressMessage;
      proto.decompressMessage = function decompressMessage(message, encoding) {
        const result = original.call(this, message, encoding);
        return Buffer.isBuffer(message) && message[0] === 1 ? markIfCompressed(message, result) : result;
      };
    }
  } catch (e) {
    error = `cannot see per-message compression in this @grpc/grpc-js (${e.message})`;
  }
  probeState = { side, error };
  return error;
}

/** A deserializer for grpc-js that yields {message, compressed}, like common.py's Received. */
function decoder(deserialize) {
  return (buffer) => ({ message: deserialize(buffer), compressed: cameCompressed.has(buffer) });
}

// --- Options, files, payloads ---------------------------------------------------------------

// No limit on received messages other than grpc-js's 4 MiB default, as with grpcio.
const COMMON_OPTIONS = {};

function readFile(file) {
  return fs.readFileSync(file);
}

/** A COMPRESSABLE payload of `size` zero bytes, as the interop tests use. */
function zeros(size) {
  return { type: COMPRESSABLE, body: Buffer.alloc(size) };
}

// --- Python-like formatting, for reasons that read as client.py's do ------------------------

function pyStr(s) {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0);
    if (ch === '\\' || ch === quote) out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch !== ' ' && /[\p{C}\p{Z}]/u.test(ch)) {
      if (cp < 0x100) out += `\\x${cp.toString(16).padStart(2, '0')}`;
      else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
      else out += `\\U${cp.toString(16).padStart(8, '0')}`;
    } else out += ch;
  }
  return out + quote;
}

function pyBytes(buffer) {
  let out = "b'";
  for (const b of buffer) {
    if (b === 0x5c || b === 0x27) out += `\\${String.fromCharCode(b)}`;
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x0d) out += '\\r';
    else if (b === 0x09) out += '\\t';
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return `${out}'`;
}

/** Python's repr() of strings, bytes, booleans, null, numbers, arrays (as lists). */
function pyRepr(value) {
  if (typeof value === 'string') return pyStr(value);
  if (Buffer.isBuffer(value)) return pyBytes(value);
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (value === null || value === undefined) return 'None';
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  return String(value);
}

/** A tuple, as Python prints one. */
function pyTuple(...items) {
  return `(${items.map(pyRepr).join(', ')}${items.length === 1 ? ',' : ''})`;
}

/** The name of a status code: 14 -> 'UNAVAILABLE'. */
function codeName(code) {
  return grpc.status[code] || `code ${code}`;
}

// --- Command line: argparse's conventions, for the options the peers take ------------------

/**
 * Parse argv against `spec` ({name: {type: 'int'|'float'|'string'|'flag', default, required,
 * metavar, help}}); names are the long options without '--', with '-' for '_'. Exits as
 * argparse does on errors (usage on stderr, code 2) and on --help (code 0).
 */
function parseArgs(prog, summary, spec, argv) {
  const usage = () =>
    `usage: ${prog} ${Object.entries(spec)
      .map(([name, o]) => {
        const flag = `--${name}${o.type === 'flag' ? '' : ` ${o.metavar || name.toUpperCase().replace(/-/g, '_')}`}`;
        return o.required ? flag : `[${flag}]`;
      })
      .join(' ')}`;
  const fail = (message) => {
    process.stderr.write(`${usage()}\n${prog}: error: ${message}\n`);
    process.exit(2);
  };
  const args = {};
  for (const [name, o] of Object.entries(spec)) args[name] = o.type === 'flag' ? false : o.default;
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      const lines = Object.entries(spec).map(([name, o]) => `  --${name}${o.help ? `  ${o.help}` : ''}`);
      process.stdout.write(`${usage()}\n\n${summary}\n\noptions:\n${lines.join('\n')}\n`);
      process.exit(0);
    }
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const name = arg.startsWith('--') ? arg.slice(2) : null;
    const o = name && spec[name];
    if (!o) fail(`unrecognized arguments: ${argv[i]}`);
    if (o.type === 'flag') {
      if (value !== undefined) fail(`argument --${name}: ignored explicit argument ${pyStr(value)}`);
      args[name] = true;
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) fail(`argument --${name}: expected one argument`);
      value = argv[++i];
    }
    if (o.type === 'int') {
      if (!/^[+-]?\d+$/.test(value.trim())) fail(`argument --${name}: invalid int value: ${pyStr(value)}`);
      args[name] = parseInt(value, 10);
    } else if (o.type === 'float') {
      const n = Number(value);
      if (value.trim() === '' || Number.isNaN(n)) fail(`argument --${name}: invalid float value: ${pyStr(value)}`);
      args[name] = n;
    } else args[name] = value;
  }
  const missing = Object.entries(spec)
    .filter(([name, o]) => o.required && args[name] === undefined)
    .map(([name]) => `--${name}`);
  if (missing.length) fail(`the following arguments are required: ${missing.join(', ')}`);
  return { args, fail };
}

module.exports = {
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
  pyStr,
  pyTuple,
  codeName,
  parseArgs,
};
