// The kubelet's part of scripts/k8s_e2e.sh: a pod (metadata and spec as a controller made it) becomes
// one `podman create` command line, the way a kubelet would run it. What is emulated:
//   - hostname, and DNS names on the job's network: <hostname>.<subdomain> for a pod with a subdomain
//     that a headless Service names, and <service> for every Service that selects the pod, each also
//     with .<namespace>, .<namespace>.svc and .<namespace>.svc.cluster.local (served by the runner's
//     cluster DNS, deploy/tools/dns.mjs); the pod's resolv.conf as a kubelet writes it for
//     dnsPolicy ClusterFirst: that server, the namespace's search path and ndots:5;
//   - env: value, fieldRef (metadata.name, .namespace, .labels['k'], .annotations['k'], spec.nodeName,
//     spec.serviceAccountName) and configMapKeyRef; $(VAR) in command and args;
//   - volumes: configMap and secret as read-only files (defaultMode, group fsGroup), each
//     persistentVolumeClaim as a shared volume (group-writable by fsGroup), emptyDir;
//   - securityContext: runAsUser/Group, fsGroup, supplementalGroups, runAsNonRoot,
//     readOnlyRootFilesystem, allowPrivilegeEscalation, capabilities; resource limits.
// Not emulated (said by the runner): resource requests (no scheduler), probes, Service port
// remapping (a Service port must equal its target port), readiness gating of Service names.
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expandVars, selects } from './lib.mjs';

export class Unsupported extends Error {}

// DNS names of a pod on the job's network.
export function podNames(pod, services, namespace) {
  const qualify = (name) => [name, `${name}.${namespace}`, `${name}.${namespace}.svc`,
                             `${name}.${namespace}.svc.cluster.local`];
  const names = [];
  for (const svc of services) {
    if (!selects(svc.spec?.selector, pod.metadata.labels)) continue;
    const headless = svc.spec?.clusterIP === 'None';
    if (!headless) {
      for (const port of svc.spec?.ports ?? []) {
        const target = resolvePort(pod, port.targetPort ?? port.port);
        if (target !== port.port) {
          throw new Unsupported(`Service/${svc.metadata.name} maps port ${port.port} to ${target}; ` +
                                'the e2e gives Services DNS names, not port mappings');
        }
      }
    }
    names.push(...qualify(svc.metadata.name));
    if (headless && pod.spec.subdomain === svc.metadata.name) {
      names.push(...qualify(`${pod.spec.hostname}.${svc.metadata.name}`));
    }
  }
  return names;
}

function resolvePort(pod, target) {
  if (typeof target === 'number') return target;
  for (const c of pod.spec.containers) {
    const p = (c.ports ?? []).find((x) => x.name === target);
    if (p) return p.containerPort;
  }
  throw new Unsupported(`no container port named ${target} in pod ${pod.metadata.name}`);
}

function fieldValue(pod, path) {
  let m;
  if (path === 'metadata.name') return pod.metadata.name;
  if (path === 'metadata.namespace') return pod.metadata.namespace;
  if (path === 'spec.nodeName') return 'psrec-e2e-node';
  if (path === 'spec.serviceAccountName') return pod.spec.serviceAccountName ?? 'default';
  if ((m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path))) {
    return pod.metadata[m[1]]?.[m[2]] ?? '';
  }
  throw new Unsupported(`fieldRef ${path} is not emulated`);
}

// The container's environment as the kubelet builds it, in order, $(VAR) expanded against the
// variables before it.
export function containerEnv(pod, container, configMaps) {
  const env = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) {
      env[e.name] = expandVars(e.value, env);
    } else if (e.valueFrom?.fieldRef) {
      env[e.name] = fieldValue(pod, e.valueFrom.fieldRef.fieldPath);
    } else if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef;
      const value = configMaps.get(ref.name)?.data?.[ref.key];
      if (value === undefined) throw new Unsupported(`env ${e.name}: ConfigMap ${ref.name} has no key ${ref.key}`);
      env[e.name] = value;
    } else {
      throw new Unsupported(`env ${e.name}: only value, fieldRef and configMapKeyRef are emulated`);
    }
  }
  return env;
}

// "500m" -> 0.5, "2" -> 2.
function cpus(q) {
  const s = String(q);
  return s.endsWith('m') ? Number(s.slice(0, -1)) / 1000 : Number(s);
}

// "512Mi" -> bytes.
function bytes(q) {
  const m = /^([0-9.]+)([KMGT]i?|)$/.exec(String(q));
  if (!m) throw new Unsupported(`memory quantity ${q} is not emulated`);
  const unit = { '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
  return Math.round(Number(m[1]) * unit[m[2]]);
}

// Files of a configMap or secret volume in `dir`: readable by fsGroup as the kubelet makes them.
function writeFiles(dir, data, mode, fsGroup) {
  mkdirSync(dir, { recursive: true });
  for (const [key, value] of Object.entries(data)) {
    const file = join(dir, key);
    writeFileSync(file, value);
    chmodSync(file, mode);
    if (fsGroup !== undefined) chownSync(file, 0, fsGroup);
  }
  chmodSync(dir, 0o755);
}

// podman create arguments for the pod's one container. `ctx`: {name, network, dns: {server}, image,
// configMaps, secrets (name -> {key: Buffer}), claimMount(claimName, readOnly) -> --mount value, podDir,
// dropFlag(role, flag) -> bool, labels}.
export function podmanCreateArgs(pod, ctx) {
  if (pod.spec.containers.length !== 1 || (pod.spec.initContainers ?? []).length > 0) {
    throw new Unsupported(`pod ${pod.metadata.name}: the e2e runs pods of exactly one container`);
  }
  const c = pod.spec.containers[0];
  const psc = pod.spec.securityContext ?? {};
  const sc = c.securityContext ?? {};
  const args = ['create', '--name', ctx.name, '--network', ctx.network, '--hostname', pod.spec.hostname];
  if ((pod.spec.dnsPolicy ?? 'ClusterFirst') !== 'ClusterFirst') {
    throw new Unsupported(`pod ${pod.metadata.name}: only dnsPolicy ClusterFirst is emulated`);
  }
  // dnsPolicy ClusterFirst: the cluster's DNS server, search path and options, as a kubelet writes them.
  args.push('--dns', ctx.dns.server);
  for (const domain of [`${pod.metadata.namespace}.svc.cluster.local`, 'svc.cluster.local', 'cluster.local']) {
    args.push('--dns-search', domain);
  }
  args.push('--dns-option', 'ndots:5');
  for (const [k, v] of Object.entries(ctx.labels)) args.push('--label', `${k}=${v}`);

  const env = containerEnv(pod, c, ctx.configMaps);
  for (const [k, v] of Object.entries(env)) args.push('--env', `${k}=${v}`);

  const uid = sc.runAsUser ?? psc.runAsUser;
  const gid = sc.runAsGroup ?? psc.runAsGroup;
  if ((sc.runAsNonRoot ?? psc.runAsNonRoot) && uid === 0) {
    throw new Unsupported(`pod ${pod.metadata.name}: runAsNonRoot with runAsUser 0`);
  }
  if (uid !== undefined) args.push('--user', gid !== undefined ? `${uid}:${gid}` : String(uid));
  for (const g of [psc.fsGroup, ...(psc.supplementalGroups ?? [])].filter((x) => x !== undefined)) {
    args.push('--group-add', String(g));
  }
  if (sc.readOnlyRootFilesystem) args.push('--read-only', '--read-only-tmpfs=false');
  if (sc.allowPrivilegeEscalation === false) args.push('--security-opt', 'no-new-privileges');
  for (const cap of sc.capabilities?.drop ?? []) args.push('--cap-drop', cap.toLowerCase());
  for (const cap of sc.capabilities?.add ?? []) args.push('--cap-add', cap.toLowerCase());
  if (sc.privileged) throw new Unsupported('privileged containers are not emulated');

  const limits = c.resources?.limits ?? {};
  if (limits.cpu !== undefined) args.push('--cpus', String(cpus(limits.cpu)));
  if (limits.memory !== undefined) args.push('--memory', `${bytes(limits.memory)}b`);

  const volumes = new Map((pod.spec.volumes ?? []).map((v) => [v.name, v]));
  for (const mount of c.volumeMounts ?? []) {
    const v = volumes.get(mount.name);
    if (!v) throw new Unsupported(`volumeMount ${mount.name} names no volume`);
    const dest = mount.mountPath;
    const dir = join(ctx.podDir, 'volumes', v.name);
    if (v.configMap || v.secret) {
      const source = v.configMap ? ctx.configMaps.get(v.configMap.name)?.data
                                 : ctx.secrets.get(v.secret.secretName);
      if (!source) throw new Unsupported(`volume ${v.name}: ${v.configMap ? 'ConfigMap ' + v.configMap.name : 'Secret ' + v.secret.secretName} is missing`);
      const mode = (v.configMap ?? v.secret).defaultMode ?? 0o644;
      writeFiles(dir, source, mode, psc.fsGroup);
      args.push('--mount', `type=bind,source=${dir},destination=${dest},ro=true`);
    } else if (v.persistentVolumeClaim) {
      const ro = Boolean(mount.readOnly || v.persistentVolumeClaim.readOnly);
      args.push('--mount', `${ctx.claimMount(v.persistentVolumeClaim.claimName, ro)},destination=${dest}`);
    } else if (v.emptyDir) {
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o777);
      args.push('--mount', `type=bind,source=${dir},destination=${dest}${mount.readOnly ? ',ro=true' : ''}`);
    } else {
      throw new Unsupported(`volume ${v.name}: only configMap, secret, persistentVolumeClaim and emptyDir are emulated`);
    }
  }

  if (c.command) args.push('--entrypoint', JSON.stringify(c.command.map((a) => expandVars(a, env))));
  args.push(ctx.image);
  const role = c.command ? null : c.args?.[0];
  for (const a of (c.args ?? []).map((x) => expandVars(x, env))) {
    const flag = /^--([A-Za-z0-9_]+)(=|$)/.exec(a)?.[1];
    if (role && flag && ctx.dropFlag(role, flag)) continue;
    args.push(a);
  }
  return { args, container: c };
}
