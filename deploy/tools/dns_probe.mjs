// Asks a DNS server for names' A records, one query per name every --every ms, and prints one line
// per query: time, name, outcome (an address list, NXDOMAIN, or "no answer" after --wait ms) and how
// long the answer took. scripts/k8s_dns_repro.sh runs it inside a container's network namespace
// (nsenter) to see what the e2e's pods see from podman's DNS while containers are killed and started.
//
//   node dns_probe.mjs --server=IP [--every=100] [--wait=1000] [--seconds=N] NAME...
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';

const opts = { every: 100, wait: 1000, seconds: Infinity, names: [] };
for (const arg of process.argv.slice(2)) {
  const m = /^--([a-z]+)=(.*)$/.exec(arg);
  if (!m) opts.names.push(arg);
  else if (m[1] === 'server') opts.server = m[2];
  else if (['every', 'wait', 'seconds'].includes(m[1])) opts[m[1]] = Number(m[2]);
  else throw new Error(`dns_probe: unknown argument ${arg}`);
}
if (!opts.server || opts.names.length === 0) throw new Error('dns_probe: --server=IP and a NAME are required');

function query(id, name) {
  const labels = name.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);  // recursion desired
  header.writeUInt16BE(1, 4);       // one question
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])]);  // root, A, IN
}

// The A records of a reply, skipping its question section; compressed names are two bytes.
function answers(msg) {
  const count = msg.readUInt16BE(6);
  let at = 12;
  while (msg[at] !== 0) at += msg[at] + 1;
  at += 5;
  const out = [];
  for (let i = 0; i < count; i++) {
    if ((msg[at] & 0xc0) === 0xc0) at += 2;
    else { while (msg[at] !== 0) at += msg[at] + 1; at += 1; }
    const type = msg.readUInt16BE(at);
    const len = msg.readUInt16BE(at + 8);
    if (type === 1 && len === 4) out.push([...msg.subarray(at + 10, at + 14)].join('.'));
    at += 10 + len;
  }
  return out;
}

const sock = dgram.createSocket('udp4');
const pending = new Map();  // id -> {name, sent, timer}
const stamp = () => (Date.now() / 1000).toFixed(3);
sock.on('message', (msg) => {
  const p = pending.get(msg.readUInt16BE(0));
  if (!p) return;
  pending.delete(msg.readUInt16BE(0));
  clearTimeout(p.timer);
  const rcode = msg[3] & 0x0f;
  const outcome = rcode === 0 ? (answers(msg).join(',') || 'NODATA') : rcode === 3 ? 'NXDOMAIN' : `rcode ${rcode}`;
  console.log(`${stamp()} ${p.name} ${outcome} ${Date.now() - p.sent}ms`);
});
sock.bind(0, () => {
  const end = Date.now() + opts.seconds * 1000;
  const tick = setInterval(() => {
    if (Date.now() >= end) {
      clearInterval(tick);
      setTimeout(() => process.exit(0), opts.wait + 50);
      return;
    }
    for (const name of opts.names) {
      let id;
      do id = randomInt(65536); while (pending.has(id));
      const timer = setTimeout(() => {
        pending.delete(id);
        console.log(`${stamp()} ${name} no-answer ${opts.wait}ms`);
      }, opts.wait);
      pending.set(id, { name, sent: Date.now(), timer });
      sock.send(query(id, name), 53, opts.server);
    }
  }, opts.every);
});
process.on('SIGTERM', () => process.exit(0));
