/** `gptoss serve`: an OpenAI-compatible HTTP server for a local model. */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createEngine } from '../engine/api/engine.ts';
import type { Guardrails } from '../engine/api/guardrails.ts';
import { DEFAULT_MAX_TOKENS_CAP, DEFAULT_REQUEST_TIMEOUT, serve } from '../server/openai-server.ts';
import { parseCorsOrigins } from '../server/security.ts';
import { describeConfig } from '../loader/config.ts';
import { intFlag, requireFlag, UsageError, weightsFlag } from './args.ts';
import { MODEL_SOURCE_FLAGS, MODEL_SOURCE_USAGE, modelSourceOptions, progressPrinter } from './model-flags.ts';

export const command = {
  summary: 'serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/responses)',
  usage: [
    'Usage: gptoss serve --model DIR|URL [--port 8080] [--host 127.0.0.1] [--api-key KEY]',
    '                    [--cors ORIGIN[,ORIGIN]] [--max-tokens-cap N] [--request-timeout SECONDS]',
    '                    [--model-id NAME] [--context N] [--kv q8|f32] [--weights bf16|q8] [--conversations N]',
    '                    [--guardrails MODULE.js] [--manifest FILE|URL] [--revision REV]',
    '',
    ...MODEL_SOURCE_USAGE,
    'Endpoints: POST /v1/chat/completions (JSON or SSE with "stream": true), POST /v1/responses,',
    'GET /v1/models, GET /health. Requests queue for the GPU.',
    'Binds to 127.0.0.1 and answers only Host localhost, 127.0.0.1 or [::1] (421 otherwise) unless',
    '--host names a public address (0.0.0.0, ::, a LAN address: warns without --api-key). With',
    '--api-key every request but /health needs "Authorization: Bearer KEY". No web page may call',
    'the server unless --cors lists its origin ("*": any). POST bodies must be application/json.',
    `--max-tokens-cap (default ${DEFAULT_MAX_TOKENS_CAP}): a larger max_tokens is a 400; a request without one gets`,
    'min(cap, the context left). --request-timeout (default ' + DEFAULT_REQUEST_TIMEOUT + ', 0: none): seconds a generation',
    'may hold the GPU; then it stops and the answer ends with finish_reason "length".',
    '--conversations N (default 4): conversations whose KV cache stays on the GPU between requests; a',
    'request continuing one prefills only its new tokens (usage.prompt_tokens_details.cached_tokens).',
    'Each costs one KV cache and activations: `gptoss plan --sessions N --kv-reuse` shows how much.',
    '--guardrails: an ES module exporting input(messages) and/or output(text, { done, reasoning })',
    '(as named exports or a default object), each returning { allow: true } or { allow: false, reason }:',
    'a blocked request or answer ends with finish_reason "content_filter".',
  ].join('\n'),
  async run(argv: string[]): Promise<void> {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' }, port: { type: 'string', default: '8080' }, host: { type: 'string', default: '127.0.0.1' },
        'api-key': { type: 'string' }, 'model-id': { type: 'string' }, context: { type: 'string' }, kv: { type: 'string', default: 'q8' }, weights: { type: 'string' }, conversations: { type: 'string', default: '4' },
        cors: { type: 'string' }, 'max-tokens-cap': { type: 'string' }, 'request-timeout': { type: 'string' }, guardrails: { type: 'string' },
        ...MODEL_SOURCE_FLAGS,
      },
    });
    if (values.kv !== 'q8' && values.kv !== 'f32') throw new UsageError(`--kv must be q8 or f32, got ${JSON.stringify(values.kv)}`);
    const port = intFlag(values.port, 'port', 0)!;
    if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
    if (values['api-key'] === '') throw new UsageError('--api-key must not be empty');
    let cors: string[] | undefined;
    try {
      cors = values.cors === undefined ? undefined : parseCorsOrigins(values.cors);
    } catch (e) {
      throw new UsageError(`--${(e as Error).message}`);
    }
    const maxTokensCap = intFlag(values['max-tokens-cap'], 'max-tokens-cap', 1);
    const timeoutText = values['request-timeout'];
    const requestTimeout = timeoutText === undefined ? undefined : Number(timeoutText);
    if (requestTimeout !== undefined && (timeoutText!.trim() === '' || !Number.isFinite(requestTimeout) || requestTimeout < 0)) {
      throw new UsageError(`--request-timeout must be a number of seconds >= 0 (0: no limit), got ${JSON.stringify(timeoutText)}`);
    }
    const guardrails = values.guardrails === undefined ? undefined : await loadGuardrails(values.guardrails);
    const engine = await createEngine({
      guardrails,
      model: requireFlag(values.model, 'model'),
      modelId: values['model-id'],
      contextLimit: intFlag(values.context, 'context', 1),
      kvFormat: values.kv,
      weights: weightsFlag(values.weights),
      conversations: intFlag(values.conversations, 'conversations', 1),
      onProgress: progressPrinter(),
      ...modelSourceOptions(values),
    });
    const running = await serve(engine, {
      port, host: values.host, apiKey: values['api-key'], cors, maxTokensCap, requestTimeout,
      log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
      warn: (line) => process.stderr.write(`${line}\n`),
    });
    const a = engine.adapter;
    process.stderr.write(`${engine.modelId}: ${engine.config ? describeConfig(engine.config) : ''}\nadapter: ${a ? `${a.vendor} ${a.architecture} ${a.description}` : 'none'}\n`);
    console.log(`listening on ${running.url}`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await running.close();
    await engine.dispose();
  },
};

/** The guardrails a module exports: named `input`/`output`, or a default object with them. */
async function loadGuardrails(file: string): Promise<Guardrails> {
  if (file === '') throw new UsageError('--guardrails must name a JavaScript module');
  let mod: { default?: Guardrails; input?: unknown; output?: unknown };
  try {
    mod = await import(pathToFileURL(resolve(file)).href) as typeof mod;
  } catch (e) {
    throw new Error(`--guardrails ${file}: cannot load the module: ${(e as Error).message}`, { cause: e });
  }
  const g = (mod.default && typeof mod.default === 'object' ? mod.default : mod) as { input?: unknown; output?: unknown };
  for (const k of ['input', 'output'] as const) {
    if (g[k] !== undefined && typeof g[k] !== 'function') throw new Error(`--guardrails ${file}: ${k} must be a function, got ${typeof g[k]}`);
  }
  if (!g.input && !g.output) throw new Error(`--guardrails ${file} exports neither input nor output (export function input(messages) {...} or output(text, { done }))`);
  return { input: g.input as Guardrails['input'], output: g.output as Guardrails['output'] };
}
