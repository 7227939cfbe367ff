// The checks no Kubernetes schema knows: that a rendered psrec job agrees with itself and with the
// psrec binary. Each returns problem strings naming the object; tests/deploy/k8s_checks_test.sh plants
// a mistake for each and expects it caught.
import {
  describe, flagName, helpFlags, jobConfig, podTemplates, psrecRole, readPendingFlags,
  selects,
} from './lib.mjs';

// [{owner, template, container, role}] for every container that runs psrec.
function psrecContainers(objects) {
  const found = [];
  for (const { owner, template } of podTemplates(objects)) {
    for (const container of template.spec?.containers ?? []) {
      const role = psrecRole(container);
      if (role !== null) found.push({ owner, template, container, role });
    }
  }
  return found;
}

function where(c) {
  return `${describe(c.owner)} container ${c.container.name}`;
}

function flagValue(container, flag) {
  const arg = (container.args ?? []).find((a) => a.startsWith(`--${flag}=`));
  return arg === undefined ? undefined : arg.slice(flag.length + 3);
}

// StatefulSet replicas == num_shards; the worker Job's parallelism and completions == num_workers;
// the coordinator's --ps names each shard's pod once, in shard order.
function checkSizes(objects, psrec) {
  const problems = [];
  const roles = (role) => psrec.filter((c) => c.role === role);
  if (psrec.length === 0) return problems;
  let config;
  try {
    config = jobConfig(objects);
  } catch (e) {
    return [e.message];
  }
  const from = `${describe(config.configMap)} job.textproto`;
  const shards = Number(config.fields.num_shards);
  const workers = Number(config.fields.num_workers);
  if (!(shards >= 1)) problems.push(`${from}: num_shards must be set and at least 1`);
  if (!(workers >= 1)) problems.push(`${from}: num_workers must be set and at least 1`);

  const servers = roles('ps');
  if (servers.length !== 1) problems.push(`expected one workload running psrec ps, found ${servers.length}`);
  for (const s of servers) {
    if (s.owner.kind !== 'StatefulSet') {
      problems.push(`${where(s)}: psrec ps must run in a StatefulSet (its ordinal is the shard), not a ${s.owner.kind}`);
    } else if ((s.owner.spec.replicas ?? 1) !== shards) {
      problems.push(`${describe(s.owner)}: replicas ${s.owner.spec.replicas ?? 1} differs from num_shards ${shards} in ${from}`);
    }
  }
  for (const w of roles('worker')) {
    const spec = w.owner.spec ?? {};
    if (w.owner.kind !== 'Job' || spec.completionMode !== 'Indexed') {
      problems.push(`${where(w)}: workers must be an Indexed Job (completionMode: Indexed), so that the index names the worker`);
    }
    for (const field of ['parallelism', 'completions']) {
      if (spec[field] !== workers) {
        problems.push(`${describe(w.owner)}: ${field} ${spec[field]} differs from num_workers ${workers} in ${from}`);
      }
    }
  }
  const coordinators = roles('coordinator');
  if (coordinators.length !== 1) problems.push(`expected one workload running psrec coordinator, found ${coordinators.length}`);
  const sts = servers[0]?.owner;
  for (const c of coordinators) {
    if (sts?.kind !== 'StatefulSet') break;
    const port = flagValue(servers[0].container, 'port');
    const want = Array.from({ length: shards }, (_, i) => `${sts.metadata.name}-${i}.${sts.spec.serviceName}:${port}`);
    const got = flagValue(c.container, 'ps');
    if (got !== want.join(',')) {
      problems.push(`${where(c)}: --ps=${got} should name the ${shards} servers in shard order: --ps=${want.join(',')}`);
    }
  }
  return problems;
}

// Every container of every workload uses one image, with an explicit tag.
function checkImages(objects) {
  const uses = new Map();
  for (const { owner, template } of podTemplates(objects)) {
    const spec = template.spec ?? {};
    for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
      const list = uses.get(c.image) ?? [];
      list.push(`${describe(owner)} container ${c.name}`);
      uses.set(c.image, list);
    }
  }
  const problems = [];
  if (uses.size > 1) {
    problems.push(`more than one image: ${[...uses].map(([img, who]) => `${img} (${who.join(', ')})`).join('; ')}`);
  }
  for (const [image, who] of uses) {
    if (!/:[^/]+$/.test(image ?? '') && !(image ?? '').includes('@')) {
      problems.push(`image ${image} has no tag (${who.join(', ')})`);
    }
  }
  return problems;
}

// Every argument after the role is --flag=value with a flag that `psrec ROLE --help` lists or that
// pending-flags.txt names for that role; a pending flag that --help already lists must leave the list.
// $(VAR) references must name a variable the container has.
function checkFlags(psrec, opts) {
  const problems = [];
  const pending = readPendingFlags(opts.pending);
  const help = new Map();
  for (const c of psrec) {
    if (!help.has(c.role)) {
      try {
        help.set(c.role, helpFlags(opts.psrec, c.role));
      } catch (e) {
        problems.push(`${where(c)}: role ${c.role}: ${e.message}`);
        help.set(c.role, null);
      }
    }
    const known = help.get(c.role);
    if (known === null) continue;
    const env = Object.fromEntries((c.container.env ?? []).map((e) => [e.name, 'set']));
    if (c.owner.kind === 'Job' && c.owner.spec?.completionMode === 'Indexed') env.JOB_COMPLETION_INDEX = 'set';
    for (const arg of c.container.args.slice(1)) {
      const name = flagName(arg);
      if (name === null || !arg.startsWith('--')) {
        problems.push(`${where(c)}: argument "${arg}" is not a --flag`);
        continue;
      }
      if (!known.has(name) && !pending.get(name)?.has(c.role)) {
        problems.push(`${where(c)}: --${name} is not a flag of psrec ${c.role} (its --help does not list it, nor does ${opts.pending})`);
      }
      const unset = [...arg.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)].map((m) => m[1]).filter((v) => !env[v]);
      if (unset.length > 0) problems.push(`${where(c)}: ${arg} uses $(${unset[0]}), which the container does not define`);
    }
  }
  for (const [flag, roles] of pending) {
    for (const role of roles) {
      if (help.get(role)?.has(flag)) {
        problems.push(`${opts.pending}: psrec ${role} --help now lists --${flag}: remove it from the pending list`);
      }
    }
  }
  return problems;
}

// The probes ask the port --health_port serves, and the scrape annotation names --metrics_port.
function checkProbesAndScrape(psrec) {
  const problems = [];
  for (const c of psrec) {
    const health = flagValue(c.container, 'health_port');
    for (const probe of ['readinessProbe', 'livenessProbe']) {
      const port = c.container[probe]?.grpc?.port;
      if (health === undefined) {
        if (port !== undefined) problems.push(`${where(c)}: ${probe} asks gRPC port ${port}, but there is no --health_port`);
      } else if (String(port) !== health) {
        problems.push(`${where(c)}: ${probe} ${port === undefined ? 'is not a gRPC probe' : `asks port ${port}`}, but --health_port=${health}`);
      }
    }
    const metrics = flagValue(c.container, 'metrics_port');
    const annotations = c.template.metadata?.annotations ?? {};
    if (metrics !== undefined && (annotations['prometheus.io/scrape'] !== 'true' || annotations['prometheus.io/port'] !== metrics)) {
      problems.push(`${where(c)}: --metrics_port=${metrics}, but the pod's prometheus.io/scrape is ${annotations['prometheus.io/scrape']} and prometheus.io/port ${annotations['prometheus.io/port']}`);
    }
  }
  return problems;
}

// Every Service selects a pod and targets ports those pods have; a StatefulSet's serviceName is a
// Service that selects its pods.
function checkServices(objects) {
  const problems = [];
  const templates = podTemplates(objects);
  const services = objects.filter((o) => o.kind === 'Service');
  for (const svc of services) {
    const selected = templates.filter((t) => selects(svc.spec?.selector, t.template.metadata?.labels));
    if (selected.length === 0) {
      problems.push(`${describe(svc)}: selector ${JSON.stringify(svc.spec?.selector ?? {})} selects no pod`);
      continue;
    }
    for (const port of svc.spec?.ports ?? []) {
      const target = port.targetPort ?? port.port;
      const has = selected.every((t) => (t.template.spec?.containers ?? []).some((c) =>
        (c.ports ?? []).some((p) => p.name === target || p.containerPort === target)));
      if (!has) problems.push(`${describe(svc)}: port ${port.name ?? port.port} targets ${target}, which a selected pod does not expose`);
    }
  }
  for (const { owner, template } of templates.filter((t) => t.owner.kind === 'StatefulSet')) {
    const svc = services.find((s) => s.metadata.name === owner.spec.serviceName);
    if (!svc || !selects(svc.spec?.selector, template.metadata?.labels)) {
      problems.push(`${describe(owner)}: serviceName ${owner.spec.serviceName} is not a Service that selects its pods`);
    }
  }
  return problems;
}

// Volumes name ConfigMaps, Secrets and PVCs that the render holds or that are made outside it
// (--external); --config points into a mounted ConfigMap key.
function checkReferences(objects, psrec, opts) {
  const problems = [];
  const have = new Set([...objects.map(describe), ...opts.external]);
  for (const { owner, template } of podTemplates(objects)) {
    for (const v of template.spec?.volumes ?? []) {
      const ref = v.configMap ? `ConfigMap/${v.configMap.name}`
        : v.secret ? `Secret/${v.secret.secretName}`
        : v.persistentVolumeClaim ? `PersistentVolumeClaim/${v.persistentVolumeClaim.claimName}` : null;
      if (ref && !have.has(ref)) problems.push(`${describe(owner)}: volume ${v.name} names ${ref}, which is neither rendered nor listed as made outside`);
    }
  }
  for (const c of psrec) {
    const config = flagValue(c.container, 'config');
    if (config === undefined) continue;
    const mount = (c.container.volumeMounts ?? []).find((m) => config.startsWith(`${m.mountPath.replace(/\/$/, '')}/`));
    const volume = (c.template.spec?.volumes ?? []).find((v) => v.name === mount?.name);
    const map = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === volume?.configMap?.name);
    const key = mount ? config.slice(mount.mountPath.replace(/\/$/, '').length + 1) : null;
    if (!map || map.data?.[key] === undefined) {
      problems.push(`${where(c)}: --config=${config} is not a key of a ConfigMap mounted there`);
    }
  }
  return problems;
}

export function checkJob(objects, opts) {
  const psrec = psrecContainers(objects);
  return [
    ...checkSizes(objects, psrec),
    ...checkImages(objects),
    ...checkFlags(psrec, opts),
    ...checkProbesAndScrape(psrec),
    ...checkServices(objects),
    ...checkReferences(objects, psrec, opts),
  ];
}
