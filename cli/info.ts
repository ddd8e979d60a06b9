/** `gptoss info --model DIR|URL`: config and tensor summary of a checkpoint, validating it. */
import { parseArgs } from 'node:util';
import { Checkpoint } from '../loader/checkpoint.ts';
import { describeConfig } from '../loader/config.ts';
import { resolveModelSource } from '../loader/resolve.ts';
import { formatBytes, requireFlag } from './args.ts';

export const command = {
  summary: 'validate a checkpoint and print its config and tensors',
  usage: [
    'Usage: gptoss info --model DIR|URL|REPO_ID [--tensors] [--read]',
    '',
    '  --tensors  list every tensor with dtype, shape and file',
    '  --read     stream every tensor\'s bytes (checks the files are complete and readable; prints throughput)',
  ].join('\n'),
  async run(argv: string[]): Promise<void> {
    const { values } = parseArgs({ args: argv, options: { model: { type: 'string' }, tensors: { type: 'boolean' }, read: { type: 'boolean' } } });
    const source = await resolveModelSource(requireFlag(values.model, 'model'));
    const ck = await Checkpoint.open(source);
    try {
      console.log(`model: ${source.description}`);
      console.log(`layout: ${ck.layout}; ${ck.headers.length} file(s): ${ck.headers.map((h) => h.file).join(', ')}`);
      console.log(`config: ${describeConfig(ck.config)}`);
      console.log(`weights: ${formatBytes(ck.totalBytes)} (${ck.totalBytes} bytes)`);
      if (values.tensors) {
        for (const t of ck.allTensors()) console.log(`  ${t.name.padEnd(56)} ${t.dtype.padEnd(5)} [${t.shape.join(', ')}]  ${t.file}`);
      }
      if (values.read) {
        const t0 = performance.now();
        let bytes = 0;
        let chunks = 0;
        let maxChunk = 0;
        for (const t of ck.allTensors()) {
          for await (const chunk of ck.stream(t)) {
            bytes += chunk.byteLength;
            chunks++;
            maxChunk = Math.max(maxChunk, chunk.byteLength);
          }
        }
        const s = (performance.now() - t0) / 1000;
        console.log(`read ${formatBytes(bytes)} in ${chunks} chunks (largest ${formatBytes(maxChunk)}) in ${s.toFixed(1)} s: ${(bytes / s / 1e9).toFixed(2)} GB/s`);
      }
    } finally {
      await ck.close();
    }
  },
};
