/**
 * Regenerates the benign tool-list fixtures from the real servers in node_modules:
 *   npx tsx test/engine/screen/corpus/capture-tool-lists.ts
 * The scan tests read the JSON it writes (engine tests stay offline and process-free).
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '../../../..');
const servers = {
  'server-filesystem': [join(repo, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js'), tmpdir()],
  'server-everything': [join(repo, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js'), 'stdio'],
};

for (const [name, args] of Object.entries(servers)) {
  const client = new Client({ name: 'kavach-capture', version: '0' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args, stderr: 'ignore' }));
  const { tools } = await client.listTools();
  const instructions = client.getInstructions();
  await client.close();
  writeFileSync(join(here, `${name}.tools.json`), `${JSON.stringify({ instructions, tools }, null, 2)}\n`);
  process.stdout.write(`${name}: ${tools.length} tools\n`);
}
