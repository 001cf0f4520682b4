// node (libuv) client: net.connect to NAME:PORT and read the banner line.
//   mode noafs (default): autoSelectFamily: false -- node looks the name up and connects to the
//                         FIRST address only (what the issue is about);
//   mode afs:             node's default (autoSelectFamily true in node 20): node's own
//                         happy-eyeballs over every address; dnsfo must not break or slow it.
// Prints `GOT <banner>` (exit 0) or `ERR <code>` (exit 1), then `GAP <ms>`: the longest pause of
// a 10 ms setInterval during the connect phase, from the answer of the lookup (node's 'lookup'
// event, just before its first connect) to the end: the event-loop stall dnsfo could cause. The
// lookup runs on libuv's thread pool, and the main thread's start-up before it is node's own work
// (a loaded 2-CPU CI machine once paused it 160 ms there, 60 ms without dnsfo). Then
// `GAPALL <ms>`, the same over the whole run, for the record.
// Hard timeout: third argument in seconds (default 10).
'use strict';
const net = require('net');

const [name, portStr, mode = 'noafs', timeoutStr = '10'] = process.argv.slice(2);
const t0 = process.hrtime.bigint();
const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
const trace = (what) => process.stderr.write(`ev ${ms().toFixed(0)} ${what}\n`);

let last = ms();
let gap = 0; // connect phase only
let gapAll = 0;
let connecting = false;
function mark() {
  const now = ms();
  if (connecting) gap = Math.max(gap, now - last);
  gapAll = Math.max(gapAll, now - last);
  last = now;
}
const tick = setInterval(mark, 10);

let finished = false;
function finish(line, code) {
  if (finished) return;
  finished = true;
  mark();
  clearInterval(tick);
  if (!connecting) gap = gapAll; // no lookup answer: the whole run is all there is
  process.stdout.write(`${line}\nGAP ${gap.toFixed(1)}\nGAPALL ${gapAll.toFixed(1)}\n`);
  trace(`finish ${line}`);
  process.exit(code);
}

setTimeout(() => finish('ERR ETIMEDOUT (client hard timeout)', 1), Number(timeoutStr) * 1000);

const opts = { host: name, port: Number(portStr) };
if (mode === 'noafs') opts.autoSelectFamily = false;
trace(`connect ${name}:${portStr} mode ${mode}`);
const sock = net.connect(opts);
sock.on('lookup', (err, address, family) => {
  if (!connecting) {
    mark(); // the pause until here is the lookup's, not the connect's
    connecting = true;
  }
  trace(`lookup ${err ? err.code : address} family ${family}`);
});
sock.on('connect', () => trace(`connect to ${sock.remoteAddress}`));
let buf = '';
sock.setEncoding('utf8');
sock.on('data', (d) => {
  buf += d;
  const nl = buf.indexOf('\n');
  if (nl >= 0) finish(`GOT ${buf.slice(0, nl)}`, 0);
});
sock.on('end', () => finish(buf ? `GOT ${buf}` : 'ERR EOF', buf ? 0 : 1));
sock.on('error', (e) => {
  // With autoSelectFamily node reports an AggregateError; its code is the last attempt's.
  const code = e.code || (e.errors && e.errors.length && e.errors[e.errors.length - 1].code) || e.message;
  if (e.errors) trace(`errors: ${e.errors.map((x) => x.code + ' ' + x.address).join(', ')}`);
  finish(`ERR ${code}`, 1);
});
