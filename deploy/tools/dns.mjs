// The e2e's cluster DNS: answers A queries for the pods' names from what the harness tells it, the
// way a cluster's CoreDNS answers from the API server's endpoints, and nothing else (no forwarding:
// an unknown name is NXDOMAIN at once). scripts/k8s_e2e.sh runs it in a container's network namespace
// on the e2e's internal network, which is made with --disable-dns: podman's own DNS server there,
// aardvark-dns 1.4, went silent for every name for 15 s and more after a container was killed or
// started (deploy/README.md, scripts/k8s_dns_repro.sh).
//
//   node dns.mjs --stdin [--ttl=5]
//
// Each line on stdin sets what one pod publishes: "POD ADDRESS NAME..." (its address and the names
// that resolve to it), or "POD -" when it has none (its container is not running). A name that several
// pods publish (a headless Service) resolves to all their addresses. Exits when stdin closes.
import dgram from 'node:dgram';
import { createInterface } from 'node:readline';

const kTypeA = 1;
const kClassIn = 1;

// Parses a query's header and question; null when it is not one question this server can answer.
export function parseQuery(msg) {
  if (msg.length < 12 || (msg[2] & 0x80) !== 0 || msg.readUInt16BE(4) !== 1) return null;
  const labels = [];
  let at = 12;
  while (at < msg.length && msg[at] !== 0) {
    const len = msg[at];
    if (len > 63 || at + 1 + len > msg.length) return null;
    labels.push(msg.toString('latin1', at + 1, at + 1 + len));
    at += 1 + len;
  }
  if (at + 5 > msg.length) return null;
  return { id: msg.readUInt16BE(0), flags: msg.readUInt16BE(2), name: labels.join('.').toLowerCase(),
           type: msg.readUInt16BE(at + 1), klass: msg.readUInt16BE(at + 3), end: at + 5 };
}

// The reply to `msg`: authoritative, with one A record per address; NXDOMAIN when `addresses` is null
// (the name is unknown), no records when it is known but the question is not A/IN.
export function reply(msg, q, addresses, ttl) {
  const records = q.type === kTypeA && q.klass === kClassIn ? (addresses ?? []) : [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  // QR, the query's opcode and RD, AA, RA; rcode 3 (NXDOMAIN) for an unknown name.
  header.writeUInt16BE(0x8000 | (q.flags & 0x7900) | 0x0400 | 0x0080 | (addresses ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(records.length, 6);
  const answers = records.map((ip) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0);  // the question's name
    rr.writeUInt16BE(kTypeA, 2);
    rr.writeUInt16BE(kClassIn, 4);
    rr.writeUInt32BE(ttl, 6);
    rr.writeUInt16BE(4, 10);
    ip.split('.').forEach((b, i) => rr.writeUInt8(Number(b), 12 + i));
    return rr;
  });
  return Buffer.concat([header, msg.subarray(12, q.end), ...answers]);
}

// POD -> {address, names}; answers name -> addresses.
export class Records {
  constructor() {
    this.pods = new Map();
  }

  // One stdin line; returns a description of the change, or throws on a malformed line.
  apply(line) {
    const [pod, address, ...names] = line.trim().split(/\s+/);
    if (!pod || !address) throw new Error(`expected "POD ADDRESS NAME..." or "POD -", got "${line}"`);
    if (address === '-') {
      this.pods.delete(pod);
      return `${pod}: no address`;
    }
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) throw new Error(`${pod}: ${address} is not an IPv4 address`);
    this.pods.set(pod, { address, names: new Set(names.map((n) => n.toLowerCase().replace(/\.$/, ''))) });
    return `${pod}: ${address} ${names.join(' ')}`;
  }

  lookup(name) {
    const found = [...this.pods.values()].filter((p) => p.names.has(name)).map((p) => p.address);
    return found.length ? found : null;
  }
}

function note(msg) {
  console.error(`${new Date().toISOString().slice(11, 23)} dns.mjs: ${msg}`);
}

async function main() {
  const opts = { ttl: 5, stdin: false };
  for (const arg of process.argv.slice(2)) {
    if (arg === '--stdin') opts.stdin = true;
    else if (arg.startsWith('--ttl=')) opts.ttl = Number(arg.slice('--ttl='.length));
    else throw new Error(`dns.mjs: unknown argument ${arg}`);
  }
  if (!opts.stdin) throw new Error('dns.mjs: --stdin is the only way to give it names');
  const records = new Records();
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, from) => {
    const q = parseQuery(msg);
    if (q) sock.send(reply(msg, q, records.lookup(q.name), opts.ttl), from.port, from.address);
  });
  sock.on('error', (e) => { console.error(`dns.mjs: ${e.message}`); process.exit(1); });
  await new Promise((resolve) => sock.bind(53, resolve));
  note('serving on port 53');
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (!line.trim()) return;
    try {
      note(records.apply(line));
    } catch (e) {
      note(e.message);
    }
  });
  lines.on('close', () => process.exit(0));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => { console.error(e.message); process.exit(1); });
}
