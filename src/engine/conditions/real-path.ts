import { lstatSync, realpathSync } from 'node:fs';
import { posix } from 'node:path';

/**
 * `path_within { follow_links = true }`: the path with every symlink resolved, as the file system
 * would open it. The realpath of the longest prefix that exists, plus the rest (a file about to be
 * written does not exist yet). Undefined on any error, so the condition fails closed: a loop, a
 * permission error, a file where a directory should be, or a name that exists but does not
 * resolve (a dangling link: writing through it creates its target, wherever that is).
 *
 * Cost: synchronous file system calls on every judged path (one realpath(3), plus one lstat and
 * one realpath per missing trailing component), which is why it is an option. What it cannot see:
 * hardlinks (a second name for the same file is not a link), a link created or changed between
 * the check and the tool's open (TOCTOU), links made after the check, bind mounts, and anything
 * the tool resolves differently (its own working directory, `~`). Keep the tool's own root
 * checks (server-filesystem resolves links too) and put secrets outside the roots.
 */
export function realPathOf(path: string): string | undefined {
  let head = path;
  const rest: string[] = [];
  for (;;) {
    try {
      const real = realpathSync.native(head);
      return rest.length === 0 ? real : posix.join(real, ...rest.reverse());
    } catch (err) {
      if (errorCode(err) !== 'ENOENT' || exists(head) !== false || head === '/') return undefined;
      const cut = head.lastIndexOf('/');
      rest.push(head.slice(cut + 1));
      head = cut === 0 ? '/' : head.slice(0, cut);
    }
  }
}

/** Whether a name exists without following it: true, false, or undefined when lstat itself fails otherwise. */
function exists(path: string): boolean | undefined {
  try {
    lstatSync(path);
    return true;
  } catch (err) {
    return errorCode(err) === 'ENOENT' ? false : undefined;
  }
}

const errorCode = (err: unknown): unknown => (err as { code?: unknown } | null)?.code;
