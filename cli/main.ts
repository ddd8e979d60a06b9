/**
 * The `gptoss` command line. Each subcommand lives in its own module; this file only routes,
 * and turns every failure into one line on stderr and a non-zero exit code (the stack trace
 * only with GPTOSS_DEBUG=1).
 */
import { HTTP_DEFAULTS } from '../loader/source-http.ts';
import { fsErrorCode, fsErrorMessage } from '../loader/fs-errors.ts';
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
  manifest: async () => (await import('./manifest.ts')).command,
  verify: async () => (await import('./verify.ts')).command,
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
    console.error(`gptoss: unknown command ${JSON.stringify(name)}; gptoss --help lists the commands`);
    return 2;
  }
  const cmd = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  try {
    applyEnvironment();
    await cmd.run(rest);
    return 0;
  } catch (e) {
    if (process.env.GPTOSS_DEBUG) console.error(e);
    if (e instanceof UsageError || (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
      // node:util's "Unknown option '--x'. To specify a positional argument..." is shortened.
      const unknown = /^Unknown option '([^']+)'/.exec((e as Error).message)?.[1];
      console.error(`gptoss ${name}: ${unknown ? `unknown option ${unknown}` : oneLine(e)} (gptoss ${name} --help lists the options)`);
      return 2;
    }
    console.error(`gptoss ${name}: ${oneLine(e)}`);
    return 1;
  }
}

/** GPTOSS_HTTP_TIMEOUT (seconds): the HTTP loader's connect/idle timeout. */
function applyEnvironment(): void {
  const t = process.env.GPTOSS_HTTP_TIMEOUT;
  if (t !== undefined && t !== '') {
    const s = Number(t);
    if (!(Number.isFinite(s) && s > 0)) throw new UsageError(`GPTOSS_HTTP_TIMEOUT must be a number of seconds > 0, got ${JSON.stringify(t)}`);
    HTTP_DEFAULTS.timeoutMs = s * 1000;
  }
}

/** What went wrong, in one line: a file-system error names its path; multi-line messages keep their first line. */
export function oneLine(e: unknown): string {
  const path = (e as { path?: unknown } | null)?.path;
  if (fsErrorCode(e) && typeof path === 'string') return fsErrorMessage(path, e);
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n').map((l) => l.trim()).find(Boolean) ?? (e instanceof Error ? e.name : 'unknown error');
}
