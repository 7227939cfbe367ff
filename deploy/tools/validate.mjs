// Offline checks of rendered manifests (scripts/k8s_validate.sh renders them and runs this).
//
//   node validate.mjs --psrec=build/psrec --pending=deploy/k8s/pending-flags.txt \
//        [--external=Kind/name,...] NAME=rendered.yaml...
//
// Per object: (1) the Kubernetes API schema of kubernetes-models (types, required fields, formats);
// (2) no field the API does not know, which (1) lets through: every key is checked against the field
// lists of @kubernetes/client-node's models, generated from the Kubernetes OpenAPI spec. Then what no
// schema knows (checkJob). Prints every problem as "NAME: Kind/name: ...", exits 1 if there is one.
import * as models from '@kubernetes/client-node/dist/gen/models/all.js';
import { checkJob } from './checks.mjs';
import { describe, loadObjects } from './lib.mjs';

function parseArgs(argv) {
  const opts = { psrec: null, pending: null, external: [], renders: [] };
  for (const arg of argv) {
    let m;
    if ((m = /^--psrec=(.+)$/.exec(arg))) opts.psrec = m[1];
    else if ((m = /^--pending=(.+)$/.exec(arg))) opts.pending = m[1];
    else if ((m = /^--external=(.*)$/.exec(arg))) opts.external = m[1].split(',').filter(Boolean);
    else if ((m = /^([^=]+)=(.+)$/.exec(arg))) opts.renders.push({ name: m[1], file: m[2] });
    else throw new Error(`validate.mjs: unexpected argument ${arg}`);
  }
  if (!opts.psrec || !opts.pending || opts.renders.length === 0) {
    throw new Error('usage: validate.mjs --psrec=BIN --pending=FILE [--external=Kind/name,...] NAME=FILE...');
  }
  return opts;
}

// kubernetes-models' class for an apiVersion and kind, or null when it has none.
async function schemaModel(apiVersion, kind) {
  try {
    const mod = await import(`kubernetes-models/${apiVersion}/${kind}`);
    return mod[kind] ?? null;
  } catch {
    return null;
  }
}

async function checkSchema(obj) {
  const Model = await schemaModel(obj.apiVersion, obj.kind);
  if (Model === null) return [`no Kubernetes API schema for apiVersion ${obj.apiVersion} kind ${obj.kind}`];
  try {
    new Model(obj).validate();
    return [];
  } catch (e) {
    if (!Array.isArray(e.errors)) throw e;
    return e.errors.map((err) => `schema: ${err.instancePath || '/'} ${err.message}` +
                                  (err.params?.allowedValues ? ` (${err.params.allowedValues.join(', ')})` : ''));
  }
}

// The client-node model of a top-level object: V1StatefulSet for apps/v1 StatefulSet.
function strictModelName(apiVersion, kind) {
  const version = apiVersion.split('/').pop();
  return version.charAt(0).toUpperCase() + version.slice(1) + kind;
}

// Every key of `value` must be a field of `type` (a client-node model name, "Array<T>" or a map
// "{ [key: string]: T; }"); recurses into known fields. Scalars are (1)'s business.
function checkFields(value, type, path, problems) {
  if (value === null || value === undefined) return;
  let m;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (Array.isArray(value)) value.forEach((v, i) => checkFields(v, m[1], `${path}[${i}]`, problems));
    return;
  }
  if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) checkFields(v, m[1], `${path}.${k}`, problems);
    }
    return;
  }
  const Model = models[type];
  if (typeof Model?.getAttributeTypeMap !== 'function') return;
  if (typeof value !== 'object' || Array.isArray(value)) return;
  const fields = new Map(Model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    if (!fields.has(k)) {
      problems.push(`unknown field ${path ? path + '.' : ''}${k} (${type} has no such field)`);
    } else {
      checkFields(v, fields.get(k), path ? `${path}.${k}` : k, problems);
    }
  }
}

function checkStrict(obj) {
  const name = strictModelName(String(obj.apiVersion ?? ''), String(obj.kind ?? ''));
  if (typeof models[name]?.getAttributeTypeMap !== 'function') {
    return [`no OpenAPI field list for apiVersion ${obj.apiVersion} kind ${obj.kind}`];
  }
  const problems = [];
  checkFields(obj, name, '', problems);
  return problems;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  let failures = 0;
  for (const { name, file } of opts.renders) {
    const objects = loadObjects(file);
    const problems = [];
    for (const obj of objects) {
      for (const p of [...(await checkSchema(obj)), ...checkStrict(obj)]) {
        problems.push(`${describe(obj)}: ${p}`);
      }
    }
    problems.push(...checkJob(objects, opts));
    for (const p of problems) console.error(`${name}: ${p}`);
    failures += problems.length;
    console.log(`validate: ${name}: ${objects.length} objects, ${problems.length} problems`);
  }
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(`validate: ${e.message}`);
  process.exit(1);
});
