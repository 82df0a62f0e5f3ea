import { main } from './cli.js';
import { installSignalCleanup } from './io/cleanup.js';

// once per process, here and not in main(): a SIGTERM undoes the run's staged outputs, then exits
installSignalCleanup();
process.exitCode = await main(process.argv.slice(2));
