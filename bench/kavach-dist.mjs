// The `kavach` command from the built dist/, for benchmarks: bin/kavach.js runs src/ through tsx
// in a source checkout, and a benchmark measures what users run. `npm run build` first.
import { main, quietOnClosedPipe } from '../dist/cli/main.js';

quietOnClosedPipe(process.argv[2]);
process.exitCode = await main(process.argv.slice(2));
