import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { blobSource } from '../loader/source-blob.ts';
import { directorySource } from '../loader/source-node.ts';
import { resolveModelSource } from '../loader/resolve.ts';
import { expectLoadError, readDir, SHARDED_DIR, TINY_DIR } from './helpers/loader-fixtures.ts';

/** Node 20 has a global File; build one per golden file. */
function filesOf(contents: Map<string, Uint8Array>, folder?: string): File[] {
  return [...contents].map(([name, bytes]) => {
    const f = new File([new Uint8Array(bytes)], name);
    if (folder !== undefined) Object.defineProperty(f, 'webkitRelativePath', { value: `${folder}/${name}` });
    return f;
  });
}

const opened: Checkpoint[] = [];
afterAll(async () => {
  await Promise.all(opened.map((c) => c.close()));
});

async function expectSame(a: Checkpoint, b: Checkpoint): Promise<void> {
  expect(a.config).toEqual(b.config);
  expect(a.allTensors().length).toBe(b.allTensors().length);
  for (const ref of b.allTensors()) {
    const want = Buffer.from(await b.read(ref));
    const got = await a.read(a.tensor(ref.param, ref.layer));
    expect(want.equals(got), ref.name).toBe(true);
    const chunks: Uint8Array[] = [];
    for await (const c of a.stream(a.tensor(ref.param, ref.layer), 1000)) chunks.push(c);
    expect(want.equals(Buffer.concat(chunks)), `${ref.name} streamed`).toBe(true);
  }
}

describe('blobSource', () => {
  for (const [label, dir] of [['tiny', TINY_DIR], ['sharded', SHARDED_DIR]] as const) {
    let contents: Map<string, Uint8Array>;
    let local: Checkpoint;
    beforeAll(async () => {
      contents = await readDir(dir);
      local = await Checkpoint.open(await directorySource(dir));
      opened.push(local);
    });

    it(`loads golden ${label} from File objects (file names)`, async () => {
      expect(typeof File).toBe('function');
      const ck = await Checkpoint.open(blobSource(filesOf(contents)));
      opened.push(ck);
      await expectSame(ck, local);
    });

    it(`loads golden ${label} from a picked folder (webkitRelativePath)`, async () => {
      const files = filesOf(contents, 'gpt-oss-tiny');
      expect(files[0]!.webkitRelativePath.startsWith('gpt-oss-tiny/')).toBe(true);
      const ck = await Checkpoint.open(blobSource(files, 'picked folder'));
      opened.push(ck);
      await expectSame(ck, local);
    });

    it(`loads golden ${label} from a Map of relative paths to Blobs`, async () => {
      // As an app would build it from webkitRelativePath, dropping the picked folder.
      const map = new Map<string, Blob>();
      for (const f of filesOf(contents, 'models/gpt-oss')) map.set(f.webkitRelativePath.split('/').slice(2).join('/'), f);
      const ck = await Checkpoint.open(blobSource(map));
      opened.push(ck);
      await expectSame(ck, local);
      const viaResolve = await Checkpoint.open(await resolveModelSource(map));
      opened.push(viaResolve);
      expect(viaResolve.allTensors().length).toBe(local.allTensors().length);
    });
  }

  it('missing files and out-of-range reads are ModelLoadErrors', async () => {
    const contents = await readDir(SHARDED_DIR);
    contents.delete('model-00001-of-00001.safetensors');
    const src = blobSource(filesOf(contents), 'my files');
    const err = await expectLoadError(Checkpoint.open(src), 'missing-shard');
    expect(err.message).toContain('model-00001-of-00001.safetensors');
    const e2 = await expectLoadError(src.open('nope.bin'), 'missing-file');
    expect(e2.message).toContain('my files');
    const f = await src.open('config.json');
    await expectLoadError(f.read(0, f.size + 1), 'truncated');
    await expectLoadError(f.read(-1, 2), 'truncated');
    expect(await f.read(0, 0)).toHaveLength(0);
    await expectLoadError(Checkpoint.open(blobSource([])), 'missing-file');
  });
});
