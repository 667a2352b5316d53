/** Two real `kavach mcp` processes sharing one Redis (their own redis-server, so the default key prefix is safe). */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanup as removeDir,
  EVERYTHING,
  q,
  runCli,
  startProxy,
  tempDir,
  textOf,
  write,
  type RunningProxy,
} from '../e2e/proxy-harness.ts';
import { freePort, PrivateRedis, skipRedis, waitUntil } from './redis-harness.ts';

let dir: string;
let server: PrivateRedis;
const proxies: RunningProxy[] = [];

describe.skipIf(skipRedis)('two kavach mcp processes over one Redis', () => {
  beforeAll(async () => {
    dir = tempDir('kavach-redis-e2e-');
    server = new PrivateRedis(await freePort());
    await server.start();
    const keygen = await runCli(['keygen', '--out', join(dir, 'keys')]);
    if (keygen.code !== 0) throw new Error(`keygen failed: ${keygen.stderr}`);
    write(
      join(dir, 'policy.toml'),
      `
[[policy]]
name = "sums"
effect = "permit"
conditions = [{ action = "everything.get-sum" }, { rate_limit = { max = 5, window = "1h" } }]
`,
    );
    for (const name of ['a', 'b']) {
      mkdirSync(join(dir, name));
      write(
        join(dir, name, 'kavach.toml'),
        `
[gate]
policy = ${q(join(dir, 'policy.toml'))}

[identity]
principal_id = "ci-agent"
principal_kind = "agent"

[keys]
path = ${q(join(dir, 'keys', 'secret.key'))}

[redis]
url = ${q(server.url)}
# Generous: this test is about exact admission across replicas, not deadlines (a loaded CI
# machine can take longer than the 100 ms default, which would refuse STORE_UNAVAILABLE).
command_timeout_ms = 5000

[servers.everything]
command = ${q(process.execPath)}
args = [${q(EVERYTHING)}, "stdio"]
`,
      );
    }
    proxies.push(...(await Promise.all(['a', 'b'].map((name) => startProxy(join(dir, name, 'kavach.toml'))))));
  }, 90_000);

  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await server?.kill();
    removeDir(dir);
  });

  it('admit exactly max of concurrent calls spread across both', async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        (proxies[i % 2] as RunningProxy).client.callTool({ name: 'everything__get-sum', arguments: { a: i, b: 1 } }),
      ),
    );
    const ok = results.filter((r) => !r.isError);
    const limited = results.filter((r) => r.isError && textOf(r).includes('[RATE_LIMITED]'));
    expect(ok).toHaveLength(5);
    expect(limited).toHaveLength(7);
    for (const r of ok) expect(textOf(r)).toContain('The sum of');
  });

  it('refuse STORE_UNAVAILABLE while Redis is gone and recover when it returns', async () => {
    await server.kill();
    for (const proxy of proxies) {
      const refused = await proxy.client.callTool({ name: 'everything__get-sum', arguments: { a: 1, b: 2 } });
      expect(refused.isError).toBe(true);
      expect(textOf(refused)).toContain('[STORE_UNAVAILABLE]');
    }
    await server.start(); // an empty Redis (no persistence): the window starts again
    for (const proxy of proxies) {
      await waitUntil(
        async () => {
          const r = await proxy.client.callTool({ name: 'everything__get-sum', arguments: { a: 2, b: 2 } });
          return !r.isError;
        },
        20_000,
        'a proxy never recovered',
        100,
      );
    }
  });
});
