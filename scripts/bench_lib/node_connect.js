// node client of scripts/bench: one net.connect to NAME:PORT, timed inside node.
//   node node_connect.js NAME PORT MODE
//   MODE noafs: autoSelectFamily false (node connects to the first address only: what dnsfo is for)
//   MODE afs:   node's default (autoSelectFamily true): node's own failover across the addresses
// A 10 ms setInterval runs from 50 ms before the connect until it ends; prints one JSON line:
//   {"ok":true,"connect_ms":<net.connect() to 'connect' event>,"lookup_ms":<to the 'lookup' event>,
//    "gap_ms":<longest timer pause>,"remote":<peer address>}
// Hard limit: 10 s (then {"ok":false,...}).
'use strict';
const net = require('net');

const [name, portStr, mode = 'noafs'] = process.argv.slice(2);
const now = () => Number(process.hrtime.bigint()) / 1e6;
let last = now();
let gap = 0;
let measuring = false;
const tick = setInterval(() => {
  const t = now();
  if (measuring) gap = Math.max(gap, t - last);
  last = t;
}, 10);

function done(obj) {
  clearInterval(tick);
  process.stdout.write(JSON.stringify(obj) + '\n');
  process.exit(obj.ok ? 0 : 1);
}
setTimeout(() => done({ ok: false, error: 'timeout' }), 10000).unref();

setTimeout(() => {
  const opts = { host: name, port: Number(portStr) };
  if (mode === 'noafs') opts.autoSelectFamily = false;
  measuring = true;
  last = now();
  const t0 = now();
  const sock = net.connect(opts);
  let looked = null; // when the (first) lookup answered: connect_ms - lookup_ms is the pure connect
  sock.on('lookup', () => { if (looked === null) looked = now(); });
  sock.on('connect', () => {
    const t1 = now();
    const remote = sock.remoteAddress;
    // one more tick window: a stall right at the end still counts
    setTimeout(() => {
      measuring = false;
      gap = Math.max(gap, now() - last);
      sock.destroy();
      done({ ok: true, connect_ms: t1 - t0, lookup_ms: (looked === null ? t1 : looked) - t0,
        gap_ms: gap, remote });
    }, 12);
  });
  sock.on('error', (e) => done({ ok: false, error: String(e.code || e.message) }));
}, 50);
