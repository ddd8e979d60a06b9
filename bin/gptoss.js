#!/usr/bin/env node
// Entry point of the `gptoss` command: runs the compiled CLI from dist/ (built by `npm install`
// through the `prepare` script, or by `npm run build`). Failures are one line on stderr; set
// GPTOSS_DEBUG=1 for stack traces.
const debug = !!process.env.GPTOSS_DEBUG;
const line = (e) => (e && typeof e.message === 'string' ? e.message : String(e)).split('\n').map((l) => l.trim()).find(Boolean) ?? 'unknown error';
const fatal = (e) => {
  console.error(debug ? e : `gptoss: ${line(e)}`);
  process.exit(1);
};
// Errors thrown outside the command's own promise (callbacks, servers) end the process the same way.
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);
import('../dist/cli/main.js').then(
  (m) => m.main(process.argv.slice(2)).then((code) => { process.exitCode = code; }),
  (e) => {
    if (e && e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('dist/cli/main.js')) {
      console.error('gptoss: the CLI is not built yet; run `npm install` or `npm run build` in the package folder.');
    } else {
      console.error(debug ? e : `gptoss: ${line(e)}`);
    }
    process.exitCode = 1;
  },
);
