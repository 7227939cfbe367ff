// What validate.mjs and e2e.mjs share: reading rendered manifests, the job config they carry, the
// psrec containers in them and the flags psrec lists.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

// The objects of a rendered multi-document YAML file, each with `source` (file and document number)
// kept aside for messages. Throws naming the file on a YAML error.
export function loadObjects(file) {
  const text = readFileSync(file, 'utf8');
  const objects = [];
  parseAllDocuments(text).forEach((doc, i) => {
    if (doc.errors.length > 0) {
      throw new Error(`${file}: document ${i + 1}: ${doc.errors[0].message}`);
    }
    const obj = doc.toJS();
    if (obj !== null && obj !== undefined) objects.push(obj);
  });
  return objects;
}

export function describe(obj) {
  return `${obj?.kind ?? '?'}/${obj?.metadata?.name ?? '?'}`;
}

// The workloads' pod templates: [{owner, template}] for StatefulSets, Deployments and Jobs.
export function podTemplates(objects) {
  return objects
    .filter((o) => ['StatefulSet', 'Deployment', 'Job', 'DaemonSet'].includes(o.kind))
    .map((o) => ({ owner: o, template: o.spec?.template ?? {} }));
}

// The top-level scalar fields of a text-format proto ("name: value" lines, comments dropped). Enough
// for the fields the checks compare (num_shards, num_workers, data_dir); nested messages are skipped.
export function textprotoScalars(text) {
  const fields = {};
  let depth = 0;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    if (depth === 0) {
      const m = /^([a-z_][a-z0-9_]*)\s*:\s*("(?:[^"\\]|\\.)*"|[^\s{]+)\s*$/.exec(line);
      if (m) fields[m[1]] = m[2].startsWith('"') ? JSON.parse(m[2]) : m[2];
    }
    depth += (line.match(/{/g) ?? []).length - (line.match(/}/g) ?? []).length;
  }
  return fields;
}

// The ConfigMap that carries job.textproto, and its top-level fields. Throws if there is not
// exactly one.
export function jobConfig(objects) {
  const maps = objects.filter((o) => o.kind === 'ConfigMap' && o.data?.['job.textproto'] !== undefined);
  if (maps.length !== 1) {
    throw new Error(`expected one ConfigMap with a job.textproto key, found ${maps.length}` +
                    (maps.length ? ` (${maps.map(describe).join(', ')})` : ''));
  }
  return { configMap: maps[0], fields: textprotoScalars(maps[0].data['job.textproto']) };
}

// The psrec role a container runs ("ps", "worker", "coordinator"), or null when it runs something
// else (a command of its own instead of the image's psrec entrypoint).
export function psrecRole(container) {
  if (container.command !== undefined) return null;
  const first = container.args?.[0];
  return typeof first === 'string' && !first.startsWith('-') ? first : null;
}

// "--name=value" or "--name" -> "name"; null for anything that is not a flag.
export function flagName(arg) {
  const m = /^--?([A-Za-z0-9_]+)(=|$)/.exec(arg);
  return m ? m[1] : null;
}

// The flags `psrec ROLE --help` lists. Throws naming the binary if it cannot run.
export function helpFlags(psrec, role) {
  const r = spawnSync(psrec, [role, '--help'], { encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run ${psrec} ${role} --help: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${psrec} ${role} --help exited ${r.status}: ${(r.stderr || '').trim()}`);
  }
  return parseHelpFlags(r.stdout);
}

// The flags in `psrec ROLE --help` output: lines "  --name (default: ...)".
export function parseHelpFlags(text) {
  return new Set([...text.matchAll(/^ {2}--([A-Za-z0-9_]+) \(default:/gm)].map((m) => m[1]));
}

// deploy/k8s/pending-flags.txt: "--flag role role ...  # why" lines. Returns Map(flag -> Set(roles)).
export function readPendingFlags(file) {
  const pending = new Map();
  readFileSync(file, 'utf8').split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const [flag, ...roles] = line.split(/\s+/);
    if (!flag.startsWith('--') || roles.length === 0) {
      throw new Error(`${file}:${i + 1}: expected "--flag role [role...]", got "${raw.trim()}"`);
    }
    pending.set(flag.slice(2), new Set(roles));
  });
  return pending;
}

// Kubernetes' $(VAR) expansion of command and args: $(NAME) becomes the variable's value when the
// container defines it, $$ is a literal $, and anything else is left as written.
export function expandVars(text, env) {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name) => {
    if (whole === '$$') return '$';
    return Object.hasOwn(env, name) ? env[name] : whole;
  });
}

// Whether a Service's selector (a map of labels) matches a pod template's labels.
export function selects(selector, labels) {
  const entries = Object.entries(selector ?? {});
  return entries.length > 0 && entries.every(([k, v]) => labels?.[k] === v);
}
