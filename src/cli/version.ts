import { readFileSync } from 'node:fs';

/**
 * The version in kavach's package.json. Found relative to this module, which sits two levels
 * below the package root both in a checkout (src/cli/version.ts) and in the published package
 * (dist/cli/version.js), so it names the code that is running, not whatever package the
 * current directory belongs to.
 */
export function packageVersion(moduleUrl: string | URL = import.meta.url): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', moduleUrl), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new Error('package.json has no version');
  return pkg.version;
}
