/**
 * A problem worth an operator's attention that is not the caller's answer: a subscriber that
 * threw, an audit seal file that could not be written, a tool that runs ungated. One line,
 * without a `kavach:` prefix or a newline (the sink adds what its log format wants).
 */
export type OnWarning = (message: string) => void;

/**
 * The default sink wherever losing the warning would hide a real problem: one line on stderr,
 * tagged `kavach:`. An application with a logger passes `onWarning` instead (the MCP proxy passes
 * its own); this is the one place library code writes to stderr.
 */
export function warnToStderr(message: string): void {
  process.stderr.write(`kavach: ${message}\n`);
}

/**
 * The sink to use: the caller's, else stderr. A sink that throws must not change what the
 * library does next (reject a queue, refuse a call), so its error is dropped.
 */
export function warningSink(onWarning: OnWarning | undefined): OnWarning {
  const sink = onWarning ?? warnToStderr;
  return (message) => {
    try {
      sink(message);
    } catch {
      // A broken logger is the application's to notice; the library carries on.
    }
  };
}
