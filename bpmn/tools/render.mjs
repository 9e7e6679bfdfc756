// Renders bpmn/*.bpmn (bpmn-js viewer) and bpmn/forms/*.form (form-js viewer, with sample data)
// to PNG screenshots, the way Modeler / Operate / Tasklist would draw them. Developer tool, not CI.
//
// Usage: node bpmn/tools/render.mjs <repo root> <render tools dir> <out dir>
// The tools dir holds node_modules with bpmn-js, @bpmn-io/form-js and playwright-core
// (scripts/render-bpmn.sh installs them); the browser is Debian's /usr/bin/chromium.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const [repo, tools, out] = process.argv.slice(2).map((p) => path.resolve(p));
const require = createRequire(path.join(tools, 'package.json'));
const { chromium } = require('playwright-core');
const mod = (p) => path.join(tools, 'node_modules', p);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'c8dr-render-'));
for (const [src, dst] of [
  ['bpmn-js/dist/bpmn-viewer.production.min.js', 'bpmn-viewer.js'],
  ['bpmn-js/dist/assets/diagram-js.css', 'diagram-js.css'],
  ['bpmn-js/dist/assets/bpmn-js.css', 'bpmn-js.css'],
  ['@bpmn-io/form-js/dist/form-viewer.umd.js', 'form-viewer.js'],
  ['@bpmn-io/form-js/dist/assets/form-js.css', 'form-js.css'],
]) {
  fs.copyFileSync(mod(src), path.join(work, dst));
}
fs.writeFileSync(path.join(work, 'bpmn.html'), `<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="diagram-js.css"><link rel="stylesheet" href="bpmn-js.css">
<style>html,body,#canvas{margin:0;width:100%;height:100%;background:#fff}</style>
<script src="bpmn-viewer.js"></script></head><body><div id="canvas"></div></body></html>`);
fs.writeFileSync(path.join(work, 'form.html'), `<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="form-js.css">
<style>body{margin:0;background:#f4f4f4;font-family:sans-serif}
#form{width:720px;margin:16px auto;background:#fff;border:1px solid #ddd;padding:8px}</style>
<script src="form-viewer.js"></script></head><body><div id="form"></div></body></html>`);

// Realistic values for every variable the forms show (docs/jobs.md).
const sample = {
  target: 'prod-eu',
  lostRegion: 1,
  survivingRegion: 0,
  recreatedRegion: 1,
  reason: 'Region 1 (europe-west3) unreachable since 03:12 UTC, cloud provider incident INC-4711',
  plan: {
    survivingRegion: 0,
    lostRegion: 1,
    brokersToRemove: [1, 3, 5, 7],
    survivingBrokers: [0, 2, 4, 6],
    currentClusterSize: 8,
    expectedClusterSize: 4,
    expectedReplicationFactor: 2,
    plannedOperations: 16,
    plannedChanges: [
      'PARTITION_LEAVE broker 1 partition 1', 'PARTITION_LEAVE broker 3 partition 2',
      'PARTITION_LEAVE broker 5 partition 3', 'PARTITION_LEAVE broker 7 partition 4',
      'BROKER_REMOVE broker 1', 'BROKER_REMOVE broker 3', 'BROKER_REMOVE broker 5',
      'BROKER_REMOVE broker 7',
    ],
    alreadyFailedOver: false,
  },
  preflight: {
    releasePresent: false, pvcCount: 0, camundaIndices: [], clusterBrokers: [0, 2, 4, 6],
  },
  snapshotName: 'c8dr-failback-20261121-0612',
  topology: {
    clusterSize: 8, replicationFactor: 4,
    brokers: [0, 1, 2, 3, 4, 5, 6, 7].map((nodeId) => ({ nodeId })),
  },
  topologyProblems: null,
  exporters: [
    { exporterId: 'camundaregion0', status: 'ENABLED' },
    { exporterId: 'camundaregion1', status: 'ENABLED' },
  ],
  manualStepId: 'helm-deploy-recreated',
  manualCommand: 'helm upgrade --install camunda camunda/camunda-platform --version 13.0.0 \\\n'
    + '  --kube-context region-1 -n camunda -f values.yaml -f values-region-1.yaml \\\n'
    + '  --set orchestration.profiles.operate=false --set orchestration.profiles.tasklist=false',
  lastError: {
    code: 'CONCURRENT_CHANGE',
    message: 'Another cluster change (id 42, SCALE) is in progress on prod-eu; wait for it to '
      + 'finish or cancel it, then retry.',
    step: 'RemoveBrokers',
  },
  verified: false,
  changeId: 42, changeStatus: 'IN_PROGRESS', changeProgress: { completed: 5, pending: 11 },
  visibleBrokers: [0, 2, 4, 6],
  snapshotState: 'IN_PROGRESS', snapshotShards: { total: 30, failed: 0, successful: 21 },
  restoreProgress: { activeRecoveries: 3, health: 'yellow' },
  profiles: { 0: ['broker'], 1: ['broker', 'operate', 'tasklist'] },
  canariesMissing: null,
};
// Per form: the variables the task would really carry (a fresh task has no decision yet).
const formData = {
  'c8dr-step-failed': { lastError: { ...sample.lastError } },
  'c8dr-manual-step': {
    lastError: { code: 'MANUAL_STEP_REQUIRED', message: 'helm mode is manual for target prod-eu',
      step: 'HelmDeployRecreated' },
  },
  'c8dr-verification-timeout': {},
  'c8dr-stuck-brokers': {
    stuckBrokers: [
      { region: 0, pod: 'camunda-zeebe-1', notReadySince: '2026-01-01T10:02:00Z', minutes: 12 },
      { region: 1, pod: 'camunda-zeebe-3', notReadySince: '2026-01-01T10:05:00Z', minutes: 9 },
    ],
    rollout: { 0: '3/4 updated, 3/4 ready, revision camunda-zeebe-7d9 -> camunda-zeebe-5c4' },
  },
};

// A new, empty profile (--user-data-dir) every run.
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'c8dr-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
fs.mkdirSync(out, { recursive: true });
const written = [];

async function renderBpmn(file) {
  const name = path.basename(file, '.bpmn');
  const xml = fs.readFileSync(file, 'utf8');
  const page = await browser.newPage();
  await page.setViewportSize({ width: 4000, height: 1400 });
  page.on('pageerror', (e) => console.error(`${name}: ${e.message}`));
  await page.goto('file://' + path.join(work, 'bpmn.html'));
  const info = await page.evaluate(async (xml) => {
    window.viewer = new BpmnJS({ container: '#canvas' });
    const { warnings } = await window.viewer.importXML(xml);
    const canvas = window.viewer.get('canvas');
    canvas.zoom('fit-viewport');
    const root = canvas.getRootElement();
    const all = window.viewer.get('elementRegistry').filter((e) => e !== root && !e.waypoints
      && e.type !== 'label');
    const box = {
      x: Math.min(...all.map((e) => e.x)), y: Math.min(...all.map((e) => e.y)),
      r: Math.max(...all.map((e) => e.x + e.width)), b: Math.max(...all.map((e) => e.y + e.height)),
    };
    return { warnings: warnings.map((w) => w.message), box };
  }, xml);
  for (const w of info.warnings) console.error(`${name}: import warning: ${w}`);
  let png = path.join(out, `${name}.png`);
  await page.screenshot({ path: png });
  written.push(png);
  // Tiles at 100 % zoom, ~1900 diagram px wide each, to read labels.
  const { x, y, r, b } = info.box;
  const tileW = 1900;
  const h = b - y + 80;
  await page.setViewportSize({ width: tileW, height: Math.ceil(h) });
  for (let i = 0, tx = x - 40; tx < r; i++, tx += tileW - 100) {
    await page.evaluate(([vx, vy, w, hh]) => {
      window.viewer.get('canvas').viewbox({ x: vx, y: vy, width: w, height: hh });
    }, [tx, y - 40, tileW, h]);
    png = path.join(out, `${name}-part${i + 1}.png`);
    await page.screenshot({ path: png });
    written.push(png);
  }
  await page.close();
}

async function renderForm(file) {
  const name = path.basename(file, '.form');
  const schema = JSON.parse(fs.readFileSync(file, 'utf8'));
  const page = await browser.newPage();
  await page.setViewportSize({ width: 800, height: 600 });
  page.on('pageerror', (e) => console.error(`${name}: ${e.message}`));
  await page.goto('file://' + path.join(work, 'form.html'));
  await page.evaluate(async ([schema, data]) => {
    await FormViewer.createForm({ container: document.querySelector('#form'), schema, data });
  }, [schema, { ...sample, ...(formData[name] || {}) }]);
  const png = path.join(out, `form-${name}.png`);
  await page.screenshot({ path: png, fullPage: true });
  written.push(png);
  await page.close();
}

try {
  for (const f of fs.readdirSync(path.join(repo, 'bpmn')).filter((f) => f.endsWith('.bpmn'))) {
    await renderBpmn(path.join(repo, 'bpmn', f));
  }
  const forms = path.join(repo, 'bpmn', 'forms');
  for (const f of fs.readdirSync(forms).filter((f) => f.endsWith('.form'))) {
    await renderForm(path.join(forms, f));
  }
} finally {
  await browser.close();
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(profile, { recursive: true, force: true });
}
for (const p of written) console.log('wrote', path.relative(repo, p));
