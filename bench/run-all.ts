/**
 * `npm run bench`: every benchmark of the project, one after the other (each in its own
 * process), and bench/RESULTS.md with the machine, the date and what each printed.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BENCHES = [
  ['render.ts', 'Render + validate + write of the Traefik config (10,000 and 100,000 routes)'],
  ['convergence.ts', 'Convergence on the harness swarm, Docker API calls at rest'],
  ['collection.ts', 'Collection cost per tick, per stats source'],
  ['host.ts', 'Host sampling cost per tick'],
  ['feed.ts', 'Websocket fan-out to 2,000 subscribers'],
  ['flush.ts', 'Aggregate flush: unnest vs row-by-row'],
  ['http.ts', 'HTTP endpoints beside bare fastify (autocannon)'],
  ['history.ts', 'History API on 30 days of minute rows for 1,000 containers (about 25 minutes)'],
  [
    'traffic.ts',
    'Request metrics: scrape + parse + join of a Traefik target at 1,000 and 10,000 services (about 6 minutes)',
  ],
  ['swarm-scale.ts', 'The router at 450 services × 2 under churn (about 10 minutes)'],
] as const;

const here = import.meta.dirname;
const sections: string[] = [];
let failed = 0;
for (const [file, title] of BENCHES) {
  process.stdout.write(`\n== ${file}: ${title}\n`);
  const started = Date.now();
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, file)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      process.stdout.write(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    child.on('close', (code) => resolve({ code, output }));
  });
  if (code !== 0) failed += 1;
  const lines = output
    .trim()
    .split('\n')
    .filter((line) => line.trim() !== '');
  sections.push(
    `## ${file} — ${title}\n\n${code === 0 ? '' : `**Failed with exit code ${code}.**\n\n`}${lines.map((l) => `- ${l}`).join('\n') || '- (no output)'}\n\n_${((Date.now() - started) / 1000).toFixed(0)} s_\n`,
  );
}

const cpus = os.cpus();
const machine = [
  `- Date: ${new Date().toISOString()}`,
  `- Machine: ${os.type()} ${os.release()} ${os.arch()}, ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
  `- Node.js ${process.version}`,
].join('\n');
writeFileSync(
  path.join(here, 'RESULTS.md'),
  `# Benchmark results\n\nWritten by \`npm run bench\`. Every figure comes with its baseline, measured in the same run: see bench/README.md for what each measures and the targets.\n\n${machine}\n\n${sections.join('\n')}`,
);
process.stdout.write(`\nbench/RESULTS.md written${failed ? `; ${failed} benchmark(s) failed` : ''}\n`);
process.exit(failed ? 1 : 0);
