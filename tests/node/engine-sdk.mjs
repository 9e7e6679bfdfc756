// Drives the rehearsal engine with Camunda's stock Node SDK (@camunda8/sdk 8.8, gRPC with its
// default gzip compression, a streaming job worker, the REST clients). Used by
// tests/engine_sdk.rs.
//
// usage: GRPC=127.0.0.1:PORT REST=http://127.0.0.1:PORT node engine-sdk.mjs
// prints one JSON line {passed: [...], failed: [{step, error}]}; exit 1 when a step failed.
// Every step has its own time limit; the whole run is bounded by the caller.
import { Camunda8 } from '@camunda8/sdk';
import { createCamundaClientLoose } from '@camunda8/orchestration-cluster-api';

const STEP_MS = 20_000;
const grpc = process.env.GRPC;
const rest = process.env.REST;

const c8 = new Camunda8({
  ZEEBE_GRPC_ADDRESS: `grpc://${grpc}`,
  ZEEBE_REST_ADDRESS: rest,
  CAMUNDA_AUTH_STRATEGY: 'NONE',
  ZEEBE_CLIENT_LOG_LEVEL: 'NONE',
  CAMUNDA_LOG_LEVEL: 'error',
});
const zeebe = c8.getZeebeGrpcApiClient();
const restClient = c8.getCamundaRestClient();
// The orchestration cluster API client validates every answer against the 8.8 OpenAPI (strict).
const oca = createCamundaClientLoose({
  config: {
    CAMUNDA_REST_ADDRESS: rest,
    CAMUNDA_AUTH_STRATEGY: 'NONE',
    CAMUNDA_SDK_VALIDATION: 'req:none,res:strict',
    CAMUNDA_SDK_LOG_LEVEL: 'error',
  },
});
const now = { consistency: { waitUpToMs: 0 } };
// waits (bounded) until a search answer satisfies `predicate`
const eventually = (predicate) => ({ consistency: { waitUpToMs: 10_000, pollIntervalMs: 50, predicate } });

const passed = [];
const failed = [];

async function step(name, fn) {
  let timer;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no result within ${STEP_MS} ms`)), STEP_MS);
      }),
    ]);
    passed.push(name);
  } catch (e) {
    failed.push({ step: name, error: String(e?.stack ?? e).slice(0, 800) });
  } finally {
    clearTimeout(timer);
  }
}

// JSON with bigints (the 8.8 client parses totalItems as a bigint)
const show = (v) => JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

const defs = (body) => `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="defs" targetNamespace="http://c8dr">
${body}
</bpmn:definitions>`;
const task = (id, type, retries = 3) =>
  `<bpmn:serviceTask id="${id}"><bpmn:extensionElements><zeebe:taskDefinition type="${type}" retries="${retries}"/></bpmn:extensionElements></bpmn:serviceTask>`;
const flow = (id, from, to) => `<bpmn:sequenceFlow id="${id}" sourceRef="${from}" targetRef="${to}"/>`;
// start -> each of `middle` in turn -> end
const linear = (id, middle) => {
  const ids = ['s', ...middle.map((m) => m.match(/id="([^"]+)"/)[1]), 'e'];
  const flows = ids.slice(1).map((to, i) => flow(`f${i}`, ids[i], to)).join('');
  return defs(`<bpmn:process id="${id}" isExecutable="true"><bpmn:startEvent id="s"/>${middle.join('')}<bpmn:endEvent id="e"/>${flows}</bpmn:process>`);
};

const processes = {
  'sdk-service.bpmn': linear('sdk-service', [task('work', 'sdk.work')]),
  'sdk-message.bpmn': defs(`<bpmn:message id="m" name="sdk-go"/>
<bpmn:process id="sdk-message" isExecutable="true">
  <bpmn:startEvent id="s"><bpmn:messageEventDefinition messageRef="m"/></bpmn:startEvent>
  ${task('work', 'sdk.work')}<bpmn:endEvent id="e"/>${flow('f1', 's', 'work')}${flow('f2', 'work', 'e')}
</bpmn:process>`),
  'sdk-fail.bpmn': linear('sdk-fail', [task('flaky', 'sdk.fail', 1)]),
  'sdk-error.bpmn': defs(`<bpmn:error id="err" errorCode="E1"/>
<bpmn:process id="sdk-error" isExecutable="true">
  <bpmn:startEvent id="s"/>${task('risky', 'sdk.error')}
  <bpmn:boundaryEvent id="caught" attachedToRef="risky"><bpmn:errorEventDefinition errorRef="err"/></bpmn:boundaryEvent>
  <bpmn:endEvent id="e"/><bpmn:endEvent id="eCaught"/>
  ${flow('f1', 's', 'risky')}${flow('f2', 'risky', 'e')}${flow('f3', 'caught', 'eCaught')}
</bpmn:process>`),
  'sdk-user.bpmn': linear('sdk-user', [
    `<bpmn:userTask id="approve" name="Approve"><bpmn:extensionElements><zeebe:userTask/><zeebe:assignmentDefinition candidateGroups="ops"/></bpmn:extensionElements></bpmn:userTask>`,
  ]),
};

const workers = [];
let flakyAttempts = 0;
let deployed;

await step('grpc topology (gzip request)', async () => {
  const t = await zeebe.topology();
  assert(t.brokers.length === 1, `brokers: ${show(t.brokers)}`);
});

await step('grpc deploy resources', async () => {
  deployed = await zeebe.deployResources(
    Object.entries(processes).map(([name, xml]) => ({ process: Buffer.from(xml), name })),
  );
  assert(deployed.deployments.length === 5, `deployments: ${show(deployed.deployments)}`);
});

await step('grpc streaming workers open', async () => {
  const open = (type, taskHandler) =>
    workers.push(zeebe.streamJobs({ type, worker: `sdk-${type}`, timeout: 30_000, taskHandler }));
  open('sdk.work', (job) => job.complete({ worked: true, seen: job.variables.input ?? null }));
  open('sdk.fail', (job) => {
    flakyAttempts++;
    return flakyAttempts === 1 ? job.fail({ errorMessage: 'first attempt fails', retries: 0 }) : job.complete({ recovered: true });
  });
  open('sdk.error', (job) => job.error({ errorCode: 'E1', errorMessage: 'business error' }));
  await Promise.all(workers);
});

await step('grpc createProcessInstanceWithResult + streamed job completion', async () => {
  const r = await zeebe.createProcessInstanceWithResult({
    bpmnProcessId: 'sdk-service',
    variables: { input: 42 },
    requestTimeout: 15_000,
  });
  assert(r.variables.worked === true && r.variables.seen === 42, `result: ${show(r)}`);
});

await step('grpc createProcessInstanceWithResult + job error caught by boundary event', async () => {
  const r = await zeebe.createProcessInstanceWithResult({ bpmnProcessId: 'sdk-error', variables: {}, requestTimeout: 15_000 });
  assert(r.processInstanceKey, `result: ${show(r)}`);
});

await step('grpc publishMessage starts an instance (message start event)', async () => {
  const m = await zeebe.publishMessage({ name: 'sdk-go', correlationKey: 'c-1', variables: { input: 7 }, timeToLive: 0 });
  assert(m.key, `publish: ${show(m)}`);
  const found = await oca.searchProcessInstances(
    { filter: { processDefinitionId: 'sdk-message', state: 'COMPLETED' } },
    eventually((r) => r.items.length === 1),
  );
  assert(found.items.length === 1, `instances: ${show(found)}`);
});

await step('rest publishMessage', async () => {
  const m = await restClient.publishMessage({ name: 'sdk-go', correlationKey: 'c-2', variables: { input: 8 }, timeToLive: 0 });
  assert(m.messageKey, `publish: ${show(m)}`);
});

let failPi;
await step('grpc job fail without retries raises an incident; rest getIncident', async () => {
  const pi = await zeebe.createProcessInstance({ bpmnProcessId: 'sdk-fail', variables: {} });
  failPi = pi.processInstanceKey;
  const incidents = await oca.searchIncidents(
    { filter: { processInstanceKey: failPi } },
    eventually((r) => r.items.length === 1),
  );
  assert(incidents.items.length === 1, `incidents: ${show(incidents)}`);
  const inc = await oca.getIncident({ incidentKey: incidents.items[0].incidentKey }, now);
  assert(inc.errorType === 'JOB_NO_RETRIES' && inc.state === 'ACTIVE', `incident: ${show(inc)}`);
  globalThis.incident = inc;
});

await step('rest updateJob retries + resolveIncident re-activates the job', async () => {
  const inc = globalThis.incident;
  assert(inc, 'no incident from the previous step');
  await restClient.updateJob({ jobKey: inc.jobKey, retries: 1 });
  await restClient.resolveIncident(inc.incidentKey);
  const done = await oca.getProcessInstance(
    { processInstanceKey: failPi },
    eventually((p) => p.state === 'COMPLETED'),
  );
  assert(done.state === 'COMPLETED' && flakyAttempts === 2, `instance ${show(done)}, attempts ${flakyAttempts}`);
  const again = await oca.searchIncidents({ filter: { processInstanceKey: failPi } }, now);
  assert(again.items.every((i) => i.state === 'RESOLVED'), `incidents: ${show(again)}`);
});

await step('rest user task: search, variables, complete', async () => {
  const pi = await zeebe.createProcessInstance({ bpmnProcessId: 'sdk-user', variables: { plan: 'failover' } });
  const key = pi.processInstanceKey;
  const tasks = await oca.searchUserTasks(
    { filter: { processInstanceKey: key, state: 'CREATED' } },
    eventually((r) => r.items.length === 1),
  );
  assert(tasks.items.length === 1, `tasks: ${show(tasks)}`);
  const userTaskKey = tasks.items[0].userTaskKey;
  const vars = await oca.searchUserTaskVariables({ userTaskKey }, now);
  assert(vars.items.some((v) => v.name === 'plan' && v.value === '"failover"'), `variables: ${show(vars)}`);
  const legacy = await restClient.searchUserTasks({ filter: { processInstanceKey: key } });
  assert(legacy.items.length === 1, `legacy search: ${show(legacy)}`);
  await restClient.completeUserTask({ userTaskKey, variables: { decision: 'approve' } });
  const done = await oca.getProcessInstance({ processInstanceKey: key }, eventually((p) => p.state === 'COMPLETED'));
  assert(done.state === 'COMPLETED', `instance: ${show(done)}`);
});

await step('rest process-definition search', async () => {
  const defsFound = await oca.searchProcessDefinitions({ filter: { processDefinitionId: 'sdk-user' } }, now);
  assert(defsFound.items.length === 1 && defsFound.items[0].version === 1, `definitions: ${show(defsFound)}`);
});

await step('rest element-instance and variable search', async () => {
  const els = await oca.searchElementInstances({ filter: { processInstanceKey: failPi } }, now);
  assert(els.items.length > 0, `element instances: ${show(els)}`);
  const vars = await oca.searchVariables({ filter: { processInstanceKey: failPi } }, now);
  assert(vars.items.some((v) => v.name === 'recovered'), `variables: ${show(vars)}`);
});

await step('grpc cancelProcessInstance', async () => {
  const pi = await zeebe.createProcessInstance({ bpmnProcessId: 'sdk-user', variables: {} });
  await zeebe.cancelProcessInstance(pi.processInstanceKey);
  const p = await oca.getProcessInstance({ processInstanceKey: pi.processInstanceKey }, now);
  assert(p.state === 'TERMINATED', `instance: ${show(p)}`);
});

for (const w of workers) {
  try {
    (await w).close();
  } catch {}
}
try {
  await zeebe.close(2_000);
} catch {}
console.log(JSON.stringify({ passed, failed }));
process.exit(failed.length ? 1 : 0);
