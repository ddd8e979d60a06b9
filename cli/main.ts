/**
 * The `gptoss` command line. Each subcommand lives in its own module; this file only routes.
 */
import { ModelLoadError } from '../loader/errors.ts';
import { ModelTooLargeError } from '../engine/memory-plan.ts';
import { GpuUnavailableError } from '../engine/gpu/device.ts';
import { UsageError } from './args.ts';

interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<void>;
}

const COMMANDS: Record<string, () => Promise<Command>> = {
  synth: async () => (await import('./synth.ts')).command,
  logits: async () => (await import('./logits.ts')).command,
  info: async () => (await import('./info.ts')).command,
  plan: async () => (await import('./plan.ts')).command,
  generate: async () => (await import('./generate.ts')).command,
  bench: async () => (await import('./bench.ts')).command,
  tokenize: async () => (await import('./tokenize.ts')).command,
  render: async () => (await import('./render.ts')).command,
  serve: async () => (await import('./serve.ts')).command,
  chat: async () => (await import('./chat.ts')).command,
};

async function help(): Promise<string> {
  const lines = ['Usage: gptoss <command> [options]', '', 'Commands:'];
  for (const [name, load] of Object.entries(COMMANDS)) {
    const c = await load();
    lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  }
  lines.push('', 'Run `gptoss <command> --help` for the options of one command.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    console.log(await help());
    return name === undefined ? 1 : 0;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`gptoss: unknown command ${JSON.stringify(name)}\n\n${await help()}`);
    return 2;
  }
  const cmd = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  try {
    await cmd.run(rest);
    return 0;
  } catch (e) {
    if (e instanceof UsageError || (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
      console.error(`gptoss ${name}: ${(e as Error).message}\n\n${cmd.usage}`);
      return 2;
    }
    if (e instanceof ModelLoadError || e instanceof ModelTooLargeError || e instanceof GpuUnavailableError || e instanceof RangeError) {
      console.error(`gptoss ${name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
