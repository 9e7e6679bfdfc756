// Validates recorded REST answers against Camunda's official 8.8 schemas
// (@camunda/camunda-api-zod-schemas, export "8.8"). Used by tests/rest_schemas.rs.
//
// usage: node rest-schemas.mjs EXCHANGES.json
//   EXCHANGES.json: [{server, method, path, status, content_type, body}, ...]
// prints one JSON object {checked, failures: [...], unmatched: [...]} and exits 1 when any
// answer fails its schema (or is not JSON where JSON is due).
import { readFileSync } from 'node:fs';
import * as s from '@camunda/camunda-api-zod-schemas/8.8';

// The zod package's 8.8 process-definition schema requires `state` (ACTIVE/DRAINING/DELETED),
// which 8.8's OpenAPI (and so an 8.8 cluster) does not send: it is optional here.
const processDefinition = s.processDefinitionSchema.extend({ state: s.processDefinitionStateSchema.optional() });
const queryProcessDefinitions = s.queryProcessDefinitionsResponseBodySchema.extend({
  items: processDefinition.array(),
});

const KEY = '[^/]+';
// [method, path pattern, schema of a 2xx answer]; `null` = no body (204).
const routes = [
  ['GET', '/v2/topology', s.getTopologyResponseBodySchema],
  ['POST', '/v2/deployments', s.createDeploymentResponseBodySchema],
  ['POST', '/v2/user-tasks/search', s.queryUserTasksResponseBodySchema],
  ['GET', `/v2/user-tasks/${KEY}/form`, s.formSchema],
  ['POST', `/v2/user-tasks/${KEY}/variables/search`, s.queryVariablesByUserTaskResponseBodySchema],
  ['POST', `/v2/user-tasks/${KEY}/assignment`, null],
  ['POST', `/v2/user-tasks/${KEY}/completion`, null],
  ['GET', `/v2/user-tasks/${KEY}`, s.userTaskSchema],
  ['POST', '/v2/process-instances/search', s.queryProcessInstancesResponseBodySchema],
  ['POST', `/v2/process-instances/${KEY}/cancellation`, null],
  ['GET', `/v2/process-instances/${KEY}`, s.processInstanceSchema],
  ['POST', '/v2/process-instances', s.createProcessInstanceResponseBodySchema],
  ['POST', '/v2/process-definitions/search', queryProcessDefinitions],
  ['POST', '/v2/incidents/search', s.queryIncidentsResponseBodySchema],
  ['POST', `/v2/incidents/${KEY}/resolution`, null],
  ['GET', `/v2/incidents/${KEY}`, s.incidentSchema],
  ['POST', '/v2/element-instances/search', s.queryElementInstancesResponseBodySchema],
  ['POST', '/v2/variables/search', s.queryVariablesResponseBodySchema],
  ['POST', '/v2/messages/publication', s.publishMessageResponseBodySchema],
  ['PATCH', `/v2/jobs/${KEY}`, null],
].map(([m, p, schema]) => [m, new RegExp(`^${p}$`), schema]);

const exchanges = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const failures = [];
const unmatched = [];
let checked = 0;

for (const x of exchanges) {
  const where = `${x.server} ${x.method} ${x.path} -> ${x.status}`;
  const route = routes.find(([m, re]) => m === x.method && re.test(x.path));
  if (!route) {
    unmatched.push(where);
    continue;
  }
  let schema = route[2];
  if (x.status >= 400) {
    schema = s.problemDetailResponseSchema;
    if (!x.content_type.startsWith('application/problem+json')) {
      failures.push({ where, issues: [`content type ${x.content_type}, expected application/problem+json`] });
    }
  } else if (schema === null) {
    checked++;
    if (x.body.trim() !== '') failures.push({ where, issues: [`expected no body, got ${x.body.slice(0, 200)}`] });
    continue;
  }
  let body;
  try {
    body = JSON.parse(x.body);
  } catch (e) {
    failures.push({ where, issues: [`not JSON: ${e.message}: ${x.body.slice(0, 200)}`] });
    continue;
  }
  checked++;
  const r = schema.safeParse(body);
  if (!r.success) {
    failures.push({
      where,
      issues: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
      body: x.body.slice(0, 600),
    });
  }
}

console.log(JSON.stringify({ checked, failures, unmatched }, null, 1));
process.exit(failures.length ? 1 : 0);
