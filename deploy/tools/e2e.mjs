// Runs rendered manifests as podman containers the way a cluster would (controllers.mjs for the
// StatefulSet and Job controllers, kubelet.mjs for the kubelet), on an internal network, and checks
// the job's result. scripts/k8s_e2e.sh builds the image, renders the overlay and calls this:
//
//   node e2e.mjs --rendered=FILE --run=ID --workdir=DIR --pending=FILE --secret=NAME=DIR
//        [--claim=NAME=HOSTDIR]... [--namespace=default] [--timeout=SECONDS]
//        [--expect-mae=X --tolerance=0.01] [--scenario=clean|kill-ps|kill-coord]
//
// Every container, volume and the network carry the label psrec-e2e=ID and are removed on exit,
// also on SIGINT and SIGTERM. Pod logs are streamed with a [pod] prefix and kept in DIR/logs.
//
// The pods' names are served by the run's own cluster DNS (dns.mjs, in the network namespace of a
// paused container on the network, as CoreDNS runs in a pod), not by podman's aardvark-dns: the
// network is made with --disable-dns. Each pod's address is published when its container is running
// with one and withdrawn when it exits, so a restarted pod resolves, under the same names, to its new
// address (deploy/README.md: aardvark-dns 1.4 went silent after container starts and kills).
import { execFile, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createWriteStream, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { JobController, StatefulSetController } from './controllers.mjs';
import { podmanCreateArgs, podNames } from './kubelet.mjs';
import { describe, loadObjects, parseHelpFlags, psrecRole, readPendingFlags } from './lib.mjs';

const execFileP = promisify(execFile);

function parseArgs(argv) {
  const o = { claims: new Map(), secrets: new Map(), namespace: 'default', timeout: 900,
              tolerance: 0.01, scenario: 'clean', expectMae: null };
  for (const arg of argv) {
    const [, key, value] = /^--([a-z-]+)=(.*)$/.exec(arg) ?? [];
    const pair = () => {
      const i = value.indexOf('=');
      if (i <= 0) throw new Error(`--${key} takes NAME=PATH, not ${value}`);
      return [value.slice(0, i), value.slice(i + 1)];
    };
    switch (key) {
      case 'rendered': o.rendered = value; break;
      case 'run': o.run = value; break;
      case 'workdir': o.workdir = value; break;
      case 'pending': o.pending = value; break;
      case 'namespace': o.namespace = value; break;
      case 'timeout': o.timeout = Number(value); break;
      case 'expect-mae': o.expectMae = Number(value); break;
      case 'tolerance': o.tolerance = Number(value); break;
      case 'scenario': o.scenario = value; break;
      case 'secret': o.secrets.set(...pair()); break;
      case 'claim': o.claims.set(...pair()); break;
      default: throw new Error(`e2e.mjs: unexpected argument ${arg}`);
    }
  }
  for (const k of ['rendered', 'run', 'workdir', 'pending']) {
    if (!o[k]) throw new Error(`e2e.mjs: --${k} is required`);
  }
  return o;
}

function log(msg) {
  console.log(`e2e: ${msg}`);
}

async function podman(...args) {
  try {
    const { stdout } = await execFileP('podman', args, { maxBuffer: 64 << 20 });
    return stdout.trim();
  } catch (e) {
    throw new Error(`podman ${args.slice(0, 2).join(' ')} failed: ${(e.stderr || e.message).trim()}`);
  }
}

// Kills, removes and deletes everything labelled with this run. Safe to call more than once.
async function cleanup(run, network, dns) {
  if (dns && dns.exitCode === null) dns.kill();
  const label = `label=psrec-e2e=${run}`;
  const ids = (await podman('ps', '-aq', '--filter', label).catch(() => '')).split('\n').filter(Boolean);
  if (ids.length) await podman('rm', '-f', '-t', '0', ...ids).catch((e) => log(e.message));
  const vols = (await podman('volume', 'ls', '-q', '--filter', label).catch(() => '')).split('\n').filter(Boolean);
  if (vols.length) await podman('volume', 'rm', '-f', ...vols).catch((e) => log(e.message));
  await podman('network', 'rm', '-f', network).catch(() => {});
}

class Run {
  constructor(opts) {
    this.opts = opts;
    this.objects = loadObjects(opts.rendered);
    this.network = `psrec-e2e-${opts.run}`;
    this.services = this.objects.filter((o) => o.kind === 'Service');
    this.configMaps = new Map(this.objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, o]));
    this.claims = new Map();  // claim name -> --mount prefix
    this.handles = [];
    this.logsDir = join(opts.workdir, 'logs');
    mkdirSync(this.logsDir, { recursive: true });
    this.secrets = new Map();
    for (const [name, dir] of opts.secrets) {
      this.secrets.set(name, Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))])));
    }
    const images = new Set(this.objects.flatMap((o) => (o.spec?.template?.spec?.containers ?? []).map((c) => c.image)));
    if (images.size !== 1) throw new Error(`expected one image in ${opts.rendered}, found ${[...images].join(', ')}`);
    this.image = [...images][0];
    this.pending = readPendingFlags(opts.pending);
    this.helpCache = new Map();
    this.controllers = [];
    this.interrupted = false;
    this.lines = new EventEmitter();
    this.lines.setMaxListeners(0);
  }

  // Ctrl-C: no more restarts or replacements, and no reports of the containers the cleanup kills.
  interrupt() {
    this.interrupted = true;
    for (const c of this.controllers) c.stop();
  }

  // Resolves with the first line of a pod whose name matches podPattern that matches linePattern.
  waitForLine(podPattern, linePattern) {
    return new Promise((resolve) => {
      const listener = (pod, line) => {
        if (podPattern.test(pod) && linePattern.test(line)) {
          this.lines.off('line', listener);
          resolve(line);
        }
      };
      this.lines.on('line', listener);
    });
  }

  // Whether to leave a pending flag out: the image's psrec does not list it yet.
  dropFlag(role, flag) {
    if (!this.pending.get(flag)?.has(role)) return false;
    const known = this.helpCache.get(role);
    if (known.has(flag)) return false;
    const key = `${role} --${flag}`;
    if (!this.helpCache.has(key)) {
      this.helpCache.set(key, true);
      log(`leaving --${flag} out of psrec ${role}'s arguments: the image's psrec does not have it yet (deploy/k8s/pending-flags.txt)`);
    }
    return true;
  }

  async prepare() {
    for (const o of this.objects) {
      for (const c of o.spec?.template?.spec?.containers ?? []) {
        const role = psrecRole(c);
        if (role && !this.helpCache.has(role)) this.helpCache.set(role, await this.imageHelp(role));
      }
    }
    await podman('network', 'create', '--internal', '--disable-dns', '--label', `psrec-e2e=${this.opts.run}`,
                 this.network);
    log(`network ${this.network} (internal: no route out of it)`);
    await this.startDns();
    for (const pvc of this.objects.filter((o) => o.kind === 'PersistentVolumeClaim')) {
      const name = `psrec-e2e-${this.opts.run}-${pvc.metadata.name}`;
      await podman('volume', 'create', '--label', `psrec-e2e=${this.opts.run}`, name);
      // fsGroup: the kubelet makes a volume group-owned by the pod's fsGroup, setgid, group-writable.
      const groups = new Set(this.objects.map((o) => o.spec?.template?.spec?.securityContext?.fsGroup).filter((g) => g !== undefined));
      const dir = await podman('volume', 'inspect', '--format', '{{.Mountpoint}}', name);
      for (const g of groups) await execFileP('chown', [`0:${g}`, dir]);
      await execFileP('chmod', ['2775', dir]);
      this.claims.set(pvc.metadata.name, { mount: `type=volume,source=${name}`, host: dir });
    }
    for (const [claim, dir] of this.opts.claims) {
      // Made outside the manifests (the ratings): the host's directory, never written.
      this.claims.set(claim, { mount: `type=bind,source=${dir}`, host: dir, readOnly: true });
    }
  }

  // The cluster DNS: dns.mjs run by the host's node in the network namespace of a container that only
  // pauses (catatonit -P, what podman's pod infra containers run), fed "POD ADDRESS NAME..." lines.
  async startDns() {
    const name = `psrec-e2e-${this.opts.run}-cluster-dns`;
    await podman('run', '-d', '--name', name, '--network', this.network,
                 '--label', `psrec-e2e=${this.opts.run}`, '--read-only', '--cap-drop', 'all',
                 '--mount', 'type=bind,source=/usr/bin/catatonit,destination=/catatonit,ro=true',
                 '--entrypoint', '["/catatonit","-P"]', this.image);
    const [pid, address] = (await podman('inspect', '--format',
      `{{.State.Pid}} {{(index .NetworkSettings.Networks "${this.network}").IPAddress}}`, name)).split(' ');
    const logFile = createWriteStream(join(this.logsDir, 'cluster-dns.log'));
    this.dns = spawn('nsenter', [`--net=/proc/${pid}/ns/net`, process.execPath,
                                 new URL('./dns.mjs', import.meta.url).pathname, '--stdin'],
                     { stdio: ['pipe', 'ignore', 'pipe'] });
    this.dns.stdin.on('error', () => {});  // it exited; the exit handler says so
    await new Promise((resolve, reject) => {
      let rest = '';
      this.dns.stderr.on('data', (chunk) => {
        logFile.write(chunk);
        rest += chunk;
        if (/serving on port 53/.test(rest)) resolve();
      });
      this.dns.on('exit', (code) => {
        if (!this.interrupted && !this.finished) {
          log(`cluster DNS exited ${code}: see ${join(this.logsDir, 'cluster-dns.log')}`);
        }
        reject(new Error(`the cluster DNS (dns.mjs) exited ${code} before serving`));
      });
    });
    this.dnsServer = address;
    log(`cluster DNS at ${address} (deploy/tools/dns.mjs; podman's own DNS is off on this network)`);
  }

  // Tells the cluster DNS a pod's address (null: it has none, its container is not running).
  publish(handle, address) {
    if (!this.dns || this.dns.exitCode !== null) return;
    this.dns.stdin.write(address ? `${handle.pod} ${address} ${handle.names.join(' ')}\n` : `${handle.pod} -\n`);
  }

  // Publishes the address of a container that `podman start` has been asked to start, once it runs
  // with one; gives up when the start is over (handle.starts moved on).
  async publishWhenRunning(handle, start) {
    const format = `{{.State.Running}} {{(index .NetworkSettings.Networks "${this.network}").IPAddress}}`;
    while (handle.starts === start) {
      const [running, address] = (await podman('inspect', '--format', format, handle.name).catch(() => '')).split(' ');
      if (handle.starts !== start) return;
      if (running === 'true' && address) {
        this.publish(handle, address);
        return;
      }
      await new Promise((resolve) => { setTimeout(resolve, 100); });
    }
  }

  async imageHelp(role) {
    return parseHelpFlags(await podman('run', '--rm', '--network', 'none', this.image, role, '--help'));
  }

  claimMount(claim, readOnly) {
    const c = this.claims.get(claim);
    if (!c) throw new Error(`PersistentVolumeClaim ${claim} is neither rendered nor given with --claim`);
    return `${c.mount}${readOnly || c.readOnly ? ',ro=true' : ''}`;
  }

  // The runtime the controllers drive.
  runtime() {
    return {
      create: async (pod) => {
        const name = `psrec-e2e-${this.opts.run}-${pod.metadata.name}`;
        const names = podNames(pod, this.services, this.opts.namespace);
        const { args } = podmanCreateArgs(pod, {
          name, network: this.network, dns: { server: this.dnsServer }, image: this.image,
          configMaps: this.configMaps, secrets: this.secrets, claimMount: (c, ro) => this.claimMount(c, ro),
          podDir: join(this.opts.workdir, 'pods', pod.metadata.name),
          dropFlag: (role, flag) => this.dropFlag(role, flag),
          labels: { 'psrec-e2e': this.opts.run, 'psrec-e2e-pod': pod.metadata.name },
        });
        await podman(...args);
        const handle = { name, pod: pod.metadata.name, names, running: false, starts: 0 };
        this.handles.push(handle);
        log(`pod ${pod.metadata.name}: ${names.length ? 'DNS ' + names.filter((n) => !n.includes('.svc')).join(' ') : 'no Service'}`);
        return handle;
      },
      // podman start --attach returns when the container exits, with its exit code; the output is
      // streamed with the pod's name in front.
      start: (handle) => new Promise((resolve) => {
        const file = createWriteStream(join(this.logsDir, `${handle.pod}.log`), { flags: 'a' });
        const child = spawn('podman', ['start', '--attach', handle.name], { stdio: ['ignore', 'pipe', 'pipe'] });
        handle.running = true;
        const start = ++handle.starts;
        if (handle.names.length) this.publishWhenRunning(handle, start);
        for (const stream of [child.stdout, child.stderr]) {
          let rest = '';
          stream.on('data', (chunk) => {
            const lines = (rest + chunk).split('\n');
            rest = lines.pop();
            for (const l of lines) {
              process.stdout.write(`[${handle.pod}] ${l}\n`);
              file.write(`${l}\n`);
              this.lines.emit('line', handle.pod, l);
            }
          });
        }
        child.on('close', (code) => {
          handle.starts += 1;  // stops publishWhenRunning of this start
          if (handle.names.length) this.publish(handle, null);
          handle.running = false;
          file.end();
          resolve(code);
        });
      }),
      log: (msg) => { if (!this.interrupted) log(msg); },
      sleep: (ms, signal) => new Promise((resolve) => {
        if (signal.aborted) return resolve(false);
        const t = setTimeout(() => resolve(true), ms);
        signal.addEventListener('abort', () => { clearTimeout(t); resolve(false); }, { once: true });
      }),
    };
  }

  // The host path of a file a pod writes at `path` on one of its PVCs.
  hostPath(template, container, path) {
    const mount = (container.volumeMounts ?? []).find((m) => path.startsWith(`${m.mountPath}/`));
    const volume = (template.spec.volumes ?? []).find((v) => v.name === mount?.name);
    const claim = this.claims.get(volume?.persistentVolumeClaim?.claimName);
    if (!claim) throw new Error(`${path} is not on a PersistentVolumeClaim of the pod`);
    return join(claim.host, path.slice(mount.mountPath.length + 1));
  }

  async execute(scenario) {
    const runtime = this.runtime();
    const sets = this.objects.filter((o) => o.kind === 'StatefulSet').map((s) => new StatefulSetController(s, this.opts.namespace, runtime));
    const jobs = this.objects.filter((o) => o.kind === 'Job').map((j) => new JobController(j, this.opts.namespace, runtime));
    this.controllers = [...sets, ...jobs];
    const start = Date.now();
    for (const s of sets) s.start();
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${this.opts.timeout}s waiting for ${jobs.map((j) => describe(j.job)).join(', ')} to complete`)), this.opts.timeout * 1000);
    });
    try {
      // The scenario acts while the Jobs run; the Jobs completing before it has acted is a failure, not
      // a wait for an event that cannot come.
      let acted = false;
      const acting = scenario(this).then(() => { acted = true; });
      await Promise.race([Promise.all(jobs.map((j) => j.run())), acting.then(() => new Promise(() => {})), timeout]);
      if (!acted) throw new Error('every Job completed before the scenario had acted');
      if (this.interrupted) throw new Error('interrupted');
      log(`every Job completed in ${((Date.now() - start) / 1000).toFixed(1)}s`);
    } finally {
      clearTimeout(timer);
      for (const c of [...sets, ...jobs]) c.stop();
      const running = this.handles.filter((h) => h.running).map((h) => h.name);
      const grace = 30;
      if (running.length) await podman('stop', '-t', String(grace), ...running).catch((e) => log(e.message));
    }
    return { sets, jobs };
  }

  metrics() {
    for (const job of this.objects.filter((o) => o.kind === 'Job')) {
      const c = job.spec.template.spec.containers[0];
      const out = (c.args ?? []).find((a) => a.startsWith('--metrics_out='));
      if (psrecRole(c) === 'coordinator' && out) {
        const file = this.hostPath(job.spec.template, c, out.slice('--metrics_out='.length));
        return { file, metrics: JSON.parse(readFileSync(file, 'utf8')) };
      }
    }
    throw new Error('no coordinator with --metrics_out in the manifests');
  }
}

// kill-coord kills the coordinator's container (SIGKILL) once it has logged epoch 3. The Job makes a
// new pod (restartPolicy Never, within backoffLimit), whose --auto_resume continues from the last
// complete checkpoint in /ckpt (fresh rows if none yet), and the live servers and workers rejoin it.
// Its "continuing after epoch" or "no complete checkpoint" line stands for the rollback.
async function killCoordinator(run) {
  await run.waitForLine(/^psrec-coordinator/, /\bepoch 3\/\d+ train loss/);
  const handle = run.handles.find((h) => /^psrec-coordinator/.test(h.pod) && h.running);
  if (!handle) throw new Error('kill-coord: no coordinator pod is running at epoch 3');
  run.lines.on('line', (pod, line) => {
    if (/^psrec-coordinator/.test(pod) && pod !== handle.pod && /--auto_resume: /.test(line)) {
      run.rollback ??= line;
    }
  });
  log(`kill-coord: SIGKILL to ${handle.pod}`);
  await podman('kill', '--signal', 'KILL', handle.name);
  run.killed = handle.pod;
}

// What a scenario does while the job runs, given the Run; the job must still complete with the expected
// MAE. kill-ps kills server 1's container (SIGKILL, as a node failure or an OOM kill would) once the
// coordinator has logged epoch 3: the StatefulSet controller restarts it (restartPolicy Always), the
// coordinator sees a server that restarted and rolls the job back to its last checkpoint.
const kScenarios = {
  clean: async () => {},
  'kill-ps': async (run) => {
    await run.waitForLine(/^psrec-coordinator/, /\bepoch 3\/\d+ train loss/);
    const handle = run.handles.find((h) => h.pod === 'psrec-ps-1' && h.running);
    if (!handle) throw new Error('kill-ps: psrec-ps-1 is not running at epoch 3');
    run.lines.on('line', (pod, line) => {
      if (/^psrec-coordinator/.test(pod) && /rolling back to/.test(line)) run.rollback ??= line;
    });
    log('kill-ps: SIGKILL to psrec-ps-1');
    await podman('kill', '--signal', 'KILL', handle.name);
    run.killed = 'psrec-ps-1';
  },
  'kill-coord': killCoordinator,
};

let signalled = false;

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!Object.hasOwn(kScenarios, opts.scenario)) {
    throw new Error(`scenario ${opts.scenario} is not one of ${Object.keys(kScenarios).join(', ')}`);
  }
  const run = new Run(opts);
  const onSignal = async (sig) => {
    if (signalled) return;
    signalled = true;
    log(`${sig}: removing the run's containers, volumes and network`);
    run.interrupt();
    await cleanup(opts.run, run.network, run.dns);
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    log(`image ${run.image}; not emulated: resource requests (no scheduler), probes, readiness gating of Service names`);
    await run.prepare();
    const { sets } = await run.execute(kScenarios[opts.scenario]);
    for (const s of sets) {
      for (const [pod, n] of s.restarts) {
        log(`pod ${pod}: ${n} restarts`);
        if (pod === run.killed && n < 1) throw new Error(`${pod} was killed but never restarted`);
      }
    }
    if (run.killed && !run.rollback) throw new Error(`${run.killed} was killed but the coordinator never rolled back`);
    if (run.rollback) log(`the coordinator rolled back: ${run.rollback.trim()}`);
    const { file, metrics } = run.metrics();
    const mae = metrics.final?.test_mae;
    const rmse = metrics.final?.test_rmse;
    log(`final test MAE ${mae} RMSE ${rmse} (${file})`);
    if (typeof mae !== 'number') throw new Error(`${file} has no final.test_mae`);
    if (opts.expectMae !== null && Math.abs(mae - opts.expectMae) > opts.tolerance) {
      throw new Error(`test MAE ${mae} is not within ${opts.tolerance} of the expected ${opts.expectMae}`);
    }
    log(`PASS (${opts.scenario})`);
  } finally {
    run.finished = true;
    if (!signalled) await cleanup(opts.run, run.network, run.dns);
  }
}

main().catch((e) => {
  if (signalled) return;  // onSignal cleans up and exits 130
  console.error(`e2e: FAIL: ${e.message}`);
  process.exit(1);
});
