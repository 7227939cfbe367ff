// The controllers' part of scripts/k8s_e2e.sh: which pods exist, what they are called and labelled,
// and what happens when their container exits.
//   StatefulSet: pods <name>-<ordinal>, hostname = pod name, subdomain = serviceName, labelled with
//     apps.kubernetes.io/pod-index; restartPolicy Always, so an exited container is restarted in its
//     pod after the kubelet's back-off (10 s, doubling, at most 300 s).
//   Job: pods <name>-<random>, or <name>-<index>-<random> with hostname <name>-<index> when
//     completionMode is Indexed (then also the job-completion-index label and annotation and
//     JOB_COMPLETION_INDEX in every container's env). restartPolicy Never: a failed pod is replaced
//     until more than backoffLimit pods have failed, or at once fails the Job when a podFailurePolicy
//     FailJob rule matches its exit code. OnFailure restarts the container in place, counted the same.
import { randomBytes } from 'node:crypto';

const kBackoffStartMs = 10_000;
const kBackoffMaxMs = 300_000;

function backoffMs(restarts) {
  return Math.min(kBackoffStartMs * 2 ** Math.max(0, restarts - 1), kBackoffMaxMs);
}

function suffix() {
  // Kubernetes' generateName: 5 characters from a consonant-and-digit alphabet.
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...randomBytes(5)].map((b) => alphabet[b % alphabet.length]).join('');
}

function podFrom(template, name, namespace, extraLabels, extraAnnotations, hostname, subdomain) {
  const spec = structuredClone(template.spec);
  spec.hostname = spec.hostname ?? hostname.slice(0, 63);
  if (subdomain) spec.subdomain = subdomain;
  return {
    metadata: {
      name,
      namespace,
      labels: { ...(template.metadata?.labels ?? {}), ...extraLabels },
      annotations: { ...(template.metadata?.annotations ?? {}), ...extraAnnotations },
    },
    spec,
  };
}

export function statefulSetPods(sts, namespace) {
  const name = sts.metadata.name;
  return Array.from({ length: sts.spec.replicas ?? 1 }, (_, i) => podFrom(
    sts.spec.template, `${name}-${i}`, namespace,
    { 'apps.kubernetes.io/pod-index': String(i), 'statefulset.kubernetes.io/pod-name': `${name}-${i}` },
    {}, `${name}-${i}`, sts.spec.serviceName));
}

// A new pod for a Job; `index` is the completion index of an Indexed Job, or null.
export function jobPod(job, index, namespace) {
  const name = job.metadata.name;
  const labels = { 'batch.kubernetes.io/job-name': name, 'job-name': name };
  const annotations = {};
  let podName = `${name}-${suffix()}`;
  let hostname = podName;
  if (index !== null) {
    labels['batch.kubernetes.io/job-completion-index'] = String(index);
    annotations['batch.kubernetes.io/job-completion-index'] = String(index);
    podName = `${name}-${index}-${suffix()}`;
    hostname = `${name}-${index}`;
  }
  const pod = podFrom(job.spec.template, podName, namespace, labels, annotations, hostname,
                      job.spec.template.spec.subdomain);
  if (index !== null) {
    for (const c of pod.spec.containers) {
      c.env = [...(c.env ?? []), { name: 'JOB_COMPLETION_INDEX', valueFrom: { fieldRef: {
        fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } } }];
    }
  }
  return pod;
}

// Runs a StatefulSet's pod until stop() is called, restarting its container when it exits.
// `runtime` is {create(pod) -> handle, start(handle) -> Promise<exit code>, log(msg), sleep(ms, signal)}.
export class StatefulSetController {
  constructor(sts, namespace, runtime) {
    this.sts = sts;
    this.runtime = runtime;
    this.pods = statefulSetPods(sts, namespace);
    this.restarts = new Map(this.pods.map((p) => [p.metadata.name, 0]));
    this.abort = new AbortController();
    this.done = null;
  }

  async runPod(pod) {
    const handle = await this.runtime.create(pod);
    for (;;) {
      const code = await this.runtime.start(handle);
      if (this.abort.signal.aborted) return;
      const n = this.restarts.get(pod.metadata.name) + 1;
      this.restarts.set(pod.metadata.name, n);
      const delay = backoffMs(n);
      this.runtime.log(`pod ${pod.metadata.name} exited ${code}; restartPolicy Always: restart ${n} in ${delay / 1000}s`);
      if (!(await this.runtime.sleep(delay, this.abort.signal))) return;
    }
  }

  start() {
    this.done = Promise.all(this.pods.map((p) => this.runPod(p)));
    return this;
  }

  stop() {
    this.abort.abort();
  }
}

// Runs a Job to completion or failure: resolves {ok, reason}.
export class JobController {
  constructor(job, namespace, runtime) {
    this.job = job;
    this.namespace = namespace;
    this.runtime = runtime;
    this.indexed = job.spec.completionMode === 'Indexed';
    this.completions = job.spec.completions ?? 1;
    this.backoffLimit = job.spec.backoffLimit ?? 6;
    this.failed = 0;
    this.succeeded = 0;
    this.abort = new AbortController();
    this.pods = [];
  }

  failJobRule(containerName, code) {
    return (this.job.spec.podFailurePolicy?.rules ?? []).find((r) => {
      const on = r.onExitCodes;
      if (r.action !== 'FailJob' || !on) return false;
      if (on.containerName && on.containerName !== containerName) return false;
      const hit = on.values.includes(code);
      return on.operator === 'In' ? hit : !hit;
    });
  }

  // One completion (an index, or one of N for a NonIndexed Job): pods until one succeeds.
  async runCompletion(index) {
    const name = this.job.metadata.name;
    const onFailure = this.job.spec.template.spec.restartPolicy === 'OnFailure';
    for (;;) {
      const pod = jobPod(this.job, index, this.namespace);
      this.pods.push(pod);
      const handle = await this.runtime.create(pod);
      let code;
      for (;;) {
        code = await this.runtime.start(handle);
        if (this.abort.signal.aborted) return;
        if (code === 0 || !onFailure) break;
        this.failed += 1;
        if (this.failed > this.backoffLimit) break;
        this.runtime.log(`pod ${pod.metadata.name} exited ${code}; restartPolicy OnFailure: restart`);
        if (!(await this.runtime.sleep(backoffMs(this.failed), this.abort.signal))) return;
      }
      if (code === 0) {
        this.succeeded += 1;
        this.runtime.log(`pod ${pod.metadata.name} succeeded (Job/${name}: ${this.succeeded}/${this.completions})`);
        return;
      }
      if (!onFailure) this.failed += 1;
      const rule = this.failJobRule(pod.spec.containers[0].name, code);
      if (rule) throw new Error(`Job/${name} failed: pod ${pod.metadata.name} exited ${code}, which its podFailurePolicy fails the Job on`);
      if (this.failed > this.backoffLimit) {
        throw new Error(`Job/${name} failed: pod ${pod.metadata.name} exited ${code}, ${this.failed} failed pods > backoffLimit ${this.backoffLimit}`);
      }
      const delay = backoffMs(this.failed);
      this.runtime.log(`pod ${pod.metadata.name} exited ${code}; Job/${name} makes a new pod in ${delay / 1000}s (${this.failed} failed, backoffLimit ${this.backoffLimit})`);
      if (!(await this.runtime.sleep(delay, this.abort.signal))) return;
    }
  }

  // Resolves when the Job completes; rejects naming the pod that failed it. Parallelism is taken as
  // equal to completions, which is what psrec's Jobs use (one pod per worker, all at once).
  async run() {
    if ((this.job.spec.parallelism ?? 1) !== this.completions) {
      throw new Error(`Job/${this.job.metadata.name}: the e2e runs Jobs whose parallelism equals completions`);
    }
    try {
      await Promise.all(Array.from({ length: this.completions },
                                   (_, i) => this.runCompletion(this.indexed ? i : null)));
    } catch (e) {
      this.abort.abort();
      throw e;
    }
  }

  stop() {
    this.abort.abort();
  }
}
