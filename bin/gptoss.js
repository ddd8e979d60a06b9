#!/usr/bin/env node
// Entry point of the `gptoss` command: runs the compiled CLI from dist/ (built by `npm install`
// through the `prepare` script, or by `npm run build`).
import('../dist/cli/main.js').then(
  (m) => m.main(process.argv.slice(2)).then((code) => { process.exitCode = code; }),
  (e) => {
    if (e && e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('dist/cli/main.js')) {
      console.error('gptoss: the CLI is not built yet; run `npm install` or `npm run build` in the package folder.');
    } else {
      console.error(e);
    }
    process.exitCode = 1;
  },
);
