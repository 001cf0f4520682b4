// node ns_stale.js NAME PORT: dns.lookup(NAME, {family: 4}) once, net.connect to that IP and
// read the banner, READY, wait for a line on stdin, net.connect AGAIN to the same IP.
//
// A client of tests/e2e/neverslower.py (never-slower scenarios); run inside its namespace.
'use strict';
const dns = require('dns'), net = require('net');
const [name, portStr] = process.argv.slice(2);
const port = Number(portStr);
const out = (s) => process.stdout.write(s + '\n');
function attempt(tag, ip, next) {
  const t0 = process.hrtime.bigint();
  const ms = () => Math.round(Number(process.hrtime.bigint() - t0) / 1e6);
  let connected = null, data = '', done = false;
  const s = net.connect({ host: ip, port, autoSelectFamily: false });
  const fin = (line) => {
    if (done) return;
    done = true;
    out(line);
    s.destroy();
    next();
  };
  s.setTimeout(8000, () => fin(`${tag} ms=${ms()} PENDING`));
  s.on('connect', () => { connected = ms(); out(`${tag}_PEER ${s.remoteAddress}`); });
  s.on('data', (d) => {
    data += d;
    if (data.includes('\n')) fin(`${tag} ms=${connected} GOT ${data.split('\n')[0]}`);
  });
  s.on('end', () => fin(connected === null ? `${tag} ms=${ms()} ERR EOF`
    : `${tag} ms=${connected} GOT ${data.split('\n')[0]}`));
  s.on('error', (e) => fin(`${tag} ms=${ms()} ERR ${e.code || e.message}`));
}
dns.lookup(name, { family: 4 }, (err, ip) => {
  if (err) { out(`GAI1 ERR ${err.code}`); process.exit(3); }
  out(`GAI1 ${ip}`);
  attempt('C1', ip, () => {
    out('READY');
    const giveUp = setTimeout(() => { out('NO_GO'); process.exit(3); }, 20000);
    process.stdin.once('data', () => {
      clearTimeout(giveUp);
      attempt('C2', ip, () => process.exit(0));
    });
  });
});
